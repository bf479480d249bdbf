//! Reading kubeadm's output: the first real error of a failed run, and the secrets
//! (bootstrap tokens, certificate keys) it may print.

use module_runtime::{CommandOutput, ModuleError};

fn is_noise(line: &str) -> bool {
    let line = line.trim();
    // klog info/warning lines: I1122 03:36:25.675409  293 file.go:1] ...
    let klog = |prefix: char| {
        line.starts_with(prefix) && line.len() > 5 && line[1..5].bytes().all(|b| b.is_ascii_digit())
    };
    line.is_empty()
        || klog('I')
        || klog('W')
        || line.starts_with("[WARNING")
        || line.starts_with("To see the stack trace")
}

fn is_error(line: &str) -> bool {
    let line = line.trim();
    let lower = line.to_ascii_lowercase();
    lower.starts_with("error")
        || line.starts_with("[ERROR")
        || (line.starts_with('E')
            && line.len() > 5
            && line[1..5].bytes().all(|b| b.is_ascii_digit()))
}

/// The first error kubeadm reported: the first `error...`/`[ERROR ...]` line of stderr
/// (then stdout), with the `[ERROR ...]` lines that follow a header ending in `:`
/// (preflight lists its failures that way); else the first line that is not a warning.
pub fn first_error(output: &CommandOutput) -> String {
    for text in [&output.stderr, &output.stdout] {
        let lines: Vec<&str> = text.lines().collect();
        if let Some(start) = lines.iter().position(|l| is_error(l)) {
            let mut message = lines[start].trim().to_owned();
            if message.ends_with(':') {
                let details: Vec<&str> = lines[start + 1..]
                    .iter()
                    .map(|l| l.trim())
                    .take_while(|l| l.starts_with("[ERROR"))
                    .collect();
                if !details.is_empty() {
                    message = format!("{message} {}", details.join("; "));
                }
            }
            return message;
        }
    }
    [&output.stderr, &output.stdout]
        .iter()
        .flat_map(|text| text.lines())
        .find(|line| !is_noise(line))
        .map(|line| line.trim().to_owned())
        .unwrap_or_default()
}

/// A failed kubeadm run as the runtime's command error: `WHAT (rc=N): first error`,
/// with the whole stdout/stderr alongside (the runtime masks known secrets in them).
pub fn failure(what: &str, output: CommandOutput) -> ModuleError {
    let first = first_error(&output);
    ModuleError::Command {
        msg: if first.is_empty() {
            format!("{what} (rc={})", output.rc)
        } else {
            format!("{what} (rc={}): {first}", output.rc)
        },
        cmd: output.argv,
        rc: output.rc,
        stdout: output.stdout,
        stderr: output.stderr,
    }
}

/// Secret-shaped words in kubeadm output: bootstrap tokens (`[a-z0-9]{6}.[a-z0-9]{16}`)
/// and 64-hex certificate keys (a `sha256:` CA hash is public and left alone).
pub fn secrets_in(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let bytes = text.as_bytes();
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'.';
    let mut start = 0;
    while start < bytes.len() {
        if !is_word(bytes[start]) {
            start += 1;
            continue;
        }
        let end = start + bytes[start..].iter().take_while(|&&b| is_word(b)).count();
        let word = text[start..end].trim_end_matches('.');
        let after_sha256 = text[..start].ends_with("sha256:");
        if crate::token::is_valid_token(word)
            || (!after_sha256 && crate::token::is_valid_certificate_key(word))
        {
            found.push(word.to_owned());
        }
        start = end;
    }
    found
}

/// Every secret-shaped word in what a failed command's error would print.
pub fn secrets_in_error(error: &ModuleError) -> Vec<String> {
    let mut found = secrets_in(&error.to_string());
    if let ModuleError::Command {
        cmd,
        stdout,
        stderr,
        ..
    } = error
    {
        found.extend(secrets_in(stdout));
        found.extend(secrets_in(stderr));
        for arg in cmd {
            found.extend(secrets_in(arg));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn output(stdout: &str, stderr: &str) -> CommandOutput {
        CommandOutput {
            argv: vec!["kubeadm".into()],
            rc: 1,
            stdout: stdout.into(),
            stderr: stderr.into(),
        }
    }

    #[test]
    fn first_error_skips_warnings_and_gathers_preflight_failures() {
        let stderr = "W1122 03:36:25.675409     293 common.go:101] your configuration file uses a deprecated API spec\n\
                      \t[WARNING Service-Kubelet]: kubelet service is not enabled\n\
                      error execution phase preflight: [preflight] Some fatal errors occurred:\n\
                      \t[ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists\n\
                      \t[ERROR Port-10250]: Port 10250 is in use\n\
                      [preflight] If you know what you are doing, you can make a check non-fatal with `--ignore-preflight-errors=...`\n\
                      To see the stack trace of this error execute with --v=5 or higher\n";
        assert_eq!(
            first_error(&output("[preflight] Running pre-flight checks\n", stderr)),
            "error execution phase preflight: [preflight] Some fatal errors occurred: \
             [ERROR FileAvailable--etc-kubernetes-kubelet.conf]: /etc/kubernetes/kubelet.conf already exists; \
             [ERROR Port-10250]: Port 10250 is in use"
        );
        assert_eq!(
            first_error(&output(
                "",
                "W1122 03:36:25.675409  1 x.go:1] w\nsomething odd happened\n"
            )),
            "something odd happened"
        );
        assert_eq!(first_error(&output("", "")), "");
    }

    #[test]
    fn secrets_are_found_but_ca_hashes_are_not() {
        let key = "0123456789abcdef".repeat(4);
        let hash = "fedcba9876543210".repeat(4);
        let text = format!(
            "kubeadm join k8s:6443 --token abcdef.0123456789abcdef \\\n\t--discovery-token-ca-cert-hash sha256:{hash} \\\n\t--control-plane --certificate-key {key}\n[bootstrap-token] Using token: zzzzzz.0123456789abcdef\n"
        );
        assert_eq!(
            secrets_in(&text),
            vec![
                "abcdef.0123456789abcdef".to_string(),
                key,
                "zzzzzz.0123456789abcdef".into()
            ]
        );
        assert!(secrets_in("version v1.31.4 node-1.example.com").is_empty());
    }
}
