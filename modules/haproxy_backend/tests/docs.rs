//! The sidecar documentation lists exactly the params the module accepts.

use haproxy_backend::{Params, ServerParam};
use module_runtime::params::supported_params;

/// Keys at exactly `indent` spaces between the line `start` and the next line that is
/// indented less than `indent`.
fn keys_under(text: &str, start: &str, indent: usize) -> Vec<String> {
    let mut lines = text.lines().skip_while(|l| *l != start).skip(1);
    let mut keys = Vec::new();
    for line in lines.by_ref() {
        let depth = line.len() - line.trim_start().len();
        if !line.trim().is_empty() && depth < indent {
            break;
        }
        if depth == indent && line.trim_end().ends_with(':') {
            keys.push(line.trim().trim_end_matches(':').to_owned());
        }
    }
    keys.sort();
    keys
}

#[test]
fn documented_options_match_params() {
    let yml = include_str!("../haproxy_backend.yml");
    let mut params: Vec<String> = supported_params::<Params>()
        .iter()
        .map(|s| s.to_string())
        .collect();
    params.sort();
    assert_eq!(keys_under(yml, "  options:", 4), params);
    let mut server_params: Vec<String> = supported_params::<ServerParam>()
        .iter()
        .map(|s| s.to_string())
        .collect();
    server_params.sort();
    assert_eq!(keys_under(yml, "      suboptions:", 8), server_params);
}
