//! JoinConfiguration rendering per API version against snapshot files:
//! tests/fixtures/render/CASE/args.json -> out-v1beta3.yaml / out-v1beta4.yaml.
//! `UPDATE_SNAPSHOTS=1 cargo test` rewrites them.

use std::fs;
use std::path::{Path, PathBuf};

use kubeadm_common::ApiVersion;
use kubeadm_join::{plan, render, Params};
use module_runtime::Context;
use serde_json::Value;

fn rendered(case: &Path, api: ApiVersion) -> String {
    let args: Value =
        serde_json::from_str(&fs::read_to_string(case.join("args.json")).expect("args"))
            .expect("json");
    let params: Params =
        module_runtime::params::from_params("kubeadm_join", args.as_object().expect("object"))
            .expect("params");
    let plan = plan(&params, &mut Context::default()).expect("plan");
    render(&params, &plan, api).expect("render")
}

#[test]
fn snapshots_per_api_version() {
    let update = std::env::var_os("UPDATE_SNAPSHOTS").is_some();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/render");
    let mut cases: Vec<PathBuf> = fs::read_dir(&root)
        .expect("fixtures")
        .map(|e| e.expect("entry").path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 3, "{cases:?}");
    for case in &cases {
        for (file, api) in [
            ("out-v1beta3.yaml", ApiVersion::V1beta3),
            ("out-v1beta4.yaml", ApiVersion::V1beta4),
        ] {
            let text = rendered(case, api);
            let path = case.join(file);
            if update {
                fs::write(&path, &text).expect("write snapshot");
            }
            assert_eq!(
                text,
                fs::read_to_string(&path).unwrap_or_default(),
                "{} differs",
                path.display()
            );
        }
    }
}
