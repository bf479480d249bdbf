//! Config rendering per API version against snapshot files:
//! tests/fixtures/render/CASE/args.json -> out-v1beta3.yaml (kubeadm v1.30.8) and
//! out-v1beta4.yaml (kubeadm v1.31.4). `UPDATE_SNAPSHOTS=1 cargo test` rewrites them.

use std::fs;
use std::path::{Path, PathBuf};

use kubeadm_common::{ApiVersion, Version};
use kubeadm_init::{plan, render, Params};
use serde_json::Value;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/render")
}

fn params(args: &Value) -> Params {
    module_runtime::params::from_params("kubeadm_init", args.as_object().expect("object"))
        .expect("valid params")
}

fn rendered(case: &Path, kubeadm: Version) -> String {
    let args: Value =
        serde_json::from_str(&fs::read_to_string(case.join("args.json")).expect("args"))
            .expect("json");
    let params = params(&args);
    let plan = plan(&params, false).expect("plan");
    let api = ApiVersion::for_kubeadm(kubeadm).expect("api");
    render(
        &params,
        &plan,
        api,
        plan.kubernetes_version.unwrap_or(kubeadm),
    )
    .expect("render")
}

#[test]
fn snapshots_per_api_version() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let mut cases: Vec<PathBuf> = fs::read_dir(fixtures())
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 4, "{cases:?}");
    for case in &cases {
        for (file, kubeadm) in [
            (
                "out-v1beta3.yaml",
                Version {
                    major: 1,
                    minor: 30,
                    patch: 8,
                },
            ),
            (
                "out-v1beta4.yaml",
                Version {
                    major: 1,
                    minor: 31,
                    patch: 4,
                },
            ),
        ] {
            let text = rendered(case, kubeadm);
            let path = case.join(file);
            if update {
                fs::write(&path, &text).expect("write snapshot");
            }
            let expected = fs::read_to_string(&path).unwrap_or_default();
            assert_eq!(
                text,
                expected,
                "{} differs from the rendering",
                path.display()
            );
        }
    }
}

#[test]
fn rendering_is_deterministic() {
    let case = fixtures().join("dual-stack-extra");
    let kubeadm = Version {
        major: 1,
        minor: 31,
        patch: 4,
    };
    assert_eq!(rendered(&case, kubeadm), rendered(&case, kubeadm));
}
