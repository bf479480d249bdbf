//! Bootstrap tokens: their format, `kubeadm token list -o json`, which token can be
//! reused for a join, and the Go-style durations and RFC 3339 times kubeadm speaks.

use serde::Deserialize;
use serde_json::Value;

/// The group kubeadm's default node tokens carry; the CSR auto-approval binds to it.
pub const DEFAULT_NODE_TOKEN_GROUP: &str = "system:bootstrappers:kubeadm:default-node-token";
/// The description of the hidden 2 h token whose expiry deletes the kubeadm-certs Secret
/// (kubeadm phases/copycerts: createShortLivedBootstrapToken).
pub const CERTS_PROXY_TOKEN_DESCRIPTION: &str =
    "Proxy for managing TTL for the kubeadm-certs secret";

/// `[a-z0-9]{6}.[a-z0-9]{16}`, as kubeadm's bootstrap token regexp.
pub fn is_valid_token(token: &str) -> bool {
    let part = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    match token.split_once('.') {
        Some((id, secret)) => part(id, 6) && part(secret, 16),
        None => false,
    }
}

/// The public half of a token (`abcdef` of `abcdef.0123456789abcdef`).
pub fn token_id(token: &str) -> &str {
    token.split_once('.').map_or(token, |(id, _)| id)
}

/// A certificate key: 32 bytes, hex-encoded.
pub fn is_valid_certificate_key(key: &str) -> bool {
    key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit())
}

/// One entry of `kubeadm token list -o json`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedToken {
    pub token: String,
    pub description: String,
    /// Unix seconds; `None` never expires.
    pub expires: Option<i64>,
    pub usages: Vec<String>,
    pub groups: Vec<String>,
}

impl ListedToken {
    pub fn id(&self) -> &str {
        token_id(&self.token)
    }

    /// Seconds left at `now`; `None` when the token never expires.
    pub fn remaining(&self, now: i64) -> Option<i64> {
        self.expires.map(|expires| expires - now)
    }

    fn lasts(&self, now: i64, min_seconds: i64) -> bool {
        self.remaining(now).map_or(true, |left| left >= min_seconds)
    }

    /// A token a node can join with: discovery needs `signing` (the cluster-info JWS),
    /// the TLS bootstrap needs `authentication` and the default node group.
    pub fn can_join(&self) -> bool {
        let has = |list: &[String], item: &str| list.iter().any(|x| x == item);
        has(&self.usages, "signing")
            && has(&self.usages, "authentication")
            && has(&self.groups, DEFAULT_NODE_TOKEN_GROUP)
            && self.description != CERTS_PROXY_TOKEN_DESCRIPTION
    }

    pub fn is_certs_proxy(&self) -> bool {
        self.description == CERTS_PROXY_TOKEN_DESCRIPTION
    }
}

#[derive(Deserialize)]
struct ListedTokenJson {
    token: String,
    // kubeadm omits empty fields; null is read as empty too.
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    expires: Option<String>,
    #[serde(default)]
    usages: Option<Vec<String>>,
    #[serde(default)]
    groups: Option<Vec<String>>,
}

/// Parses `kubeadm token list -o json`: a stream of JSON objects, one per token (not
/// an array). Objects of other kinds are skipped.
pub fn parse_token_list(text: &str) -> Result<Vec<ListedToken>, String> {
    let mut tokens = Vec::new();
    for value in serde_json::Deserializer::from_str(text).into_iter::<Value>() {
        let value =
            value.map_err(|e| format!("kubeadm token list -o json printed invalid JSON: {e}"))?;
        if value.get("kind").and_then(Value::as_str) != Some("BootstrapToken") {
            continue;
        }
        let entry: ListedTokenJson = serde_json::from_value(value)
            .map_err(|e| format!("kubeadm token list -o json: unexpected token entry: {e}"))?;
        if !is_valid_token(&entry.token) {
            // Never echo it: it may be a secret in another shape.
            return Err("kubeadm token list -o json: an entry's token is not of the form [a-z0-9]{6}.[a-z0-9]{16}".into());
        }
        let expires = match entry.expires.as_deref() {
            None | Some("") => None,
            Some(text) => Some(parse_rfc3339(text).ok_or_else(|| {
                format!("kubeadm token list -o json: expires {text:?} is not an RFC 3339 time")
            })?),
        };
        tokens.push(ListedToken {
            token: entry.token,
            description: entry.description.unwrap_or_default(),
            expires,
            usages: entry.usages.unwrap_or_default(),
            groups: entry.groups.unwrap_or_default(),
        });
    }
    Ok(tokens)
}

/// The join token to reuse: one that can join and lasts at least `min_seconds` more;
/// the longest-lasting wins (never-expiring first), then the smallest id, so the choice
/// is the same on every run.
pub fn reusable_join_token(
    tokens: &[ListedToken],
    now: i64,
    min_seconds: i64,
) -> Option<&ListedToken> {
    tokens
        .iter()
        .filter(|t| t.can_join() && t.lasts(now, min_seconds))
        .min_by(|a, b| {
            let left = |t: &ListedToken| t.expires.unwrap_or(i64::MAX);
            left(b).cmp(&left(a)).then_with(|| a.token.cmp(&b.token))
        })
}

/// The newest kubeadm-certs proxy token still valid: the one whose upload the
/// kubeadm-certs Secret now holds (every upload creates one; the Secret is rewritten).
pub fn newest_certs_proxy(tokens: &[ListedToken], now: i64) -> Option<&ListedToken> {
    tokens
        .iter()
        .filter(|t| t.is_certs_proxy() && t.lasts(now, 1))
        .max_by(|a, b| {
            a.expires
                .unwrap_or(i64::MAX)
                .cmp(&b.expires.unwrap_or(i64::MAX))
                .then_with(|| b.token.cmp(&a.token))
        })
}

/// `YYYY-MM-DDTHH:MM:SS[.frac](Z|±HH:MM)` to Unix seconds.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let num = |range: std::ops::Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| s.parse().ok())?
    };
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let mut rest = &text[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let digits = frac.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return None;
        }
        rest = &frac[digits..];
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ if rest.len() == 6 && rest.as_bytes()[3] == b':' => {
            let sign = match rest.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let hh: i64 = rest[1..3].parse().ok()?;
            let mm: i64 = rest[4..6].parse().ok()?;
            sign * (hh * 3600 + mm * 60)
        }
        _ => return None,
    };
    Some(days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset)
}

/// Days since 1970-01-01 (H. Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Unix seconds to `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_rfc3339(seconds: i64) -> String {
    let time = if seconds >= 0 {
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds as u64)
    } else {
        std::time::UNIX_EPOCH
    };
    module_runtime::files::utc_timestamp(time)
}

/// A Go duration of hours, minutes and seconds (`24h`, `1h30m`, `90s`, `24h0m0s`, `0`),
/// or a bare number of seconds, as whole seconds.
pub fn parse_duration(text: &str) -> Option<u64> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let mut total: u64 = 0;
    let mut number = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600,
            'm' => 60,
            's' => 1,
            _ => return None,
        };
        let value: u64 = std::mem::take(&mut number).parse().ok()?;
        total = total.checked_add(value.checked_mul(unit)?)?;
    }
    number.is_empty().then_some(total)
}

/// Whole seconds as Go prints a duration: `24h0m0s`, `5m0s`, `45s`.
pub fn format_duration(seconds: u64) -> String {
    let (h, m, s) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    if h > 0 {
        format!("{h}h{m}m{s}s")
    } else if m > 0 {
        format!("{m}m{s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_format_is_kubeadms() {
        assert!(is_valid_token("abcdef.0123456789abcdef"));
        for bad in [
            "",
            "abcdef",
            "ABCDEF.0123456789abcdef",
            "abcde.0123456789abcdef",
            "abcdef.0123456789abcde",
            "abcdef:0123456789abcdef",
            "abcdef.0123456789abcdef.",
            "abcdef.0123456789abcdeg0",
        ] {
            assert!(!is_valid_token(bad), "{bad:?}");
        }
        assert_eq!(token_id("abcdef.0123456789abcdef"), "abcdef");
    }

    #[test]
    fn rfc3339_and_durations() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2024-02-29T12:34:56Z"), Some(1_709_210_096));
        assert_eq!(
            parse_rfc3339("2024-02-29T14:34:56+02:00"),
            Some(1_709_210_096)
        );
        assert_eq!(
            parse_rfc3339("2024-02-29T12:34:56.123456Z"),
            Some(1_709_210_096)
        );
        for bad in [
            "",
            "2024-02-29",
            "2024-02-29 12:34:56Z",
            "2024-13-01T00:00:00Z",
            "2024-02-29T12:34:56",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad:?}");
        }
        assert_eq!(format_rfc3339(1_709_210_096), "2024-02-29T12:34:56Z");
        assert_eq!(parse_duration("24h"), Some(86_400));
        assert_eq!(parse_duration("24h0m0s"), Some(86_400));
        assert_eq!(parse_duration("1h30m"), Some(5400));
        assert_eq!(parse_duration("300"), Some(300));
        assert_eq!(parse_duration("0"), Some(0));
        for bad in ["", "h", "1d", "1.5h", "-1h", "1h30"] {
            assert_eq!(parse_duration(bad), None, "{bad:?}");
        }
        assert_eq!(format_duration(86_400), "24h0m0s");
        assert_eq!(format_duration(300), "5m0s");
        assert_eq!(format_duration(45), "45s");
    }

    const LIST: &str = r#"{
    "kind": "BootstrapToken",
    "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
    "token": "aaaaaa.0123456789abcdef",
    "description": "Proxy for managing TTL for the kubeadm-certs secret",
    "expires": "2026-11-22T05:00:00Z"
}
{
    "kind": "BootstrapToken",
    "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
    "token": "bbbbbb.0123456789abcdef",
    "description": "The default bootstrap token generated by 'kubeadm init'.",
    "expires": "2026-11-23T03:00:00Z",
    "usages": ["authentication", "signing"],
    "groups": ["system:bootstrappers:kubeadm:default-node-token"]
}
{
    "kind": "BootstrapToken",
    "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
    "token": "cccccc.0123456789abcdef",
    "expires": "2026-11-22T03:30:00Z",
    "usages": ["authentication", "signing"],
    "groups": ["system:bootstrappers:kubeadm:default-node-token"]
}
{
    "kind": "BootstrapToken",
    "apiVersion": "output.kubeadm.k8s.io/v1alpha3",
    "token": "dddddd.0123456789abcdef",
    "usages": ["authentication"],
    "groups": ["system:bootstrappers:kubeadm:default-node-token"]
}
"#;

    #[test]
    fn token_list_stream_and_reuse_choice() {
        let tokens = parse_token_list(LIST).expect("parse");
        assert_eq!(tokens.len(), 4);
        assert_eq!(tokens[3].expires, None);
        let now = parse_rfc3339("2026-11-22T03:00:00Z").expect("now");
        // bbbbbb lasts 24 h; cccccc 30 min; dddddd lacks the signing usage; aaaaaa is the proxy.
        let chosen = reusable_join_token(&tokens, now, 3600).expect("one");
        assert_eq!(chosen.id(), "bbbbbb");
        assert_eq!(
            reusable_join_token(&tokens, now + 23 * 3600 + 1, 3600).map(ListedToken::id),
            None
        );
        assert_eq!(
            newest_certs_proxy(&tokens, now).map(ListedToken::id),
            Some("aaaaaa")
        );
        assert_eq!(
            newest_certs_proxy(&tokens, now + 2 * 3600).map(ListedToken::id),
            None
        );
        assert_eq!(parse_token_list("").expect("empty"), vec![]);
        assert!(
            parse_token_list("{\"kind\": \"BootstrapToken\", \"token\": \"SECRET\"}")
                .expect_err("bad token")
                .contains("not of the form")
        );
    }
}
