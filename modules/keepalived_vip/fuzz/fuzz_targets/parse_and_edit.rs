//! libFuzzer target: whatever the bytes, parsing does not panic, a parsed file renders
//! back byte-identical, and editing it gives a file that parses, holds the module's
//! instance once and is unchanged by a second edit.
#![no_main]

use std::sync::OnceLock;

use keepalived_vip::config;
use keepalived_vip::host::Prefixed;
use keepalived_vip::{edit_config, render, ManagedBlocks, Params, Resolved};
use libfuzzer_sys::fuzz_target;

fn setup() -> &'static (Params, ManagedBlocks) {
    static SETUP: OnceLock<(Params, ManagedBlocks)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let args = serde_json::json!({"vip": "192.168.0.66/24", "auth_pass": "k8s#vip"});
        let params: Params = module_runtime::params::from_params(
            "keepalived_vip",
            args.as_object().expect("object"),
        )
        .expect("params");
        let resolved = Resolved {
            vip: Prefixed::parse("192.168.0.66/24").expect("vip"),
            interface: "eth0".into(),
            virtual_router_id: 66,
            priority: 150,
            initial_state: "BACKUP",
            nopreempt: true,
            unicast_peers: Vec::new(),
            unicast_src_ip: None,
        };
        let blocks = ManagedBlocks {
            instance: render::instance(&params, &resolved),
            script: render::vrrp_script(&params, &params.check_script),
            script_user: "root".into(),
        };
        (params, blocks)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = config::parse(data) else {
        return;
    };
    assert_eq!(doc.render(data), data, "render differs from the input");
    let (params, blocks) = setup();
    let ours = |doc: &config::Document| {
        doc.statements()
            .filter(|s| s.is_named("vrrp_instance", &params.name))
            .count()
    };
    if ours(&doc) > 1 {
        return; // the module refuses such files
    }
    let edited = edit_config(data, &doc, params, blocks);
    let edited_doc = config::parse(&edited).expect("the edited file parses");
    assert_eq!(ours(&edited_doc), 1);
    assert_eq!(edit_config(&edited, &edited_doc, params, blocks), edited, "second edit changed the file");
});
