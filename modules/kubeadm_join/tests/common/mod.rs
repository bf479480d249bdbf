//! Test support: a TLS "API server" on 127.0.0.1 (rustls) serving cluster-info and
//! /readyz, a DNS server on 127.0.0.1, and the fixture files.

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use kubeadm_common::pki;
use kubeadm_join::discovery::sign_detached;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

pub fn fixture_text(name: &str) -> String {
    std::fs::read_to_string(fixture(name)).expect("fixture")
}

pub fn ca_hash(name: &str) -> String {
    fixture_text(&format!("tls/{name}.sha256"))
        .trim()
        .to_owned()
}

pub const TOKEN: &str = "abcdef.0123456789abcdef";

/// How the test API server behaves.
#[derive(Debug, Clone)]
pub struct Behaviour {
    /// `tls/NAME.crt` and `tls/NAME.key` serve TLS.
    pub server_cert: &'static str,
    /// The CA (`tls/NAME.crt`) cluster-info hands out.
    pub cluster_ca: &'static str,
    /// The token whose id and secret sign cluster-info (None: no signature).
    pub signing_token: Option<&'static str>,
    /// /readyz statuses in order; the last one repeats.
    pub readyz: Vec<u16>,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            server_cert: "server",
            cluster_ca: "ca",
            signing_token: Some(TOKEN),
            readyz: vec![200],
        }
    }
}

pub struct ApiServer {
    pub port: u16,
    pub requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

fn server_config(name: &str) -> Arc<ServerConfig> {
    let cert = pki::pem_certificates(&fixture_text(&format!("tls/{name}.crt"))).expect("cert");
    let key_pem = fixture_text(&format!("tls/{name}.key"));
    let body: String = key_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
        pki::base64_decode(&body).expect("key"),
    ));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("versions")
            .with_no_client_auth()
            .with_single_cert(cert.into_iter().map(CertificateDer::from).collect(), key)
            .expect("server config"),
    )
}

fn cluster_info(behaviour: &Behaviour) -> String {
    let ca_pem = fixture_text(&format!("tls/{}.crt", behaviour.cluster_ca));
    let ca_data = pki::base64url_encode(ca_pem.as_bytes())
        .replace('-', "+")
        .replace('_', "/");
    let kubeconfig = format!(
        "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca_data}\n    server: https://k8s-api.test:6443\n  name: \"\"\ncontexts: null\ncurrent-context: \"\"\nkind: Config\npreferences: {{}}\nusers: null\n"
    );
    let mut data = serde_json::json!({"kubeconfig": kubeconfig});
    if let Some(token) = behaviour.signing_token {
        let id = token.split('.').next().unwrap_or_default();
        data[format!("jws-kubeconfig-{id}")] = serde_json::json!(sign_detached(&kubeconfig, token));
    }
    serde_json::json!({"kind": "ConfigMap", "apiVersion": "v1",
        "metadata": {"name": "cluster-info", "namespace": "kube-public"}, "data": data})
    .to_string()
}

impl ApiServer {
    pub fn start(behaviour: Behaviour) -> ApiServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let config = server_config(behaviour.server_cert);
        let info = cluster_info(&behaviour);
        let (stop_flag, log) = (stop.clone(), requests.clone());
        let thread = std::thread::spawn(move || {
            let mut readyz = behaviour.readyz.into_iter().peekable();
            let mut last_readyz = 200;
            while !stop_flag.load(Ordering::SeqCst) {
                let Ok((tcp, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let _ = tcp.set_nonblocking(false);
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(5)));
                let Ok(connection) = ServerConnection::new(config.clone()) else {
                    continue;
                };
                let mut stream = StreamOwned::new(connection, tcp);
                let mut request = Vec::new();
                let mut buffer = [0u8; 1024];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match stream.read(&mut buffer) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                }
                let text = String::from_utf8_lossy(&request).into_owned();
                let path = text
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or_default()
                    .to_owned();
                if path.is_empty() {
                    continue; // the client gave up during the handshake
                }
                log.lock().expect("log").push(path.clone());
                let (status, body) = match path.as_str() {
                    "/api/v1/namespaces/kube-public/configmaps/cluster-info" => (200, info.clone()),
                    "/readyz" => {
                        if let Some(next) = readyz.next() {
                            last_readyz = next;
                        }
                        (
                            last_readyz,
                            if last_readyz == 200 {
                                "ok".into()
                            } else {
                                "[-]etcd failed: reason withheld".into()
                            },
                        )
                    }
                    _ => (404, "{}".into()),
                };
                // Chunked, as Go's server sends bodies it did not buffer whole.
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(response.as_bytes());
                stream.conn.send_close_notify();
                let _ = stream.flush();
            }
        });
        ApiServer {
            port,
            requests,
            stop,
            thread: Some(thread),
        }
    }

    pub fn paths(&self) -> Vec<String> {
        self.requests.lock().expect("log").clone()
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// A DNS server on 127.0.0.1 that knows one name (A only) and answers NXDOMAIN otherwise.
pub struct DnsServer {
    pub port: u16,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl DnsServer {
    pub fn start(name: &'static str, address: [u8; 4]) -> DnsServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let port = socket.local_addr().expect("addr").port();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut buffer = [0u8; 512];
            while !flag.load(Ordering::SeqCst) {
                let Ok((length, peer)) = socket.recv_from(&mut buffer) else {
                    continue;
                };
                let query = &buffer[..length];
                // The question name, as dotted text.
                let mut labels = Vec::new();
                let mut at = 12;
                while at < length && query[at] != 0 {
                    let l = usize::from(query[at]);
                    labels.push(String::from_utf8_lossy(&query[at + 1..at + 1 + l]).into_owned());
                    at += 1 + l;
                }
                let qtype = u16::from_be_bytes([query[at + 1], query[at + 2]]);
                let question_end = at + 5;
                let mut reply = query[..question_end].to_vec();
                reply[2] = 0x81;
                if labels.join(".") == name && qtype == 1 {
                    reply[3] = 0x80;
                    reply[7] = 1;
                    reply.extend_from_slice(&[0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 30, 0, 4]);
                    reply.extend_from_slice(&address);
                } else if labels.join(".") == name {
                    reply[3] = 0x80; // the name exists, no AAAA
                } else {
                    reply[3] = 0x83; // NXDOMAIN
                }
                let _ = socket.send_to(&reply, peer);
            }
        });
        DnsServer {
            port,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
