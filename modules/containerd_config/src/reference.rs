//! Image references as containerd parses them (the grammar of distribution/reference):
//! `[HOST[:PORT]/]PATH[:TAG][@ALGORITHM:HEX]`, the name (host and path) at most 255
//! characters, path components lowercase, a tag at most 128 characters.

/// The longest image name (host and path) distribution/reference accepts.
pub const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;

/// Why `text` is not an image reference, or None when it is one.
pub fn reference_problem(text: &str) -> Option<String> {
    if text.is_empty() {
        return Some("it is empty".into());
    }
    if let Some(c) = text.chars().find(|c| c.is_whitespace() || c.is_control()) {
        return Some(format!("it holds {c:?}"));
    }
    let (rest, digest) = match text.split_once('@') {
        Some((rest, digest)) => (rest, Some(digest)),
        None => (text, None),
    };
    if let Some(digest) = digest {
        if let Some(problem) = digest_problem(digest) {
            return Some(problem);
        }
    }
    let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
    let (name, tag) = match rest[last_slash..].rfind(':') {
        Some(i) => (&rest[..last_slash + i], Some(&rest[last_slash + i + 1..])),
        None => (rest, None),
    };
    if name.len() > NAME_MAX {
        return Some(format!(
            "the image name is {} characters long; image names are limited to {NAME_MAX}",
            name.len()
        ));
    }
    if let Some(tag) = tag {
        let first_ok = tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
        let rest_ok = tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
        if !first_ok || !rest_ok || tag.len() > TAG_MAX {
            return Some(format!(
                "the tag '{tag}' must be 1 to {TAG_MAX} letters, digits, '_', '.' or '-', not starting with '.' or '-'"
            ));
        }
    }
    let mut components: Vec<&str> = name.split('/').collect();
    let has_domain = components.len() > 1
        && (components[0].contains(['.', ':']) || components[0] == "localhost");
    if has_domain {
        let domain = components.remove(0);
        if let Some(problem) = domain_problem(domain) {
            return Some(problem);
        }
    }
    for component in components {
        if !path_component_ok(component) {
            return Some(format!(
                "'{component}' is not a path component (lowercase letters and digits, separated by '.', '_', '__' or '-')"
            ));
        }
    }
    None
}

fn digest_problem(digest: &str) -> Option<String> {
    let ok = digest.split_once(':').is_some_and(|(algorithm, hex)| {
        !algorithm.is_empty()
            && algorithm
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "+._-".contains(c))
            && hex.len() >= 32
            && hex.chars().all(|c| c.is_ascii_hexdigit())
    });
    (!ok).then(|| format!("'@{digest}' is not a digest (e.g. @sha256:<64 hex digits>)"))
}

fn domain_problem(domain: &str) -> Option<String> {
    let (host, port) = match domain.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || domain.starts_with('[') => (host, Some(port)),
        _ => (domain, None),
    };
    if let Some(port) = port {
        if port.is_empty() || !port.chars().all(|c| c.is_ascii_digit()) {
            return Some(format!("'{domain}' has a port that is not a number"));
        }
    }
    let host_ok = if let Some(inner) = host.strip_prefix('[') {
        inner
            .strip_suffix(']')
            .is_some_and(|ip| ip.parse::<std::net::Ipv6Addr>().is_ok())
    } else {
        host.split('.').all(|label| {
            !label.is_empty()
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
    };
    (!host_ok).then(|| format!("'{domain}' is not a registry host name"))
}

/// `[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*`
fn path_component_ok(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(bytes[0]) || !alnum(bytes[bytes.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        if alnum(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && !alnum(bytes[i]) {
            i += 1;
        }
        let separator = &component[start..i];
        let ok = matches!(separator, "." | "_" | "__") || separator.bytes().all(|b| b == b'-');
        if !ok {
            return false;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_containerd_accepts() {
        for text in [
            "registry.k8s.io/pause:3.10",
            "pause",
            "library/pause:latest",
            "registry.corp.example:5000/team/pause:3.10",
            "localhost/pause:1",
            "[::1]:5000/pause:3.9",
            "registry.k8s.io/pause@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a",
            "registry.k8s.io/pause:3.10@sha256:ee6521f290b2168b6e0935a181d4cff9be1ac3f505666ef0e3c98fae8199917a",
            "a__b/c-d---e.f:_tag",
        ] {
            assert_eq!(reference_problem(text), None, "{text}");
        }
    }

    #[test]
    fn references_containerd_refuses() {
        let long = format!("registry.k8s.io/{}:3.10", "p".repeat(10_000));
        for (text, part) in [
            (long.as_str(), "limited to 255"),
            (
                "registry.k8s.io/Pause:3.10",
                "'Pause' is not a path component",
            ),
            ("registry.k8s.io/pause:.x", "the tag '.x'"),
            ("registry.k8s.io/pause 3.10", "holds ' '"),
            ("registry.k8s.io/pause@sha256:xyz", "is not a digest"),
            ("reg_istry.example:5000/pause", "not a registry host name"),
            ("registry.example:port/pause", "port that is not a number"),
            ("", "empty"),
        ] {
            let problem = reference_problem(text).unwrap_or_default();
            assert!(problem.contains(part), "{text}: {problem}");
        }
    }
}
