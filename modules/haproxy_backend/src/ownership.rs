//! Which sections the module may rewrite or remove. A section carrying the marker
//! comment the module writes is its own. Without the marker, a section was written by
//! hand:
//! - `frontend NAME`, `backend NAME` and `listen NAME` are the proxies the user named in
//!   `name`: with `state: present` they are taken over (rewritten whole, or removed when
//!   the other style replaces them), with a warning; this is how the module drops into a
//!   hand-written haproxy.cfg. With `state: absent` they are left in place, with a warning.
//! - `listen NAME-stats` is a name the user never typed: it is taken over only when
//!   `stats: true` asks for that listener; otherwise it is left in place, with a warning.

use crate::config::{Document, Section};
use crate::edit::SectionId;
use crate::render::{Desired, MANAGED_MARKER};

/// The sections the edit may touch, and the warnings about hand-written ones.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Managed {
    pub sections: Vec<SectionId>,
    pub warnings: Vec<String>,
}

/// True when a line of the section's body is the module's marker comment.
pub fn has_marker(doc: &Document<'_>, section: &Section) -> bool {
    section.lines.iter().skip(1).any(|line| {
        doc.text[line.span.clone()]
            .trim_start()
            .starts_with(MANAGED_MARKER)
    })
}

/// The module's sections in `doc` that it may edit, for `state: present` (`present`) or
/// `state: absent`.
pub fn managed_sections(doc: &Document<'_>, desired: &Desired, present: bool) -> Managed {
    let stats_id = SectionId::new("listen", &desired.stats_name());
    let wanted: Vec<SectionId> = if present {
        desired.sections().into_iter().map(|w| w.id).collect()
    } else {
        Vec::new()
    };
    let mut managed = Managed::default();
    for id in desired.owned() {
        let Some(section) = doc.sections.iter().find(|s| id.matches(s)) else {
            managed.sections.push(id);
            continue;
        };
        if has_marker(doc, section) {
            managed.sections.push(id);
            continue;
        }
        let is_wanted = wanted.contains(&id);
        let take_over = present && (is_wanted || id != stats_id);
        let line = section.header_line();
        let title = section.title();
        managed.warnings.push(if !take_over {
            format!(
                "{title} (line {line}) was left in place: it has no '{MANAGED_MARKER}' comment, so the module did not write it; remove it by hand if it is not wanted"
            )
        } else if is_wanted {
            format!(
                "{title} (line {line}) was written by hand (no '{MANAGED_MARKER}' comment): the module took it over and rewrote it whole"
            )
        } else {
            format!(
                "{title} (line {line}) was written by hand (no '{MANAGED_MARKER}' comment): the module removed it, because the chosen style replaces it"
            )
        });
        if take_over {
            managed.sections.push(id);
        }
    }
    managed
}
