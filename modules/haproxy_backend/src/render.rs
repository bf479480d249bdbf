//! The text of the sections the module owns, from validated settings. Deterministic:
//! the same settings always give the same bytes.

use crate::address::{BindAddress, ServerAddress};
use crate::edit::{SectionId, WantedSection};

/// The comment that marks a section as the module's own (see `ownership`).
pub const MANAGED_MARKER: &str = "# Managed by baremetal.k8s.haproxy_backend";

pub const MANAGED_COMMENT: &str =
    "    # Managed by baremetal.k8s.haproxy_backend: local edits are overwritten.\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    FrontendBackend,
    Listen,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ServerState {
    Present,
    Absent,
    Drain,
    Disabled,
}

impl ServerState {
    pub fn as_str(self) -> &'static str {
        match self {
            ServerState::Present => "present",
            ServerState::Absent => "absent",
            ServerState::Drain => "drain",
            ServerState::Disabled => "disabled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DesiredServer {
    pub name: String,
    pub address: ServerAddress,
    pub port: u16,
    pub state: ServerState,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsListener {
    pub bind: BindAddress,
    pub user: String,
    pub password: String,
    pub uri: String,
}

/// Everything the sections are made of, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Desired {
    pub name: String,
    pub style: Style,
    pub bind: BindAddress,
    pub balance: String,
    pub servers: Vec<DesiredServer>,
    pub check_uri: String,
    pub check_inter: String,
    pub check_fall: u32,
    pub check_rise: u32,
    pub timeout_connect: String,
    pub timeout_client: String,
    pub timeout_server: String,
    pub timeout_check: String,
    pub stats: Option<StatsListener>,
}

impl Desired {
    /// The stats listener's proxy name.
    pub fn stats_name(&self) -> String {
        format!("{}-stats", self.name)
    }

    /// Every section the module may have written, whatever the style: the ones to remove
    /// when they are not wanted.
    pub fn owned(&self) -> Vec<SectionId> {
        vec![
            SectionId::new("frontend", &self.name),
            SectionId::new("backend", &self.name),
            SectionId::new("listen", &self.name),
            SectionId::new("listen", &self.stats_name()),
        ]
    }

    /// The sections wanted, in file order.
    pub fn sections(&self) -> Vec<WantedSection> {
        let mut sections = match self.style {
            Style::FrontendBackend => vec![
                WantedSection {
                    id: SectionId::new("frontend", &self.name),
                    text: self.frontend(),
                },
                WantedSection {
                    id: SectionId::new("backend", &self.name),
                    text: self.backend(),
                },
            ],
            Style::Listen => vec![WantedSection {
                id: SectionId::new("listen", &self.name),
                text: self.listen(),
            }],
        };
        if let Some(stats) = &self.stats {
            sections.push(WantedSection {
                id: SectionId::new("listen", &self.stats_name()),
                text: self.stats_listen(stats),
            });
        }
        sections
    }

    fn frontend(&self) -> String {
        let mut out = format!("frontend {}\n{MANAGED_COMMENT}", self.name);
        self.push_listener_lines(&mut out);
        line(&mut out, &format!("default_backend {}", self.name));
        out
    }

    fn backend(&self) -> String {
        let mut out = format!("backend {}\n{MANAGED_COMMENT}", self.name);
        line(&mut out, "mode tcp");
        self.push_balancing_lines(&mut out);
        out
    }

    fn listen(&self) -> String {
        let mut out = format!("listen {}\n{MANAGED_COMMENT}", self.name);
        self.push_listener_lines(&mut out);
        self.push_balancing_lines(&mut out);
        out
    }

    fn push_listener_lines(&self, out: &mut String) {
        line(out, &format!("bind {}", self.bind.render()));
        line(out, "mode tcp");
        line(out, "option tcplog");
        line(out, &format!("timeout client {}", self.timeout_client));
    }

    /// Balancing and the apiserver health check: TLS to the server, GET /readyz, 200.
    fn push_balancing_lines(&self, out: &mut String) {
        line(out, &format!("balance {}", self.balance));
        line(out, "option httpchk");
        line(out, "http-check connect ssl");
        line(
            out,
            &format!("http-check send meth GET uri {}", self.check_uri),
        );
        line(out, "http-check expect status 200");
        // A connection to an apiserver that just died fails before the checks mark it
        // DOWN: try again, on another server at every retry.
        line(out, "option redispatch 1");
        line(out, "retries 3");
        line(out, &format!("timeout connect {}", self.timeout_connect));
        line(out, &format!("timeout server {}", self.timeout_server));
        line(out, &format!("timeout check {}", self.timeout_check));
        line(
            out,
            &format!(
                // A failed connection marks the server DOWN without waiting for the
                // checks, and the sessions of a server marked DOWN are closed (a crashed
                // apiserver never closes them: watches would hang until timeout server).
                "default-server check check-ssl verify none inter {} fall {} rise {} \
                 observe layer4 error-limit 1 on-error mark-down on-marked-down shutdown-sessions",
                self.check_inter, self.check_fall, self.check_rise
            ),
        );
        for server in &self.servers {
            let mut text = format!(
                "server {} {}",
                server.name,
                server.address.render_with_port(server.port)
            );
            match server.state {
                ServerState::Absent => continue,
                ServerState::Present => {}
                // No config keyword means "drain"; weight 0 takes no new connections,
                // and the runtime API sets the real DRAIN state.
                ServerState::Drain => text.push_str(" weight 0"),
                ServerState::Disabled => text.push_str(" disabled"),
            }
            line(out, &text);
        }
    }

    fn stats_listen(&self, stats: &StatsListener) -> String {
        let mut out = format!("listen {}\n{MANAGED_COMMENT}", self.stats_name());
        line(&mut out, &format!("bind {}", stats.bind.render()));
        line(&mut out, "mode http");
        line(&mut out, "timeout client 30s");
        line(&mut out, "stats enable");
        line(&mut out, &format!("stats uri {}", stats.uri));
        line(&mut out, "stats refresh 10s");
        line(
            &mut out,
            &format!(
                "stats auth {}",
                quote_word(&format!("{}:{}", stats.user, stats.password))
            ),
        );
        out
    }
}

fn line(out: &mut String, text: &str) {
    out.push_str("    ");
    out.push_str(text);
    out.push('\n');
}

/// One haproxy word for any text without control characters: as is when plain, else
/// in single quotes (nothing is special inside them), else in double quotes with `"`
/// and `\` escaped. Text holding both `'` and `$` is refused by validation, because
/// haproxy expands `$` inside double quotes.
pub fn quote_word(text: &str) -> String {
    let plain = !text.is_empty()
        && !text
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '#' | '"' | '\'' | '\\' | '$'));
    if plain {
        text.to_owned()
    } else if !text.contains('\'') {
        format!("'{text}'")
    } else {
        let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::split_words;

    #[test]
    fn the_comment_carries_the_marker() {
        assert!(MANAGED_COMMENT.trim_start().starts_with(MANAGED_MARKER));
    }

    #[test]
    fn quoted_words_read_back_as_written() {
        for text in [
            "plain",
            "a b",
            "p#ss",
            "it's",
            "back\\slash \"q\" 'x'",
            "$HOME",
        ] {
            let quoted = quote_word(text);
            assert_eq!(
                split_words(&format!("stats auth {quoted}")).expect("splits"),
                ["stats", "auth", text],
                "{quoted}"
            );
        }
    }
}
