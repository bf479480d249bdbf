//! The runtime's protocol, driven in-process through `execute` with the probe module:
//! args parsing, param errors, result shape, secret masking on every output path.

use module_runtime::execute;
use runtime_probe::RuntimeProbe;
use serde_json::{json, Value};

fn run(args: Value) -> (Value, i32) {
    execute::<RuntimeProbe>(args.to_string().as_bytes())
}

fn msg(result: &Value) -> &str {
    result["msg"].as_str().unwrap_or_default()
}

#[test]
fn no_params_is_a_noop_with_the_full_result_shape() {
    let (result, status) = run(json!({"_ansible_check_mode": false, "_ansible_future_key": 1}));
    assert_eq!(status, 0);
    assert_eq!(result["changed"], json!(false));
    assert_eq!(result["failed"], json!(false));
    assert_eq!(result["msg"], json!("probe ran"));
    assert_eq!(result["warnings"], json!([]));
    assert_eq!(result["invocation"], json!({"module_args": {}}));
    assert!(
        result.get("diff").is_none(),
        "no diff key outside diff mode"
    );
}

#[test]
fn unknown_params_are_listed_with_the_supported_ones() {
    let (result, status) = run(json!({"bogus": 1, "another": true}));
    assert_eq!(status, 1);
    assert_eq!(result["failed"], json!(true));
    let text = msg(&result);
    assert!(
        text.starts_with("Unsupported parameters for (runtime_probe) module: another, bogus. Supported parameters include: "),
        "{text}"
    );
    assert!(
        text.contains("message") && text.contains("msg") && text.contains("servers"),
        "{text}"
    );
}

#[test]
fn aliases_are_accepted() {
    let (result, status) = run(json!({"msg": "hello"}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["msg"], json!("hello"));
}

#[test]
fn wrong_types_name_the_param_and_the_type() {
    let (result, _) = run(json!({"count": "many"}));
    assert_eq!(
        msg(&result),
        "argument 'count' is of type str and we were unable to convert to int (0 or more)"
    );
    let (result, _) = run(json!({"count": 300}));
    assert!(
        msg(&result).starts_with("argument 'count' has an invalid value integer `300`"),
        "{}",
        msg(&result)
    );
    let (result, _) = run(json!({"fail": "maybe"}));
    assert_eq!(
        msg(&result),
        "argument 'fail' is of type str and we were unable to convert to bool (true/false, yes/no)"
    );
    let (result, _) = run(json!({"servers": [{"name": "a"}, {"name": "b", "port": [1]}]}));
    assert_eq!(msg(&result), "argument 'servers[1].port' is of type list and we were unable to convert to int (0 or more)");
}

#[test]
fn ansible_style_conversions_are_accepted() {
    let (result, status) =
        run(json!({"count": "7", "fail": "no", "servers": [{"name": 5, "port": "8443"}]}));
    assert_eq!(status, 0, "{result}");
    assert_eq!(result["count"], json!(7));
    assert_eq!(result["servers"], json!([["5", 8443]]));
}

#[test]
fn choices_and_missing_required_params_are_explained() {
    let (result, _) = run(json!({"color": "blue"}));
    assert_eq!(
        msg(&result),
        "value of color must be one of: red, green, got: blue"
    );
    let (result, _) = run(json!({"servers": [{"port": 1}]}));
    assert_eq!(msg(&result), "missing required arguments: servers[0].name");
    let (result, _) = run(json!({"servers": [{"name": "a", "weight": 1}]}));
    assert!(
        msg(&result).starts_with("Unsupported parameters for (runtime_probe) module: servers[0].weight. Supported parameters include: name, password, port"),
        "{}",
        msg(&result)
    );
}

#[test]
fn invalid_json_and_non_objects_fail_cleanly() {
    let (result, status) = execute::<RuntimeProbe>(b"{not json");
    assert_eq!(status, 1);
    assert!(
        msg(&result).starts_with("the module arguments are not valid JSON"),
        "{result}"
    );
    let (result, status) = execute::<RuntimeProbe>(b"[1,2]");
    assert_eq!(status, 1);
    assert_eq!(msg(&result), "the module arguments are not a JSON object");
}

#[test]
fn secrets_are_masked_in_every_output_path() {
    let secret = "s3cr3t-Value";
    for path in ["msg", "warning", "diff", "return", "command", "failure"] {
        let (result, _) = run(json!({
            "secret": secret,
            "leak_secret_into": [path],
            "servers": [{"name": "a", "password": "nested-pw"}],
            "_ansible_diff": true,
        }));
        let text = result.to_string();
        assert!(
            !text.contains(secret),
            "secret leaked through {path}: {text}"
        );
        assert!(
            !text.contains("nested-pw"),
            "nested secret leaked through {path}: {text}"
        );
        assert!(
            text.contains("********") || path == "return" && text.contains("returned ********"),
            "{path}: {text}"
        );
        assert_eq!(
            result["invocation"]["module_args"]["secret"],
            json!("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER")
        );
        assert_eq!(
            result["invocation"]["module_args"]["servers"][0]["password"],
            json!("VALUE_SPECIFIED_IN_NO_LOG_PARAMETER")
        );
    }
}

#[test]
fn a_failed_command_reports_rc_stdout_stderr() {
    let (result, status) = run(json!({"command": ["sh", "-c", "echo hi; echo boom >&2; exit 4"]}));
    assert_eq!(status, 1);
    assert_eq!(result["rc"], json!(4));
    assert_eq!(result["stdout"], json!("hi\n"));
    assert_eq!(result["stderr"], json!("boom\n"));
    assert_eq!(msg(&result), "probe command failed (rc=4): boom");
    assert_eq!(
        result["cmd"],
        json!(["sh", "-c", "echo hi; echo boom >&2; exit 4"])
    );
}

#[test]
fn commands_run_with_the_c_locale() {
    let (result, _) = run(json!({"command": ["sh", "-c", "echo $LC_ALL >&2; exit 1"]}));
    assert_eq!(result["stderr"], json!("C\n"));
}

#[test]
fn file_writes_report_changes_and_diffs_and_respect_check_mode() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("conf");
    let args = |check: bool| json!({"path": path, "content": "a = 1\n", "mode": "0640", "_ansible_check_mode": check, "_ansible_diff": true});
    let (result, _) = run(args(true));
    assert_eq!(result["changed"], json!(true));
    assert!(!path.exists(), "check mode wrote the file");
    assert_eq!(result["diff"][0]["after"], json!("a = 1\n"));
    assert_eq!(result["diff"][0]["before_header"], json!("/dev/null"));

    let (result, _) = run(args(false));
    assert_eq!(result["changed"], json!(true));
    assert_eq!(std::fs::read_to_string(&path).expect("written"), "a = 1\n");

    let (result, _) = run(args(false));
    assert_eq!(result["changed"], json!(false), "{result}");
    assert_eq!(result["diff"], json!([]));
}

#[test]
fn a_rejected_validation_leaves_the_file_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("conf");
    std::fs::write(&path, "old\n").expect("seed");
    let (result, status) =
        run(json!({"path": path, "content": "new\n", "validate": ["grep", "-q", "valid", "%s"]}));
    assert_eq!(status, 1);
    assert!(msg(&result).contains("was not changed"), "{result}");
    assert_eq!(std::fs::read_to_string(&path).expect("read"), "old\n");
}
