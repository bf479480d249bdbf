//! The cluster CA's public-key hash, as kubeadm computes and pins it: sha256 over the
//! DER SubjectPublicKeyInfo of the CA certificate, written `sha256:<64 hex>` — the value
//! `openssl x509 -pubkey -noout -in ca.crt | openssl pkey -pubin -outform der | sha256sum`
//! prints. PEM, base64 and the few DER steps down to the SPKI are done here by hand: a
//! certificate parser crate would be most of the binary for one field.

use sha2::{Digest, Sha256};

/// Decodes base64 in the standard or the URL-safe alphabet; whitespace is skipped and
/// padding is optional (PEM bodies, kubeconfig `*-data` fields, JWS parts).
pub fn base64_decode(text: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buffer: u32 = 0;
    let mut bits = 0;
    let mut padding = false;
    for (index, byte) in text.bytes().enumerate() {
        let value = match byte {
            b'A'..=b'Z' => byte - b'A',
            b'a'..=b'z' => byte - b'a' + 26,
            b'0'..=b'9' => byte - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            b'=' => {
                padding = true;
                continue;
            }
            b' ' | b'\t' | b'\r' | b'\n' => continue,
            _ => return Err(format!("invalid base64 character at offset {index}")),
        };
        if padding {
            return Err("base64 data continues after its padding".into());
        }
        buffer = (buffer << 6) | u32::from(value);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
            buffer &= (1 << bits) - 1;
        }
    }
    if bits >= 6 {
        return Err("base64 data is truncated".into());
    }
    Ok(out)
}

/// URL-safe base64 without padding (JWS).
pub fn base64url_encode(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | (u32::from(b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
        }
    }
    out
}

/// The DER bodies of every `-----BEGIN CERTIFICATE-----` block in `pem`.
pub fn pem_certificates(pem: &str) -> Result<Vec<Vec<u8>>, String> {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut certificates = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let body_start = start + BEGIN.len();
        let end = rest[body_start..]
            .find(END)
            .ok_or("a PEM certificate block has no END line")?;
        let body = &rest[body_start..body_start + end];
        certificates.push(
            base64_decode(body)
                .map_err(|e| format!("a PEM certificate block is not base64: {e}"))?,
        );
        rest = &rest[body_start + end + END.len()..];
    }
    if certificates.is_empty() {
        return Err("no PEM certificate (-----BEGIN CERTIFICATE-----) found".into());
    }
    Ok(certificates)
}

/// One DER element: its tag, the whole encoding, and its contents.
struct Element<'a> {
    tag: u8,
    whole: &'a [u8],
    contents: &'a [u8],
}

/// Reads the element at the start of `data`; returns it and what follows it.
fn read_element(data: &[u8]) -> Result<(Element<'_>, &[u8]), String> {
    let (&tag, rest) = data.split_first().ok_or("DER data ends early")?;
    if tag & 0x1f == 0x1f {
        return Err("DER element with a multi-byte tag".into());
    }
    let (&first, rest) = rest.split_first().ok_or("DER data ends early")?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err("DER element with an unsupported length".into());
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return Err("DER element longer than its data".into());
    }
    let header = data.len() - rest.len();
    Ok((
        Element {
            tag,
            whole: &data[..header + length],
            contents: &rest[..length],
        },
        &rest[length..],
    ))
}

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const VERSION_TAG: u8 = 0xa0; // [0] EXPLICIT

/// The DER SubjectPublicKeyInfo of an X.509 certificate (RFC 5280 §4.1):
/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL,
/// serialNumber, signature, issuer, validity, subject, subjectPublicKeyInfo, ... }, ... }
pub fn subject_public_key_info(certificate: &[u8]) -> Result<&[u8], String> {
    let (cert, _) = read_element(certificate)?;
    if cert.tag != SEQUENCE {
        return Err("not a DER certificate (no outer SEQUENCE)".into());
    }
    let (tbs, _) = read_element(cert.contents)?;
    if tbs.tag != SEQUENCE {
        return Err("not a DER certificate (no tbsCertificate SEQUENCE)".into());
    }
    let mut rest = tbs.contents;
    let (first, after) = read_element(rest)?;
    if first.tag == VERSION_TAG {
        rest = after;
    }
    let (serial, after) = read_element(rest)?;
    if serial.tag != INTEGER {
        return Err("not a DER certificate (no serial number)".into());
    }
    rest = after;
    // signature, issuer, validity, subject
    for field in ["signature algorithm", "issuer", "validity", "subject"] {
        let (element, after) = read_element(rest)?;
        if element.tag != SEQUENCE {
            return Err(format!("not a DER certificate (bad {field})"));
        }
        rest = after;
    }
    let (spki, _) = read_element(rest)?;
    if spki.tag != SEQUENCE {
        return Err("not a DER certificate (bad subjectPublicKeyInfo)".into());
    }
    Ok(spki.whole)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `sha256:<hex>` of the certificate's SubjectPublicKeyInfo.
pub fn ca_cert_hash(certificate_der: &[u8]) -> Result<String, String> {
    let spki = subject_public_key_info(certificate_der)?;
    Ok(format!("sha256:{}", hex(&Sha256::digest(spki))))
}

/// The hash of every certificate in a PEM bundle, in order.
pub fn ca_cert_hashes_of_pem(pem: &str) -> Result<Vec<String>, String> {
    pem_certificates(pem)?
        .iter()
        .map(|der| ca_cert_hash(der))
        .collect()
}

/// Checks a pin the way kubeadm's pubkeypin.Set.Allow does (format name and hex are
/// case-insensitive, 32 bytes) and returns it in the canonical lowercase form.
pub fn normalize_ca_cert_hash(pin: &str) -> Option<String> {
    let (format, value) = pin.trim().split_once(':')?;
    let is_hex = value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit());
    (format.eq_ignore_ascii_case("sha256") && is_hex)
        .then(|| format!("sha256:{}", value.to_ascii_lowercase()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_and_rejects_garbage() {
        assert_eq!(base64_decode("aGVsbG8=").expect("std"), b"hello");
        assert_eq!(base64_decode("aGVs\nbG8").expect("unpadded"), b"hello");
        assert_eq!(base64_decode("-_8").expect("url-safe"), [0xfb, 0xff]);
        assert!(base64_decode("aGV*").is_err());
        assert!(base64_decode("aGVsbG8=x").is_err());
        assert!(base64_decode("a").is_err());
        for data in [
            &b""[..],
            b"f",
            b"fo",
            b"foo",
            b"foob",
            &[0xfb, 0xff, 0x00, 0x10],
        ] {
            assert_eq!(base64_decode(&base64url_encode(data)).expect("round"), data);
        }
        assert_eq!(base64url_encode(b"\xfb\xff"), "-_8");
    }

    #[test]
    fn pins_are_checked_like_kubeadm() {
        let hex64 = "AB".repeat(32);
        assert_eq!(
            normalize_ca_cert_hash(&format!("SHA256:{hex64}")),
            Some(format!("sha256:{}", "ab".repeat(32)))
        );
        for bad in [
            "",
            "sha256:",
            "sha1:abcd",
            &format!("sha256:{}", "ab".repeat(31)),
            &format!("sha256:{}zz", "ab".repeat(31)),
            &format!("md5:{hex64}"),
            &"ab".repeat(32),
        ] {
            assert_eq!(normalize_ca_cert_hash(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn truncated_der_is_an_error_not_a_panic() {
        for data in [
            &b""[..],
            b"\x30",
            b"\x30\x82\xff",
            b"\x30\x03\x02\x01",
            b"\x04\x00",
        ] {
            assert!(subject_public_key_info(data).is_err(), "{data:?}");
        }
    }
}
