//! The runtime API against a real haproxy: the test starts haproxy as its own child
//! process (foreground, `-db`), on loopback ports only, with its stats socket and
//! files in a temp folder, and kills it at the end. The "apiservers" are two TLS
//! frontends of that same haproxy answering GET /readyz with 200; a third server
//! points at a closed port and stays DOWN.

use std::fs;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use haproxy_backend::runtime_api::{RuntimeApi, ServerStatus};
use haproxy_backend::HaproxyBackend;
use module_runtime::execute;
use serde_json::{json, Value};

/// Kills the haproxy child however the test ends.
struct Haproxy(Child);

impl Drop for Haproxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

fn make_certificate(dir: &Path) -> PathBuf {
    let (key, cert, pem) = (
        dir.join("key.pem"),
        dir.join("cert.pem"),
        dir.join("apiserver.pem"),
    );
    let status = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=apiserver",
        ])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is installed");
    assert!(status.success(), "openssl req failed");
    let mut both = fs::read(&cert).expect("cert");
    both.extend(fs::read(&key).expect("key"));
    fs::write(&pem, both).expect("pem");
    pem
}

fn run(args: &Value) -> Value {
    let (result, status) = execute::<HaproxyBackend>(args.to_string().as_bytes());
    assert_eq!(status, 0, "module failed: {result}");
    result
}

fn status_of(result: &Value, server: &str) -> String {
    result["servers_status"][server]["status"]
        .as_str()
        .unwrap_or("<none>")
        .to_owned()
}

/// Polls `show stat` until `done` holds (checks take a few hundred ms each).
fn wait_for(
    api: &RuntimeApi,
    what: &str,
    done: impl Fn(&std::collections::BTreeMap<String, ServerStatus>) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    while Instant::now() < deadline {
        if let Ok(stat) = api.show_stat("kubernetes-apiserver") {
            if done(&stat) {
                return;
            }
            last = format!("{stat:?}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("timed out waiting for {what}; last show stat: {last}");
}

#[test]
fn drain_disable_and_ready_through_the_runtime_api() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pem = make_certificate(dir.path());
    let socket = dir.path().join("admin.sock");
    let cfg = dir.path().join("haproxy.cfg");
    let (front, api1, api2, closed) = (free_port(), free_port(), free_port(), free_port());
    let fake_apiserver = |name: &str, port: u16| {
        format!(
            "frontend {name}\n    bind 127.0.0.1:{port} ssl crt {}\n    mode http\n    http-request return status 200 content-type text/plain string ok if {{ path /readyz }}\n    http-request return status 500\n\n",
            pem.display()
        )
    };
    let seed = format!(
        "global\n    stats socket {} mode 600 level admin\n\ndefaults\n    timeout connect 2s\n    timeout client 5s\n    timeout server 5s\n\n{}{}",
        socket.display(),
        fake_apiserver("apiserver-1", api1),
        fake_apiserver("apiserver-2", api2),
    );
    fs::write(&cfg, &seed).expect("seed config");

    let args = |n1: &str, n2: &str, check_mode: bool| {
        json!({
            "path": cfg,
            "bind": format!("127.0.0.1:{front}"),
            "check_inter": "300ms",
            "check_fall": 1,
            "check_rise": 1,
            "servers": [
                {"name": "n1", "address": "127.0.0.1", "port": api1, "state": n1},
                {"name": "n2", "address": "127.0.0.1", "port": api2, "state": n2},
                {"name": "n3", "address": "127.0.0.1", "port": closed},
            ],
            "_ansible_check_mode": check_mode,
        })
    };

    // haproxy not running yet: the file is written, no live status, no failure.
    let result = run(&args("present", "present", false));
    assert_eq!(result["changed"], json!(true));
    assert!(result.get("servers_status").is_none(), "{result}");
    assert_eq!(result["stats_socket"], json!(socket.display().to_string()));
    let written = fs::read_to_string(&cfg).expect("read");
    assert!(
        written.starts_with(&seed),
        "the seed's sections moved:\n{written}"
    );

    let log = fs::File::create(dir.path().join("haproxy.log")).expect("log");
    let child = Command::new("haproxy")
        .arg("-db")
        .arg("-f")
        .arg(&cfg)
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("start haproxy");
    let _haproxy = Haproxy(child);
    let api = RuntimeApi::new(&socket);
    wait_for(&api, "n1, n2 UP and n3 DOWN", |s| {
        s.get("n1").is_some_and(|v| v.status == "UP")
            && s.get("n2").is_some_and(|v| v.status == "UP")
            && s.get("n3").is_some_and(|v| v.status == "DOWN")
    });

    // Converged: nothing to do, statuses returned.
    let result = run(&args("present", "present", false));
    assert_eq!(result["changed"], json!(false), "{result}");
    assert_eq!(status_of(&result, "n1"), "UP");
    assert_eq!(status_of(&result, "n3"), "DOWN");
    assert_eq!(
        result["servers_status"]["n3"]["check_status"],
        json!("L4CON")
    );

    // Drain n1: set live, persisted as weight 0, no reload needed.
    let result = run(&args("drain", "present", false));
    assert_eq!(result["changed"], json!(true));
    assert_eq!(result["restart_required"], json!(true));
    assert_eq!(result["reload_required"], json!(false), "{result}");
    assert_eq!(status_of(&result, "n1"), "DRAIN", "{result}");
    assert_eq!(
        api.show_stat("kubernetes-apiserver").expect("show stat")["n1"].status,
        "DRAIN"
    );
    assert!(fs::read_to_string(&cfg)
        .expect("read")
        .contains(&format!("server n1 127.0.0.1:{api1} weight 0\n")));
    let again = run(&args("drain", "present", false));
    assert_eq!(again["changed"], json!(false), "{again}");

    // Check mode reports the change and leaves both the live state and the file alone.
    let before = fs::read(&cfg).expect("read");
    let result = run(&args("drain", "disabled", true));
    assert_eq!(result["changed"], json!(true));
    assert_eq!(status_of(&result, "n2"), "UP");
    assert_eq!(fs::read(&cfg).expect("read"), before);

    // Disable n2: maintenance, live.
    let result = run(&args("drain", "disabled", false));
    assert_eq!(status_of(&result, "n2"), "MAINT", "{result}");
    assert_eq!(result["reload_required"], json!(false));

    // Back to present: ready again (n1 keeps its weight 1 from the running config).
    let result = run(&args("present", "present", false));
    assert_eq!(result["changed"], json!(true));
    assert_eq!(result["reload_required"], json!(false), "{result}");
    wait_for(&api, "n1 and n2 UP again", |s| {
        s.get("n1").is_some_and(|v| v.status == "UP")
            && s.get("n2").is_some_and(|v| v.status == "UP")
    });
    let result = run(&args("present", "present", false));
    assert_eq!(result["changed"], json!(false), "{result}");

    // A config change the runtime API cannot apply needs a reload.
    let mut with_timeout = args("present", "present", false);
    with_timeout["timeout_server"] = json!("10m");
    let result = run(&with_timeout);
    assert_eq!(result["restart_required"], json!(true));
    assert_eq!(result["reload_required"], json!(true));
}
