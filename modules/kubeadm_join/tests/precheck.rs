//! The endpoint pre-check against a TLS server on 127.0.0.1 (tests/common): the pinned
//! CA hash, the token signature, the server chain, readiness with retries, and name
//! resolution through /etc/hosts and DNS.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{ca_hash, ApiServer, Behaviour, DnsServer, TOKEN};
use kubeadm_join::discovery::Discovery;
use kubeadm_join::resolve::Resolver;

fn resolver(dir: &Path) -> Resolver {
    Resolver::new(dir.join("hosts"), dir.join("resolv.conf"))
}

fn check(
    host: &str,
    port: u16,
    token: &str,
    pins: &[String],
    resolver: &Resolver,
    timeout: u64,
) -> Result<kubeadm_join::discovery::Checked, String> {
    Discovery {
        host,
        port,
        token,
        pins,
        timeout: Duration::from_secs(timeout),
        request_timeout: Duration::from_secs(2),
        signature_grace: Duration::from_secs(2),
        resolver,
    }
    .check()
}

#[test]
fn the_right_hash_passes_and_reaches_readyz_with_verified_tls() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ApiServer::start(Behaviour::default());
    let checked = check(
        "127.0.0.1",
        server.port,
        TOKEN,
        &[ca_hash("ca")],
        &resolver(dir.path()),
        10,
    )
    .expect("ready");
    assert_eq!(checked.ca_cert_hash, ca_hash("ca"));
    assert_eq!(checked.readyz_status, 200);
    assert_eq!(checked.attempts, 1);
    assert_eq!(checked.server.as_deref(), Some("https://k8s-api.test:6443"));
    assert_eq!(
        server.paths(),
        vec![
            "/api/v1/namespaces/kube-public/configmaps/cluster-info",
            "/readyz"
        ]
    );
}

#[test]
fn a_wrong_hash_fails_fast_as_wrong_cluster_or_man_in_the_middle() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ApiServer::start(Behaviour::default());
    let started = Instant::now();
    let err = check(
        "127.0.0.1",
        server.port,
        TOKEN,
        &[ca_hash("other-ca")],
        &resolver(dir.path()),
        60,
    )
    .expect_err("pin");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "not fast: {:?}",
        started.elapsed()
    );
    assert!(
        err.contains(&format!("presents cluster CA {}", ca_hash("ca"))),
        "{err}"
    );
    assert!(
        err.contains("wrong cluster or a man-in-the-middle"),
        "{err}"
    );
    assert!(err.ends_with("Nothing was changed."), "{err}");
    assert_eq!(server.paths().len(), 1, "no request after the pin failed");
}

#[test]
fn a_server_whose_chain_does_not_lead_to_the_pinned_ca_is_refused() {
    // cluster-info hands out the pinned CA, but TLS is served by another CA's certificate.
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ApiServer::start(Behaviour {
        server_cert: "other-server",
        ..Behaviour::default()
    });
    let err = check(
        "127.0.0.1",
        server.port,
        TOKEN,
        &[ca_hash("ca")],
        &resolver(dir.path()),
        60,
    )
    .expect_err("chain");
    assert!(
        err.contains("does not verify against the pinned cluster CA"),
        "{err}"
    );
    assert!(err.contains("man-in-the-middle"), "{err}");
}

#[test]
fn a_name_missing_from_the_certificate_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("hosts"), "127.0.0.1 api.elsewhere\n").expect("hosts");
    let server = ApiServer::start(Behaviour::default());
    let err = check(
        "api.elsewhere",
        server.port,
        TOKEN,
        &[ca_hash("ca")],
        &resolver(dir.path()),
        60,
    )
    .expect_err("name");
    assert!(
        err.contains("is signed by the pinned cluster CA but is not valid for api.elsewhere"),
        "{err}"
    );
    assert!(err.contains("add it to kubeadm_init's cert_sans"), "{err}");
}

#[test]
fn a_wrong_token_secret_fails_fast() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ApiServer::start(Behaviour::default());
    let err = check(
        "127.0.0.1",
        server.port,
        "abcdef.ffffffffffffffff",
        &[ca_hash("ca")],
        &resolver(dir.path()),
        60,
    )
    .expect_err("secret");
    assert!(
        err.contains("does not verify with this token's secret"),
        "{err}"
    );
    assert!(
        !err.contains("ffffffffffffffff"),
        "the secret is not quoted: {err}"
    );
}

#[test]
fn an_unknown_token_fails_after_the_signature_grace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ApiServer::start(Behaviour {
        signing_token: Some("zzzzzz.0123456789abcdef"),
        ..Behaviour::default()
    });
    let started = Instant::now();
    let err = check(
        "127.0.0.1",
        server.port,
        TOKEN,
        &[ca_hash("ca")],
        &resolver(dir.path()),
        60,
    )
    .expect_err("unknown");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    assert!(
        err.contains("no signature for bootstrap token id \"abcdef\""),
        "{err}"
    );
    assert!(
        err.contains("the token is unknown to this cluster (expired or deleted)"),
        "{err}"
    );
}

#[test]
fn a_starting_server_is_waited_for_with_backoff() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ApiServer::start(Behaviour {
        readyz: vec![500, 500, 200],
        ..Behaviour::default()
    });
    let checked = check(
        "127.0.0.1",
        server.port,
        TOKEN,
        &[ca_hash("ca")],
        &resolver(dir.path()),
        30,
    )
    .expect("ready");
    assert_eq!(checked.attempts, 3);
}

#[test]
fn an_endpoint_that_never_answers_times_out_with_the_last_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A port nobody listens on: bind, note the port, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let err = check(
        "127.0.0.1",
        port,
        TOKEN,
        &[ca_hash("ca")],
        &resolver(dir.path()),
        2,
    )
    .expect_err("timeout");
    assert!(
        err.starts_with(&format!(
            "the API endpoint 127.0.0.1:{port} was not ready within 2s"
        )),
        "{err}"
    );
    assert!(err.contains("connect to 127.0.0.1"), "{err}");
}

#[test]
fn names_resolve_through_etc_hosts_and_dns_without_nss() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = ApiServer::start(Behaviour::default());
    std::fs::write(
        dir.path().join("hosts"),
        "127.0.0.1 localhost\n127.0.0.1 k8s-api.test\n",
    )
    .expect("hosts");
    let checked = check(
        "k8s-api.test",
        server.port,
        TOKEN,
        &[ca_hash("ca")],
        &resolver(dir.path()),
        10,
    )
    .expect("hosts");
    assert_eq!(checked.readyz_status, 200);

    let dns = DnsServer::start("k8s-api.test", [127, 0, 0, 1]);
    std::fs::write(dir.path().join("hosts"), "127.0.0.1 localhost\n").expect("hosts");
    std::fs::write(
        dir.path().join("resolv.conf"),
        "nameserver 127.0.0.1\nsearch test\n",
    )
    .expect("resolv");
    let mut via_dns = resolver(dir.path());
    via_dns.dns_port = dns.port;
    assert_eq!(
        via_dns.resolve("k8s-api", 6443).expect("search domain"),
        vec!["127.0.0.1:6443".parse().expect("addr")]
    );
    check(
        "k8s-api.test",
        server.port,
        TOKEN,
        &[ca_hash("ca")],
        &via_dns,
        10,
    )
    .expect("dns");
    let err = via_dns.resolve("nowhere.test", 6443).expect_err("nxdomain");
    assert!(err.contains("nowhere.test has no address"), "{err}");
}
