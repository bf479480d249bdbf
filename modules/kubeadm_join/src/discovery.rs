//! The endpoint pre-check, following kubeadm's token discovery trust model:
//! 1. GET /api/v1/namespaces/kube-public/configmaps/cluster-info without verifying the
//!    server (nothing is trusted yet);
//! 2. the CA in its kubeconfig (certificate-authority-data) must have a public-key hash
//!    among ca_cert_hashes — else this is the wrong cluster or a man in the middle;
//! 3. its `jws-kubeconfig-<token id>` signature must verify with the token's secret
//!    (HS256, detached) — proving the server knows the token;
//! 4. GET /readyz again, now verifying the server's chain against that CA and name.
//!
//! Unreachable or not-ready servers are retried with backoff until the timeout;
//! a trust failure ends the check at once with a message that says what it means.

use std::thread::sleep;
use std::time::{Duration, Instant};

use kubeadm_common::{pki, token};
use serde_json::Value;

use crate::https::{self, HttpError, Trust};
use crate::resolve::Resolver;

pub const CLUSTER_INFO_PATH: &str = "/api/v1/namespaces/kube-public/configmaps/cluster-info";

#[derive(Debug, Clone)]
pub struct Discovery<'a> {
    pub host: &'a str,
    pub port: u16,
    pub token: &'a str,
    /// Normalised `sha256:<hex>` pins.
    pub pins: &'a [String],
    /// How long to wait for the endpoint to become ready.
    pub timeout: Duration,
    /// One connection's timeout.
    pub request_timeout: Duration,
    /// How long a missing token signature is waited for: kube-controller-manager's
    /// bootstrap signer adds it a moment after a token is created.
    pub signature_grace: Duration,
    pub resolver: &'a Resolver,
}

/// What the check established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// The pinned hash the cluster's CA matched.
    pub ca_cert_hash: String,
    /// `server:` of the cluster-info kubeconfig.
    pub server: Option<String>,
    pub attempts: u32,
    /// The /readyz status (200; 401/403 where anonymous access to it is off).
    pub readyz_status: u16,
}

enum Attempt {
    Ready(Checked),
    Retry(String),
    /// The cluster-info carries no signature for this token (yet).
    Unsigned(String),
    Fatal(String),
}

impl Discovery<'_> {
    fn endpoint(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Runs the check; the error is the message for the user.
    pub fn check(&self) -> Result<Checked, String> {
        let start = Instant::now();
        let mut backoff = Duration::from_secs(1);
        let mut unsigned_since: Option<Instant> = None;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let last = match self.attempt(attempts) {
                Attempt::Ready(checked) => return Ok(checked),
                Attempt::Fatal(message) => return Err(format!("{message}. Nothing was changed.")),
                Attempt::Retry(message) => {
                    unsigned_since = None;
                    message
                }
                Attempt::Unsigned(message) => {
                    let since = *unsigned_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.signature_grace {
                        return Err(format!(
                            "{message} for {}s: the token is unknown to this cluster (expired or deleted). \
                             Create a new one (kubeadm_init with join_material) and retry. Nothing was changed.",
                            self.signature_grace.as_secs()
                        ));
                    }
                    message
                }
            };
            let elapsed = start.elapsed();
            if elapsed + backoff > self.timeout {
                return Err(format!(
                    "the API endpoint {} was not ready within {}s ({attempts} attempts); last: {last}. Nothing was changed.",
                    self.endpoint(),
                    self.timeout.as_secs()
                ));
            }
            sleep(backoff);
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }

    fn attempt(&self, attempts: u32) -> Attempt {
        let endpoint = self.endpoint();
        let addrs = match self.resolver.resolve(self.host, self.port) {
            Ok(addrs) => addrs,
            Err(e) => return Attempt::Retry(e),
        };
        let response = match https::get(
            &addrs,
            self.host,
            CLUSTER_INFO_PATH,
            &Trust::Unverified,
            self.request_timeout,
        ) {
            Ok(response) => response,
            Err(e) => {
                return Attempt::Retry(format!("GET https://{endpoint}{CLUSTER_INFO_PATH}: {e}"))
            }
        };
        if response.status != 200 {
            return Attempt::Retry(format!(
                "GET https://{endpoint}{CLUSTER_INFO_PATH} answered HTTP {}",
                response.status
            ));
        }
        let info = match ClusterInfo::parse(&response.body) {
            Ok(info) => info,
            Err(e) => {
                return Attempt::Fatal(format!(
                    "https://{endpoint} answered the cluster-info request with something that is not a Kubernetes cluster-info ConfigMap ({e})"
                ))
            }
        };
        let ca_hashes = match pki::ca_cert_hashes_of_pem(&info.ca_pem) {
            Ok(hashes) => hashes,
            Err(e) => {
                return Attempt::Fatal(format!(
                    "the cluster CA in cluster-info at {endpoint} is unreadable: {e}"
                ))
            }
        };
        let Some(matched) = ca_hashes.iter().find(|hash| self.pins.contains(hash)) else {
            return Attempt::Fatal(format!(
                "the API server at {endpoint} presents cluster CA {}, which is not among ca_cert_hashes ({}): \
                 this is the wrong cluster or a man-in-the-middle",
                ca_hashes.join(", "),
                self.pins.join(", ")
            ));
        };
        let id = token::token_id(self.token);
        match info.signatures.iter().find(|(key_id, _)| key_id == id) {
            None => {
                return Attempt::Unsigned(format!(
                    "cluster-info at {endpoint} has no signature for bootstrap token id {id:?}"
                ))
            }
            Some((_, jws)) => {
                if !detached_jws_is_valid(jws, &info.kubeconfig, self.token) {
                    return Attempt::Fatal(format!(
                        "the cluster-info signature for token id {id:?} at {endpoint} does not verify with this token's secret: \
                         the token is wrong (or the server does not know it)"
                    ));
                }
            }
        }
        let ca_ders = match pki::pem_certificates(&info.ca_pem) {
            Ok(ders) => ders,
            Err(e) => {
                return Attempt::Fatal(format!("the cluster CA in cluster-info is unreadable: {e}"))
            }
        };
        match https::get(&addrs, self.host, "/readyz", &Trust::Roots(ca_ders), self.request_timeout) {
            Ok(response) if response.status == 200 || response.status == 401 || response.status == 403 => {
                Attempt::Ready(Checked {
                    ca_cert_hash: matched.clone(),
                    server: info.server,
                    attempts,
                    readyz_status: response.status,
                })
            }
            Ok(response) => Attempt::Retry(format!(
                "GET https://{endpoint}/readyz answered HTTP {}: {}",
                response.status,
                String::from_utf8_lossy(&response.body).lines().next().unwrap_or_default()
            )),
            Err(HttpError::Certificate { detail, wrong_name: true }) => Attempt::Fatal(format!(
                "the API server certificate at {endpoint} is signed by the pinned cluster CA but is not valid for {} ({detail}): \
                 add it to kubeadm_init's cert_sans (and renew the apiserver certificate) or join through a name it carries",
                self.host
            )),
            Err(HttpError::Certificate { detail, .. }) => Attempt::Fatal(format!(
                "the API server at {endpoint} presented a certificate that does not verify against the pinned cluster CA ({detail}): \
                 something between this node and the cluster answers in its name (a man-in-the-middle, or a load balancer terminating TLS)"
            )),
            Err(e) => Attempt::Retry(format!("GET https://{endpoint}/readyz: {e}")),
        }
    }
}

/// The parts of the kube-public/cluster-info ConfigMap discovery uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterInfo {
    pub kubeconfig: String,
    /// The decoded certificate-authority-data (PEM).
    pub ca_pem: String,
    pub server: Option<String>,
    /// (token id, detached JWS) of every `jws-kubeconfig-<id>` key.
    pub signatures: Vec<(String, String)>,
}

impl ClusterInfo {
    pub fn parse(body: &[u8]) -> Result<ClusterInfo, String> {
        let value: Value = serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
        let data = value
            .get("data")
            .and_then(Value::as_object)
            .ok_or("no data")?;
        let kubeconfig = data
            .get("kubeconfig")
            .and_then(Value::as_str)
            .ok_or("no data.kubeconfig")?
            .to_owned();
        let field = |name: &str| {
            kubeconfig.lines().find_map(|line| {
                let value = line.trim().strip_prefix(name)?.strip_prefix(':')?;
                Some(
                    value
                        .trim()
                        .trim_matches(|c| c == '"' || c == '\'')
                        .to_owned(),
                )
            })
        };
        let ca_data = field("certificate-authority-data")
            .ok_or("no certificate-authority-data in its kubeconfig")?;
        let ca_pem = pki::base64_decode(&ca_data)
            .map_err(|e| format!("certificate-authority-data is not base64: {e}"))?;
        let signatures = data
            .iter()
            .filter_map(|(key, value)| {
                let id = key.strip_prefix("jws-kubeconfig-")?;
                Some((id.to_owned(), value.as_str()?.to_owned()))
            })
            .collect();
        Ok(ClusterInfo {
            ca_pem: String::from_utf8_lossy(&ca_pem).into_owned(),
            server: field("server"),
            kubeconfig,
            signatures,
        })
    }
}

/// Verifies a detached JWS (`header..signature`, HS256 keyed with the token secret)
/// over `payload`, as kubeadm's bootstrap token discovery does.
pub fn detached_jws_is_valid(jws: &str, payload: &str, bootstrap_token: &str) -> bool {
    let Some((_, secret)) = bootstrap_token.split_once('.') else {
        return false;
    };
    let mut parts = jws.split('.');
    let (Some(header), Some(""), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let Ok(signature) = pki::base64_decode(signature) else {
        return false;
    };
    let signing_input = format!("{header}.{}", pki::base64url_encode(payload.as_bytes()));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    ring::hmac::verify(&key, signing_input.as_bytes(), &signature).is_ok()
}

/// A detached JWS as the bootstrap signer writes it (for tests and the test server).
pub fn sign_detached(payload: &str, bootstrap_token: &str) -> String {
    let (id, secret) = bootstrap_token
        .split_once('.')
        .unwrap_or((bootstrap_token, ""));
    let header =
        pki::base64url_encode(format!("{{\"alg\":\"HS256\",\"kid\":\"{id}\"}}").as_bytes());
    let signing_input = format!("{header}.{}", pki::base64url_encode(payload.as_bytes()));
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, signing_input.as_bytes());
    format!("{header}..{}", pki::base64url_encode(tag.as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jws_round_trip_and_tampering() {
        let payload = "apiVersion: v1\nclusters: []\n";
        let token = "abcdef.0123456789abcdef";
        let jws = sign_detached(payload, token);
        assert!(detached_jws_is_valid(&jws, payload, token));
        assert!(!detached_jws_is_valid(&jws, "other", token));
        assert!(!detached_jws_is_valid(
            &jws,
            payload,
            "abcdef.ffffffffffffffff"
        ));
        assert!(!detached_jws_is_valid("a.b.c", payload, token));
        assert!(!detached_jws_is_valid(
            &jws.replace("..", "."),
            payload,
            token
        ));
    }

    #[test]
    fn cluster_info_parsing() {
        let pem = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let kubeconfig = format!(
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {}\n    server: https://10.0.0.100:16443\n  name: \"\"\n",
            base64_std(pem.as_bytes())
        );
        let body = serde_json::json!({"kind": "ConfigMap", "data": {"kubeconfig": kubeconfig, "jws-kubeconfig-abcdef": "x..y"}});
        let info = ClusterInfo::parse(body.to_string().as_bytes()).expect("parse");
        assert_eq!(info.ca_pem, pem);
        assert_eq!(info.server.as_deref(), Some("https://10.0.0.100:16443"));
        assert_eq!(
            info.signatures,
            vec![("abcdef".to_string(), "x..y".to_string())]
        );
        assert!(ClusterInfo::parse(b"<html>").is_err());
        assert!(
            ClusterInfo::parse(br#"{"data": {"kubeconfig": "apiVersion: v1"}}"#)
                .expect_err("no ca")
                .contains("certificate-authority-data")
        );
    }

    fn base64_std(data: &[u8]) -> String {
        pki::base64url_encode(data)
            .replace('-', "+")
            .replace('_', "/")
    }
}
