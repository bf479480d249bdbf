//! Replacing, inserting and removing whole sections of a haproxy configuration while
//! every other byte stays as it was. Each step works on a fresh parse of the text the
//! previous step produced, so spans are never stale.

use crate::config::{Document, ParseError, Section};

/// A section the module owns: `frontend NAME`, `backend NAME`, `listen NAME`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectionId {
    pub keyword: &'static str,
    pub name: String,
}

impl SectionId {
    pub fn new(keyword: &'static str, name: &str) -> Self {
        SectionId {
            keyword,
            name: name.to_owned(),
        }
    }

    pub fn matches(&self, section: &Section) -> bool {
        section.is(self.keyword, &self.name)
    }
}

/// A section as the module wants it: its id and its full text (ending in a newline).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WantedSection {
    pub id: SectionId,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EditError {
    Parse(ParseError),
    /// The file has something the module must not touch by guessing.
    Refused(String),
}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EditError::Parse(e) => e.fmt(f),
            EditError::Refused(msg) => f.write_str(msg),
        }
    }
}

impl From<ParseError> for EditError {
    fn from(e: ParseError) -> Self {
        EditError::Parse(e)
    }
}

/// Brings the sections in `owned` to `wanted` (a subset of `owned`, in the order they
/// should appear): owned sections not wanted are removed, wanted ones are replaced in
/// place, missing ones are inserted next to their siblings. With none of the wanted
/// sections present they take the place of the first owned section, or go at the end.
pub fn apply(
    text: &str,
    owned: &[SectionId],
    wanted: &[WantedSection],
) -> Result<String, EditError> {
    check_owned(&Document::parse(text)?, owned)?;
    let mut current = text.to_owned();
    let any_wanted_present = {
        let doc = Document::parse(&current)?;
        wanted
            .iter()
            .any(|w| doc.sections.iter().any(|s| w.id.matches(s)))
    };
    if !any_wanted_present {
        let group: String = wanted
            .iter()
            .map(|w| w.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let doc = Document::parse(&current)?;
        let first_owned = doc
            .sections
            .iter()
            .find(|s| owned.iter().any(|id| id.matches(s)))
            .map(|s| s.span.clone());
        current = match first_owned {
            Some(span) if group.is_empty() => remove_span(&current, span),
            Some(span) => replace_span(&current, span, &group),
            None if group.is_empty() => current,
            None => append(&current, &group),
        };
        return remove_unwanted(current, owned, wanted);
    }
    current = remove_unwanted(current, owned, wanted)?;
    for (index, section) in wanted.iter().enumerate() {
        let doc = Document::parse(&current)?;
        let find = |id: &SectionId| {
            doc.sections
                .iter()
                .find(|s| id.matches(s))
                .map(|s| s.span.clone())
        };
        current = if let Some(span) = find(&section.id) {
            replace_span(&current, span, &section.text)
        } else if let Some(previous) = index.checked_sub(1).and_then(|i| find(&wanted[i].id)) {
            insert(&current, previous.end, &format!("\n{}", section.text))
        } else {
            // The first wanted section is missing but a later one is there: go before it.
            let next = wanted[index + 1..]
                .iter()
                .find_map(|w| find(&w.id))
                .ok_or_else(|| EditError::Refused("internal error: no anchor section".into()))?;
            insert(&current, next.start, &format!("{}\n", section.text))
        };
    }
    Ok(current)
}

/// Owned sections must be unique and outside conditional blocks.
fn check_owned(doc: &Document<'_>, owned: &[SectionId]) -> Result<(), EditError> {
    for id in owned {
        let found: Vec<&Section> = doc.sections.iter().filter(|s| id.matches(s)).collect();
        if found.len() > 1 {
            let lines: Vec<String> = found.iter().map(|s| s.header_line().to_string()).collect();
            return Err(EditError::Refused(format!(
                "'{} {}' appears {} times (lines {}): haproxy refuses duplicate proxy names; merge them by hand",
                id.keyword,
                id.name,
                found.len(),
                lines.join(", ")
            )));
        }
        if let Some(section) = found.first().filter(|s| s.conditional) {
            return Err(EditError::Refused(format!(
                "'{} {}' at line {} is inside or holds a conditional block (.if/.endif or another '.' directive): the module cannot edit it safely",
                id.keyword,
                id.name,
                section.header_line()
            )));
        }
    }
    Ok(())
}

fn remove_unwanted(
    mut current: String,
    owned: &[SectionId],
    wanted: &[WantedSection],
) -> Result<String, EditError> {
    loop {
        let doc = Document::parse(&current)?;
        let unwanted = doc
            .sections
            .iter()
            .find(|s| {
                owned.iter().any(|id| id.matches(s)) && !wanted.iter().any(|w| w.id.matches(s))
            })
            .map(|s| s.span.clone());
        match unwanted {
            Some(span) => current = remove_span(&current, span),
            None => return Ok(current),
        }
    }
}

fn replace_span(text: &str, span: std::ops::Range<usize>, replacement: &str) -> String {
    format!("{}{replacement}{}", &text[..span.start], &text[span.end..])
}

fn insert(text: &str, at: usize, addition: &str) -> String {
    replace_span(text, at..at, addition)
}

/// Removes a section span and the blank lines after it; a section that was last in the
/// file also takes the blank lines before it, so the file does not end in blank lines.
fn remove_span(text: &str, span: std::ops::Range<usize>) -> String {
    let mut end = span.end;
    while end < text.len() {
        let line_end = text[end..].find('\n').map_or(text.len(), |i| end + i + 1);
        if !text[end..line_end].trim().is_empty() {
            break;
        }
        end = line_end;
    }
    let mut start = span.start;
    if end == text.len() {
        while start > 0 {
            let previous_start = text[..start - 1].rfind('\n').map_or(0, |i| i + 1);
            if !text[previous_start..start].trim().is_empty() {
                break;
            }
            start = previous_start;
        }
    }
    format!("{}{}", &text[..start], &text[end..])
}

/// Appends sections after a blank line.
fn append(text: &str, group: &str) -> String {
    let mut out = text.to_owned();
    if !out.is_empty() {
        if !out.ends_with('\n') {
            out.push('\n');
        }
        let last_line_blank = out[..out.len() - 1]
            .rsplit('\n')
            .next()
            .is_some_and(|l| l.trim().is_empty());
        if !last_line_blank {
            out.push('\n');
        }
    }
    out.push_str(group);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(name: &str) -> Vec<SectionId> {
        vec![
            SectionId::new("frontend", name),
            SectionId::new("backend", name),
            SectionId::new("listen", name),
        ]
    }

    fn wanted(keyword: &'static str, name: &str, body: &str) -> WantedSection {
        WantedSection {
            id: SectionId::new(keyword, name),
            text: format!("{keyword} {name}\n    {body}\n"),
        }
    }

    #[test]
    fn appends_to_a_file_without_the_sections() {
        let out = apply(
            "global\n    daemon",
            &ids("k"),
            &[
                wanted("frontend", "k", "bind :1"),
                wanted("backend", "k", "server a 1.1.1.1:1"),
            ],
        )
        .expect("edits");
        assert_eq!(
            out,
            "global\n    daemon\n\nfrontend k\n    bind :1\n\nbackend k\n    server a 1.1.1.1:1\n"
        );
        let again = apply(&out, &ids("k"), &[]).expect("removes");
        assert_eq!(again, "global\n    daemon\n");
        assert_eq!(
            apply("", &ids("k"), &[wanted("listen", "k", "x")]).expect("edits"),
            "listen k\n    x\n"
        );
    }

    #[test]
    fn replaces_in_place_and_inserts_next_to_siblings() {
        let text = "frontend k\n  bind :9\n\n# banner\nfrontend other\n  bind :2\n";
        let out = apply(
            text,
            &ids("k"),
            &[
                wanted("frontend", "k", "bind :1"),
                wanted("backend", "k", "server a 1.1.1.1:1"),
            ],
        )
        .expect("edits");
        assert_eq!(
            out,
            "frontend k\n    bind :1\n\nbackend k\n    server a 1.1.1.1:1\n\n# banner\nfrontend other\n  bind :2\n"
        );
        let text = "backend k\n  server x 1.1.1.1:1\n";
        let out = apply(
            text,
            &ids("k"),
            &[
                wanted("frontend", "k", "bind :1"),
                wanted("backend", "k", "server a 1.1.1.1:1"),
            ],
        )
        .expect("edits");
        assert_eq!(
            out,
            "frontend k\n    bind :1\n\nbackend k\n    server a 1.1.1.1:1\n"
        );
    }

    #[test]
    fn switching_style_keeps_the_position() {
        let text = "global\n  daemon\n\nfrontend k\n  bind :1\n\nbackend k\n  server a 1.1.1.1:1\n\nlisten stats\n  bind :2\n";
        let out = apply(text, &ids("k"), &[wanted("listen", "k", "bind :1")]).expect("edits");
        assert_eq!(
            out,
            "global\n  daemon\n\nlisten k\n    bind :1\n\nlisten stats\n  bind :2\n"
        );
    }

    #[test]
    fn refuses_duplicates_and_conditionals() {
        let err = apply("backend k\n  x\nbackend k\n  y\n", &ids("k"), &[]).expect_err("dup");
        assert!(
            err.to_string().contains("appears 2 times (lines 1, 3)"),
            "{err}"
        );
        let err = apply(".if defined(X)\nbackend k\n.endif\n", &ids("k"), &[]).expect_err("cond");
        assert!(err.to_string().contains("at line 2 is inside"), "{err}");
        assert!(apply(".if defined(X)\nbackend other\n.endif\n", &ids("k"), &[]).is_ok());
    }
}
