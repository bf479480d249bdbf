//! Passwords already in the file: every `stats auth USER:PASSWORD` (of any section, not
//! only the module's own) and every `user NAME password HASH` / `insecure-password PASS`
//! of a `userlist`. They are registered as secrets before anything is diffed, so neither
//! the diff (its context lines, or the whole before/after texts) nor a message shows them.

use crate::config::{split_words_raw, Document};

/// The secret texts of `doc`: each password as haproxy reads it and as it is written
/// (quoted, escaped), and each `USER:PASSWORD` word whole.
pub fn file_secrets(doc: &Document<'_>) -> Vec<String> {
    let mut secrets = Vec::new();
    for section in &doc.sections {
        for line in section.directives() {
            let Ok(words) = split_words_raw(&doc.text[line.span.clone()]) else {
                continue;
            };
            if is_stats_auth(&words) {
                push_stats_auth(&mut secrets, &words[2]);
            } else if section.keyword == "userlist" {
                push_userlist_password(&mut secrets, &words);
            }
        }
    }
    secrets.retain(|s| !s.is_empty());
    secrets
}

fn is_stats_auth(words: &[(String, &str)]) -> bool {
    words.len() >= 3 && words[0].0 == "stats" && words[1].0 == "auth"
}

/// `stats auth USER:PASSWORD`: the word as read and as written, and the password alone.
fn push_stats_auth(secrets: &mut Vec<String>, (word, raw): &(String, &str)) {
    secrets.push(word.clone());
    secrets.push((*raw).to_owned());
    if let Some((_, password)) = word.split_once(':') {
        secrets.push(password.to_owned());
    }
}

/// `user NAME password HASH` and `user NAME insecure-password PASSWORD` (other keywords,
/// such as `groups`, may come before or after).
fn push_userlist_password(secrets: &mut Vec<String>, words: &[(String, &str)]) {
    if words.first().map(|(w, _)| w.as_str()) != Some("user") {
        return;
    }
    for pair in words.windows(2) {
        if matches!(pair[0].0.as_str(), "password" | "insecure-password") {
            secrets.push(pair[1].0.clone());
            secrets.push(pair[1].1.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_stats_auth_of_every_section_and_userlist_passwords() {
        let text = "global\n    daemon\n\nlisten stats\n    stats auth admin:awesomePassword\n    stats auth \"ops:it's \\\"q\\\"\"\n\nuserlist people\n    user alice password $6$salt$hash groups g\n    user bob insecure-password b0bPw\n    group g users alice\n\nbackend b\n    stats auth  'viewer:v p'  # read only\n";
        let doc = Document::parse(text).expect("parses");
        let found = file_secrets(&doc);
        for expected in [
            "admin:awesomePassword",
            "awesomePassword",
            "ops:it's \"q\"",
            "it's \"q\"",
            "\"ops:it's \\\"q\\\"\"",
            "$6$salt$hash",
            "b0bPw",
            "viewer:v p",
            "'viewer:v p'",
            "v p",
        ] {
            assert!(found.iter().any(|s| s == expected), "{expected}: {found:?}");
        }
        assert!(!found.iter().any(|s| s == "g" || s == "alice"), "{found:?}");
    }
}
