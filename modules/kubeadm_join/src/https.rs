//! One HTTPS GET over rustls (ring provider), HTTP/1.1 with `Connection: close`:
//! all the pre-check needs, at a fraction of an HTTP client's size.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore,
    StreamOwned,
};

/// What the server's certificate chain must lead to.
#[derive(Debug, Clone)]
pub enum Trust {
    /// Nothing yet: the first request of kubeadm's discovery, whose answer is then
    /// checked against the pinned CA hash (the handshake signature is still verified).
    Unverified,
    /// The chain must lead to one of these CAs and name the host.
    Roots(Vec<Vec<u8>>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// Nobody answered (refused, unreachable, timed out): worth retrying.
    Connect(String),
    /// The server's certificate failed verification against the trusted CAs;
    /// `wrong_name`: it verified but does not name the host.
    Certificate { detail: String, wrong_name: bool },
    /// TLS or HTTP went wrong after connecting.
    Protocol(String),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::Connect(m) | HttpError::Protocol(m) => f.write_str(m),
            HttpError::Certificate { detail, .. } => f.write_str(detail),
        }
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Accepts any certificate chain but still checks that the server holds the key of
/// the certificate it presented (like Go's InsecureSkipVerify).
#[derive(Debug)]
struct AcceptAnyChain(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyChain {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

fn client_config(trust: &Trust) -> Result<ClientConfig, HttpError> {
    let provider = provider();
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| HttpError::Protocol(format!("TLS setup: {e}")))?;
    Ok(match trust {
        Trust::Unverified => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyChain(provider)))
            .with_no_client_auth(),
        Trust::Roots(cas) => {
            let mut roots = RootCertStore::empty();
            for ca in cas {
                roots.add(CertificateDer::from(ca.clone())).map_err(|e| {
                    HttpError::Certificate {
                        detail: format!("the cluster CA is not usable as a trust anchor: {e}"),
                        wrong_name: false,
                    }
                })?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
    })
}

/// The TLS error inside an I/O error, if that is what it is.
fn classify(error: std::io::Error, during: &str) -> HttpError {
    if let Some(tls) = error
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    {
        return match tls {
            rustls::Error::InvalidCertificate(problem) => HttpError::Certificate {
                detail: tls.to_string(),
                wrong_name: matches!(
                    problem,
                    CertificateError::NotValidForName
                        | CertificateError::NotValidForNameContext { .. }
                ),
            },
            _ => HttpError::Protocol(format!("TLS {during}: {tls}")),
        };
    }
    match error.kind() {
        ErrorKind::TimedOut | ErrorKind::WouldBlock | ErrorKind::ConnectionReset => {
            HttpError::Connect(format!("{during}: {error}"))
        }
        _ => HttpError::Protocol(format!("{during}: {error}")),
    }
}

/// GET `https://host/path` through the first of `addrs` that accepts a connection.
/// `host` is the name the certificate must carry (an IP address or a DNS name).
pub fn get(
    addrs: &[SocketAddr],
    host: &str,
    path: &str,
    trust: &Trust,
    timeout: Duration,
) -> Result<Response, HttpError> {
    let config = Arc::new(client_config(trust)?);
    let server_name = ServerName::try_from(host.to_owned())
        .map_err(|_| HttpError::Protocol(format!("{host} is not a valid TLS server name")))?;
    let mut last = HttpError::Connect("no address to connect to".into());
    for addr in addrs {
        let tcp = match TcpStream::connect_timeout(addr, timeout) {
            Ok(tcp) => tcp,
            Err(e) => {
                last = HttpError::Connect(format!("connect to {addr}: {e}"));
                continue;
            }
        };
        let _ = tcp.set_read_timeout(Some(timeout));
        let _ = tcp.set_write_timeout(Some(timeout));
        let connection = ClientConnection::new(config.clone(), server_name.clone())
            .map_err(|e| HttpError::Protocol(format!("TLS setup: {e}")))?;
        let mut stream = StreamOwned::new(connection, tcp);
        let host_header = if host.contains(':') {
            format!("[{host}]:{}", addr.port())
        } else {
            format!("{host}:{}", addr.port())
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: baremetal.k8s-kubeadm_join\r\n\
             Accept: application/json, */*\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .and_then(|()| stream.flush())
            .map_err(|e| classify(e, &format!("request to {addr}")))?;
        let mut raw = Vec::new();
        match stream.read_to_end(&mut raw) {
            Ok(_) => {}
            // Servers may close without close_notify; what arrived is complete when
            // its framing says so (checked by parse_response).
            Err(e) if e.kind() == ErrorKind::UnexpectedEof && !raw.is_empty() => {}
            Err(e) => return Err(classify(e, &format!("response from {addr}"))),
        }
        return parse_response(&raw).map_err(HttpError::Protocol);
    }
    Err(last)
}

/// Status and body of an HTTP/1.1 response (Content-Length, chunked, or until close).
pub fn parse_response(raw: &[u8]) -> Result<Response, String> {
    let head_end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the HTTP response has no complete header")?;
    let head = String::from_utf8_lossy(&raw[..head_end]);
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .strip_prefix("HTTP/1.")
        .and_then(|rest| rest.get(2..5))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or_else(|| format!("not an HTTP response: {status_line:?}"))?;
    let mut content_length = None;
    let mut chunked = false;
    for line in lines {
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(value.parse::<usize>().map_err(|_| "bad Content-Length")?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = value.to_ascii_lowercase().contains("chunked");
        }
    }
    let rest = &raw[head_end + 4..];
    let body = if chunked {
        decode_chunked(rest)?
    } else if let Some(length) = content_length {
        rest.get(..length)
            .ok_or("the HTTP body is shorter than its Content-Length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(Response { status, body })
}

fn decode_chunked(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    loop {
        let line_end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("a chunked HTTP body ends early")?;
        let size_text = String::from_utf8_lossy(&data[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Ok(body);
        }
        let chunk = data.get(..size).ok_or("a chunked HTTP body ends early")?;
        body.extend_from_slice(chunk);
        data = data
            .get(size + 2..)
            .ok_or("a chunked HTTP body ends early")?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_are_framed_three_ways() {
        let plain =
            parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA").expect("length");
        assert_eq!((plain.status, plain.body.as_slice()), (200, &b"ok"[..]));
        let chunked = parse_response(
            b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .expect("chunked");
        assert_eq!(
            (chunked.status, chunked.body.as_slice()),
            (500, &b"abcde"[..])
        );
        let until_close = parse_response(b"HTTP/1.0 403 Forbidden\r\n\r\nno").expect("close");
        assert_eq!(
            (until_close.status, until_close.body.as_slice()),
            (403, &b"no"[..])
        );
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
    }
}
