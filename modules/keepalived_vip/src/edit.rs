//! The edits of keepalived.conf: the module's blocks put in place (existing ones replaced
//! where they stand, missing ones added) or removed, every other byte kept. The text is LF
//! text; `lib` decodes and re-encodes a BOM and CRLF line endings around these.

use crate::config::{self, Document, Edit, Statement};
use crate::{render, top_level, Params};

/// The module's blocks, rendered.
#[derive(Debug, Clone)]
pub struct ManagedBlocks {
    pub instance: String,
    pub script: String,
    pub script_user: String,
}

/// Written at the top of a file the module creates.
pub const NEW_FILE_HEADER: &str =
    "# keepalived configuration. Blocks marked \"managed by baremetal.k8s.keepalived_vip\" are rewritten by Ansible.\n\n";

/// `src` with the module's blocks in place: existing ones replaced where they stand,
/// missing ones added (global_defs first in the file, the vrrp_script before its instance).
pub fn edit_config(src: &[u8], doc: &Document, params: &Params, blocks: &ManagedBlocks) -> Vec<u8> {
    let mut edits = Vec::new();
    let mut appended: Vec<String> = Vec::new();
    let first_statement = doc
        .statements()
        .next()
        .map(|s| config::line_start_if_blank_before(src, s.head.start));

    match doc
        .statements()
        .find(|s| s.keyword() == "global_defs" && s.block.is_some())
    {
        Some(global) => global_defs_edits(src, global, &blocks.script_user, &mut edits),
        None => {
            let text = render::global_defs(&blocks.script_user);
            match first_statement {
                Some(at) => edits.push(Edit::insert(at, format!("{text}\n\n"))),
                None => appended.push(text),
            }
        }
    }

    let instance = top_level(doc, "vrrp_instance", &params.name).next();
    let script = top_level(doc, "vrrp_script", &params.script_name).next();
    match (script, instance) {
        (Some(script), _) => edits.push(Edit::replace(script.span(), blocks.script.clone())),
        (None, Some(instance)) => edits.push(Edit::insert(
            config::line_start_if_blank_before(src, instance.head.start),
            format!("{}\n\n", blocks.script),
        )),
        (None, None) => appended.push(blocks.script.clone()),
    }
    match instance {
        Some(instance) => edits.push(Edit::replace(instance.span(), blocks.instance.clone())),
        None => appended.push(blocks.instance.clone()),
    }

    if !appended.is_empty() {
        let mut tail = String::new();
        if src.is_empty() {
            tail.push_str(NEW_FILE_HEADER);
        } else if !src.ends_with(b"\n") {
            tail.push_str("\n\n");
        } else if !src.ends_with(b"\n\n") {
            tail.push('\n');
        }
        tail.push_str(&appended.join("\n\n"));
        tail.push('\n');
        edits.push(Edit::insert(src.len(), tail));
    }
    config::apply_edits(src, edits)
}

/// `enable_script_security` and `script_user USER` inside an existing global_defs.
fn global_defs_edits(src: &[u8], global: &Statement, user: &str, edits: &mut Vec<Edit>) {
    let Some(block) = &global.block else {
        return;
    };
    let children: Vec<&Statement> = global.children().collect();
    let mut missing = Vec::new();
    if !children
        .iter()
        .any(|c| c.keyword() == "enable_script_security")
    {
        missing.push("enable_script_security".to_owned());
    }
    let users: Vec<&&Statement> = children
        .iter()
        .filter(|c| c.keyword() == "script_user")
        .collect();
    if users.is_empty() {
        missing.push(format!("script_user {user}"));
    }
    for statement in users {
        if statement.args().collect::<Vec<_>>() != [user] {
            edits.push(Edit::replace(
                statement.head.clone(),
                format!("script_user {user}"),
            ));
        }
    }
    if missing.is_empty() {
        return;
    }
    // Indent like the block's first item, or with four spaces.
    let indent = children
        .first()
        .map(|c| {
            let start = config::line_start_if_blank_before(src, c.head.start);
            String::from_utf8_lossy(&src[start..c.head.start]).into_owned()
        })
        .filter(|i| !i.is_empty())
        .unwrap_or_else(|| "    ".to_owned());
    let lines: String = missing.iter().map(|m| format!("{indent}{m}\n")).collect();
    let at = config::line_start_if_blank_before(src, block.close);
    if at == 0 || src[at - 1] == b'\n' {
        edits.push(Edit::insert(at, lines));
    } else {
        // `}` shares its line with other text: the items go on lines of their own, and the
        // blanks before the `}` give way to the line break.
        let blanks = src[..block.close]
            .iter()
            .rev()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        edits.push(Edit::replace(
            block.close - blanks..block.close,
            format!("\n{lines}"),
        ));
    }
}

/// `src` without the module's instance and script (state=absent); global_defs stays.
pub fn remove_blocks(src: &[u8], doc: &Document, params: &Params) -> Vec<u8> {
    let mut ranges: Vec<std::ops::Range<usize>> = top_level(doc, "vrrp_instance", &params.name)
        .chain(top_level(doc, "vrrp_script", &params.script_name))
        .map(|s| config::removal_range(src, s.span()))
        .collect();
    ranges.sort_by_key(|r| r.start);
    let mut merged: Vec<std::ops::Range<usize>> = Vec::new();
    for range in ranges {
        match merged.last_mut() {
            Some(last) if range.start <= last.end => last.end = last.end.max(range.end),
            // Blocks separated by blank lines only go as one.
            Some(last) if src[last.end..range.start].iter().all(|b| *b == b'\n') => {
                last.end = range.end
            }
            _ => merged.push(range),
        }
    }
    let edits = merged
        .into_iter()
        .map(|r| Edit::replace(with_blank_line(src, r), ""))
        .collect();
    config::apply_edits(src, edits)
}

/// Whole lines removed from between blank lines take one blank line along, so removing
/// what the module appended restores the file.
fn with_blank_line(src: &[u8], range: std::ops::Range<usize>) -> std::ops::Range<usize> {
    let whole_lines = (range.start == 0 || src[range.start - 1] == b'\n')
        && (range.end == src.len() || src[range.end - 1] == b'\n');
    let blank_before = range.start == 0 || src[..range.start].ends_with(b"\n\n");
    if !whole_lines || !blank_before {
        return range;
    }
    if src[range.end..].starts_with(b"\n") {
        return range.start..range.end + 1;
    }
    if range.end == src.len() && range.start >= 2 {
        return range.start - 1..range.end;
    }
    range
}
