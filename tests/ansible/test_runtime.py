"""The module runtime's protocol through real Ansible, with the test-only runtime_probe
module: secrets never reach output at -vvv, panics still give a clean failure, args can
come on standard input."""

import json

from conftest import REPO, podman, run_playbook

SECRET = "Tr0ub4dor-and-3"
LEAK_PATHS = ["msg", "warning", "diff", "return", "command", "failure", "panic"]


def test_secret_params_never_reach_output_at_vvv(shared_host, tmp_path):
    tasks = [
        {
            "name": f"leak through {path}",
            "runtime_probe": {
                "secret": "{{ probe_secret }}",
                "leak_secret_into": [path],
                "servers": [{"name": "a", "password": "{{ probe_secret }}-nested"}],
            },
            "ignore_errors": True,
        }
        for path in LEAK_PATHS
    ]
    # The secret comes from a variable, as from a vault: Ansible itself prints a failed
    # task's source lines at -vvv, and this test is about what the module prints.
    tasks.insert(0, {"ansible.builtin.set_fact": {"probe_secret": SECRET}, "no_log": True})
    run = run_playbook(tmp_path, {"target": shared_host}, tasks, verbosity=3, diff=True, json_output=False)
    assert run.rc == 0, run.output
    assert SECRET not in run.output
    assert "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" in run.output  # invocation was printed, masked
    assert "********" in run.output  # and the leaks were masked, not dropped
    assert run.output.count("TASK [leak through") == len(LEAK_PATHS)


def test_panic_yields_a_parsed_failure(shared_host, tmp_path):
    run = run_playbook(tmp_path, {"target": shared_host}, [{"runtime_probe": {"panic": True}, "ignore_errors": True}])
    result = run.result(0)
    assert result["failed"] is True
    assert result["msg"].startswith("module panicked at ")
    assert "MODULE FAILURE" not in json.dumps(result)


def test_failed_command_reports_rc_stdout_stderr(shared_host, tmp_path):
    tasks = [{"runtime_probe": {"command": ["sh", "-c", "echo out; echo err >&2; exit 7"]}, "ignore_errors": True}]
    result = run_playbook(tmp_path, {"target": shared_host}, tasks).result(0)
    assert (result["rc"], result["stdout"], result["stderr"]) == (7, "out\n", "err\n")
    assert result["msg"] == "probe command failed (rc=7): err"


def test_args_on_standard_input(shared_host):
    podman("cp", str(REPO / "build/test-modules/runtime_probe"), f"{shared_host.name}:/usr/local/bin/runtime_probe")
    args = json.dumps({"message": "via stdin", "secret": SECRET, "leak_secret_into": ["msg"]})
    for source in ("-", "/dev/stdin"):
        out = shared_host.sh(f"echo '{args}' | runtime_probe {source}").stdout
        result = json.loads(out)
        assert result["msg"] == "via stdin with ********"
        assert result["failed"] is False


def test_unknown_ansible_keys_and_check_mode_reach_the_module(shared_host, tmp_path):
    tasks = [{"runtime_probe": {"path": "/tmp/probe.conf", "content": "x\n"}}]
    run = run_playbook(tmp_path, {"target": shared_host}, tasks, check=True, diff=True)
    result = run.result(0)
    assert result["changed"] is True
    assert result["diff"][0]["after"] == "x\n"
    assert not shared_host.exists("/tmp/probe.conf")
