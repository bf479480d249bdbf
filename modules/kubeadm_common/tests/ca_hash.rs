//! The CA hash against certificate/hash pairs computed with openssl
//! (`tests/fixtures/pki/make.sh`): RSA, ECDSA, a version 1 certificate and a bundle.

use std::fs;
use std::path::Path;

use kubeadm_common::pki::{ca_cert_hash, ca_cert_hashes_of_pem, pem_certificates};

fn fixture(name: &str) -> String {
    fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/pki")
            .join(name),
    )
    .expect("fixture")
}

#[test]
fn hashes_match_openssl() {
    for ca in ["rsa-ca", "ec-ca", "v1-ca"] {
        let pem = fixture(&format!("{ca}.crt"));
        let der = pem_certificates(&pem).expect("pem");
        assert_eq!(der.len(), 1);
        assert_eq!(
            ca_cert_hash(&der[0]).expect("hash"),
            fixture(&format!("{ca}.sha256")).trim(),
            "{ca}"
        );
    }
}

#[test]
fn a_bundle_gives_one_hash_per_certificate() {
    let hashes = ca_cert_hashes_of_pem(&fixture("bundle.crt")).expect("bundle");
    assert_eq!(
        hashes,
        vec![
            fixture("rsa-ca.sha256").trim().to_string(),
            fixture("ec-ca.sha256").trim().to_string()
        ]
    );
}

#[test]
fn not_a_certificate() {
    assert!(ca_cert_hashes_of_pem("hello")
        .expect_err("no pem")
        .contains("no PEM certificate"));
    let broken = fixture("rsa-ca.crt").replace("-----END CERTIFICATE-----", "");
    assert!(ca_cert_hashes_of_pem(&broken).is_err());
    let der = pem_certificates(&fixture("rsa-ca.crt"))
        .expect("pem")
        .remove(0);
    assert!(ca_cert_hash(&der[..100]).is_err());
}
