//! In-place edits of a TOML document with `toml_edit`: every comment, blank line, key order
//! and unmanaged key stays as it was. New keys follow the file's own style (indentation,
//! quote style); a new table goes right after its parent's last sub-table, where a human
//! would add it.

use module_runtime::{ModuleError, Result};
use serde_json::Value as Json;
use toml_edit::{Array, DocumentMut, Entry, InlineTable, Item, Key, Table, Value};

use crate::schema::display_path;

/// How this file writes things, so new lines look like their neighbours.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Style {
    /// `'single'` (containerd 2.x writes these) rather than `"double"` quoted strings.
    literal_strings: bool,
    /// One level of indentation: two spaces in containerd's own output, empty in flat files.
    indent_unit: String,
}

/// A TOML document being edited, with the keys that changed.
#[derive(Debug)]
pub struct Editor {
    doc: DocumentMut,
    style: Style,
    changed: Vec<String>,
}

impl Editor {
    pub fn new(doc: DocumentMut) -> Self {
        let style = detect_style(&doc);
        Editor {
            doc,
            style,
            changed: Vec::new(),
        }
    }

    /// The keys changed so far, as dotted paths, in the order they changed.
    pub fn changed_keys(&self) -> &[String] {
        &self.changed
    }

    pub fn document(&self) -> &DocumentMut {
        &self.doc
    }

    pub fn render(&self) -> String {
        self.doc.to_string()
    }

    fn record(&mut self, path: &[String]) {
        let key = display_path(path);
        if !self.changed.contains(&key) {
            self.changed.push(key);
        }
    }

    pub fn get(&self, path: &[String]) -> Option<&Item> {
        lookup(self.doc.as_item(), path)
    }

    pub fn get_str(&self, path: &[String]) -> Option<&str> {
        self.get(path).and_then(Item::as_str)
    }

    /// A string value in this file's quote style.
    pub fn string(&self, text: &str) -> Value {
        string_value(text, self.style.literal_strings)
    }

    /// Converts a JSON value from the params into a TOML value in this file's style.
    pub fn value_from_json(&self, json: &Json) -> std::result::Result<Value, String> {
        json_to_value(json, self.style.literal_strings)
    }

    /// Sets `path` to `value`; returns whether the file changed. A value equal to the
    /// current one (whatever its spelling) leaves the bytes alone.
    pub fn set(&mut self, path: &[String], value: Value) -> Result<bool> {
        let (leaf, parents) = split_leaf(path)?;
        self.ensure_parent(parents, path)?;
        let indent = self.child_indent(parents);
        let mut key = self.new_key(leaf);
        // Keys inside inline tables and dotted tables keep toml_edit's own spacing.
        let plain_table = matches!(
            lookup(self.doc.as_item(), parents),
            Some(Item::Table(t)) if !t.is_dotted()
        ) || parents.is_empty();
        if plain_table {
            key.leaf_decor_mut().set_prefix(indent);
            key.leaf_decor_mut().set_suffix(" ");
        }
        let literal_default = self.style.literal_strings;
        let parent = lookup_mut(self.doc.as_item_mut(), parents)
            .and_then(Item::as_table_like_mut)
            .ok_or_else(|| not_a_table(parents, path))?;
        match parent.get_mut(leaf) {
            Some(Item::Value(old)) => {
                if same_value(old, &value) {
                    return Ok(false);
                }
                let literal = match old {
                    Value::String(s) => {
                        repr_is_literal(s.as_repr().and_then(|r| r.as_raw().as_str()))
                    }
                    _ => literal_default,
                };
                let mut new = restyle(value, literal);
                *new.decor_mut() = old.decor().clone();
                *old = new;
            }
            Some(Item::Table(_) | Item::ArrayOfTables(_)) => {
                return Err(ModuleError::failed(format!(
                    "cannot set {}: it is a table in the file, not a value",
                    display_path(path)
                )));
            }
            Some(Item::None) | None => {
                parent.remove(leaf);
                let mut value = value;
                if plain_table {
                    value.decor_mut().set_prefix(" ");
                }
                if let Entry::Vacant(slot) = parent.entry_format(&key) {
                    slot.insert(Item::Value(value));
                }
                if plain_table && !parents.is_empty() {
                    if let Some(comment) = self.take_trailing_comment(parents) {
                        if let Some(key) = lookup_mut(self.doc.as_item_mut(), parents)
                            .and_then(Item::as_table_like_mut)
                            .and_then(|t| t.key_mut(leaf))
                        {
                            let mut key = key;
                            let prefix = key
                                .leaf_decor()
                                .prefix()
                                .and_then(|p| p.as_str())
                                .unwrap_or("")
                                .to_owned();
                            key.leaf_decor_mut()
                                .set_prefix(format!("{comment}{prefix}"));
                        }
                    }
                }
            }
        }
        self.record(path);
        Ok(true)
    }

    /// Makes sure a (possibly empty) table exists at `path`.
    pub fn ensure_table(&mut self, path: &[String]) -> Result<bool> {
        match self.get(path) {
            Some(item) if item.is_table_like() => Ok(false),
            Some(_) => Err(ModuleError::failed(format!(
                "cannot create table {}: the file has a value there",
                display_path(path)
            ))),
            None => {
                self.ensure_parent(path, path)?;
                self.record(path);
                Ok(true)
            }
        }
    }

    /// Removes the key or table at `path`; returns whether it was there.
    pub fn remove(&mut self, path: &[String]) -> Result<bool> {
        let (leaf, parents) = split_leaf(path)?;
        let Some(parent) =
            lookup_mut(self.doc.as_item_mut(), parents).and_then(Item::as_table_like_mut)
        else {
            return Ok(false);
        };
        if parent.remove(leaf).is_none() {
            return Ok(false);
        }
        self.record(path);
        Ok(true)
    }

    /// Removes `path`, then the tables above it that it leaves empty, down to (not
    /// including) `keep`: `registry.configs."host"` goes with its `auth`, `configs` stays.
    pub fn remove_pruning(&mut self, path: &[String], keep: &[String]) -> Result<bool> {
        if !self.remove(path)? {
            return Ok(false);
        }
        let mut parent = &path[..path.len() - 1];
        while parent.len() > keep.len() && is_prefix_of(keep, parent) {
            let empty = self
                .get(parent)
                .and_then(Item::as_table_like)
                .is_some_and(|t| t.is_empty());
            if !empty {
                break;
            }
            let (leaf, above) = split_leaf(parent)?;
            if let Some(table) =
                lookup_mut(self.doc.as_item_mut(), above).and_then(Item::as_table_like_mut)
            {
                table.remove(leaf);
            }
            parent = above;
        }
        Ok(true)
    }

    /// Creates the missing tables of `parents`: the innermost one gets a header, the ones
    /// above it stay implicit (no header line of their own, as a human would write it).
    fn ensure_parent(&mut self, parents: &[String], full: &[String]) -> Result<()> {
        for depth in 1..=parents.len() {
            let here = &parents[..depth];
            let above = &parents[..depth - 1];
            let is_innermost = depth == parents.len();
            match lookup(self.doc.as_item(), here) {
                Some(item) if item.is_table_like() => {
                    // An implicit table that is about to hold values needs its header.
                    if is_innermost {
                        let indent = self.header_indent_for_new(above);
                        if let Some(Item::Table(table)) = lookup_mut(self.doc.as_item_mut(), here) {
                            if table.is_implicit() && !table.is_dotted() {
                                table.set_implicit(false);
                                table.decor_mut().set_prefix(format!("\n{indent}"));
                                table.decor_mut().set_suffix("");
                            }
                        }
                    }
                }
                Some(_) => return Err(not_a_table(here, full)),
                None => {
                    let indent = self.header_indent_for_new(above);
                    let key = self.new_key(&here[depth - 1]);
                    let parent = lookup_mut(self.doc.as_item_mut(), above)
                        .ok_or_else(|| not_a_table(above, full))?;
                    let new_item = match parent {
                        Item::Value(Value::InlineTable(_)) => {
                            Item::Value(Value::InlineTable(InlineTable::new()))
                        }
                        _ => {
                            let mut table = Table::new();
                            if is_innermost {
                                table.decor_mut().set_prefix(format!("\n{indent}"));
                            } else {
                                table.set_implicit(true);
                            }
                            Item::Table(table)
                        }
                    };
                    let parent = parent
                        .as_table_like_mut()
                        .ok_or_else(|| not_a_table(above, full))?;
                    if let Entry::Vacant(slot) = parent.entry_format(&key) {
                        slot.insert(new_item);
                    }
                    if is_innermost {
                        if let Some(comment) = self.take_trailing_comment(here) {
                            if let Some(Item::Table(table)) =
                                lookup_mut(self.doc.as_item_mut(), here)
                            {
                                let prefix = table
                                    .decor()
                                    .prefix()
                                    .and_then(|p| p.as_str())
                                    .unwrap_or("");
                                let prefix = format!("{comment}{prefix}");
                                table.decor_mut().set_prefix(prefix);
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// Comment lines that close the table before `path` in the file: toml_edit keeps them
    /// in the prefix of the next header (or the document's trailing text), so a key or table
    /// added at `path` would land after them. Comment lines followed by a blank line belong
    /// to what precedes them: they are taken out of there and returned, to go in front of
    /// the new key or table. Comments glued to the next header stay with it.
    fn take_trailing_comment(&mut self, path: &[String]) -> Option<String> {
        let order = display_order(self.doc.as_table());
        let at = order.iter().position(|p| p.as_slice() == path)?;
        let next = order[at + 1..].iter().find(|p| {
            matches!(lookup(self.doc.as_item(), p), Some(Item::Table(t))
                if !(t.is_implicit() && t.get_values().is_empty()))
        });
        let prefix = match next {
            Some(next) => match lookup(self.doc.as_item(), next) {
                Some(Item::Table(t)) => t.decor().prefix().and_then(|p| p.as_str())?.to_owned(),
                _ => return None,
            },
            None => self.doc.trailing().as_str()?.to_owned(),
        };
        let (comment, rest) = split_closing_comment(&prefix)?;
        let (comment, rest) = (comment.to_owned(), rest.to_owned());
        match next {
            Some(next) => {
                if let Some(Item::Table(t)) = lookup_mut(self.doc.as_item_mut(), next) {
                    t.decor_mut().set_prefix(rest);
                }
            }
            None => self.doc.set_trailing(rest),
        }
        Some(comment)
    }

    /// A key in this file's quote style (bare when it can be).
    fn new_key(&self, name: &str) -> Key {
        let bare = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if bare || !self.style.literal_strings || !literal_ok(name) {
            return Key::new(name);
        }
        Key::parse(&format!("'{name}'"))
            .ok()
            .and_then(|mut keys| (keys.len() == 1).then(|| keys.remove(0)))
            .unwrap_or_else(|| Key::new(name))
    }

    /// Indentation of a new table header under `parent`: the indentation of the parent's
    /// keys and sub-tables.
    fn header_indent_for_new(&self, parent: &[String]) -> String {
        if self.doc.as_table().is_empty() && self.doc.trailing().as_str().unwrap_or("").is_empty() {
            return String::new();
        }
        self.child_indent(parent)
    }

    /// Indentation of the keys (and sub-table headers) inside the table at `path`.
    fn child_indent(&self, path: &[String]) -> String {
        if path.is_empty() {
            return String::new();
        }
        let Some(Item::Table(table)) = self.get(path) else {
            return format!(
                "{}{}",
                self.child_indent(&path[..path.len() - 1]),
                self.style.indent_unit
            );
        };
        let last_key_indent = table
            .iter()
            .filter(|(_, item)| item.is_value())
            .filter_map(|(name, _)| table.key(name))
            .filter_map(|key| key.leaf_decor().prefix().and_then(|p| p.as_str()))
            .last()
            .map(last_line);
        if let Some(indent) = last_key_indent {
            return indent.to_owned();
        }
        let child_header_indent = table.iter().find_map(|(_, item)| match item {
            Item::Table(child) if !child.is_implicit() && !child.is_dotted() => child
                .decor()
                .prefix()
                .and_then(|p| p.as_str())
                .map(last_line),
            _ => None,
        });
        if let Some(indent) = child_header_indent {
            return indent.to_owned();
        }
        if table.is_implicit() {
            return format!(
                "{}{}",
                self.child_indent(&path[..path.len() - 1]),
                self.style.indent_unit
            );
        }
        let header = table
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .map(last_line)
            .unwrap_or("");
        format!("{header}{}", self.style.indent_unit)
    }
}

/// Table paths in the order toml_edit prints them: depth first, each table placed after
/// the last positioned table before it, stable-sorted by position.
fn display_order(root: &Table) -> Vec<Vec<String>> {
    fn visit(
        table: &Table,
        path: &mut Vec<String>,
        last: &mut isize,
        out: &mut Vec<(isize, Vec<String>)>,
    ) {
        if !table.is_dotted() {
            if let Some(position) = table.position() {
                *last = position;
            }
            out.push((*last, path.clone()));
        }
        for (key, item) in table.iter() {
            if let Item::Table(child) = item {
                path.push(key.to_owned());
                visit(child, path, last, out);
                path.pop();
            }
        }
    }
    let mut out = Vec::new();
    visit(root, &mut Vec::new(), &mut 0, &mut out);
    out.sort_by_key(|(position, _)| *position);
    out.into_iter().map(|(_, path)| path).collect()
}

/// Splits a header prefix into the comment lines that close the previous table (ended by
/// a blank line) and the rest.
fn split_closing_comment(prefix: &str) -> Option<(&str, &str)> {
    let mut end = 0;
    for line in prefix.split_inclusive('\n') {
        let text = line.trim();
        if text.starts_with('#') && line.ends_with('\n') {
            end += line.len();
        } else if text.is_empty() && line.ends_with('\n') && end > 0 {
            return Some((&prefix[..end], &prefix[end..]));
        } else {
            return None;
        }
    }
    None
}

/// Walks `path` through tables and inline tables.
pub fn lookup<'a>(root: &'a Item, path: &[String]) -> Option<&'a Item> {
    path.iter()
        .try_fold(root, |item, segment| item.as_table_like()?.get(segment))
        .filter(|item| !item.is_none())
}

fn lookup_mut<'a>(root: &'a mut Item, path: &[String]) -> Option<&'a mut Item> {
    path.iter().try_fold(root, |item, segment| {
        item.as_table_like_mut()?.get_mut(segment)
    })
}

fn is_prefix_of(prefix: &[String], path: &[String]) -> bool {
    prefix.len() <= path.len() && path[..prefix.len()] == *prefix
}

fn split_leaf(path: &[String]) -> Result<(&String, &[String])> {
    path.split_last()
        .ok_or_else(|| ModuleError::failed("an empty key path cannot be edited"))
}

fn not_a_table(at: &[String], full: &[String]) -> ModuleError {
    ModuleError::failed(format!(
        "cannot edit {}: {} is a value in the file, not a table",
        display_path(full),
        display_path(at)
    ))
}

/// The text after the last newline of a decor prefix: the line's indentation.
fn last_line(prefix: &str) -> &str {
    let line = prefix.rsplit('\n').next().unwrap_or("");
    if line.chars().all(|c| c == ' ' || c == '\t') {
        line
    } else {
        ""
    }
}

fn detect_style(doc: &DocumentMut) -> Style {
    let mut counts = StyleCounts::default();
    counts.visit_table(doc.as_table(), 0);
    Style {
        literal_strings: counts.literal > counts.basic,
        indent_unit: counts.smallest_indent.unwrap_or_default(),
    }
}

#[derive(Default)]
struct StyleCounts {
    literal: usize,
    basic: usize,
    smallest_indent: Option<String>,
}

impl StyleCounts {
    fn indent(&mut self, prefix: Option<&str>) {
        let indent = last_line(prefix.unwrap_or(""));
        if !indent.is_empty()
            && self
                .smallest_indent
                .as_ref()
                .map_or(true, |smallest| indent.len() < smallest.len())
        {
            self.smallest_indent = Some(indent.to_owned());
        }
    }

    fn visit_table(&mut self, table: &Table, depth: usize) {
        if depth > 0 {
            self.indent(table.decor().prefix().and_then(|p| p.as_str()));
        }
        for (name, item) in table.iter() {
            match item {
                Item::Value(value) => {
                    if depth > 0 {
                        let prefix = table
                            .key(name)
                            .and_then(|k| k.leaf_decor().prefix())
                            .and_then(|p| p.as_str());
                        self.indent(prefix);
                    }
                    self.visit_value(value);
                }
                Item::Table(child) => self.visit_table(child, depth + 1),
                Item::ArrayOfTables(array) => {
                    for child in array.iter() {
                        self.visit_table(child, depth + 1);
                    }
                }
                Item::None => {}
            }
        }
    }

    fn visit_value(&mut self, value: &Value) {
        match value {
            Value::String(s) => match s.as_repr().and_then(|r| r.as_raw().as_str()) {
                Some(repr) if repr.starts_with('\'') => self.literal += 1,
                Some(_) => self.basic += 1,
                None => {}
            },
            Value::Array(array) => array.iter().for_each(|v| self.visit_value(v)),
            Value::InlineTable(table) => table.iter().for_each(|(_, v)| self.visit_value(v)),
            _ => {}
        }
    }
}

fn repr_is_literal(repr: Option<&str>) -> bool {
    repr.is_some_and(|r| r.starts_with('\''))
}

/// A literal string cannot hold a quote, a newline or other control characters.
fn literal_ok(text: &str) -> bool {
    !text.contains('\'') && !text.chars().any(|c| c.is_control())
}

fn string_value(text: &str, literal: bool) -> Value {
    if literal && literal_ok(text) {
        if let Ok(value) = format!("'{text}'").parse::<Value>() {
            return value;
        }
    }
    // toml_edit picks the plainest basic-string spelling.
    let mut value = Value::from(text);
    if value
        .as_str()
        .is_some_and(|_| value.to_string().trim_start().starts_with('\''))
    {
        // Prefer a double-quoted spelling in double-quote files.
        let escaped: String = text
            .chars()
            .flat_map(|c| match c {
                '"' => vec!['\\', '"'],
                '\\' => vec!['\\', '\\'],
                '\n' => vec!['\\', 'n'],
                '\t' => vec!['\\', 't'],
                c => vec![c],
            })
            .collect();
        if let Ok(basic) = format!("\"{escaped}\"").parse::<Value>() {
            value = basic;
        }
    }
    value
}

/// Re-spells strings (also inside arrays and inline tables) in the given quote style.
fn restyle(value: Value, literal: bool) -> Value {
    match value {
        Value::String(s) => string_value(s.value(), literal),
        Value::Array(array) => {
            let mut out = Array::new();
            for item in array.iter() {
                out.push(restyle(item.clone(), literal));
            }
            Value::Array(out)
        }
        Value::InlineTable(table) => {
            let mut out = InlineTable::new();
            for (key, item) in table.iter() {
                out.insert(key, restyle(item.clone(), literal));
            }
            Value::InlineTable(out)
        }
        other => other,
    }
}

/// Equal as TOML data, whatever the spelling, decor or comments.
pub fn same_value(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.value() == y.value(),
        (Value::Integer(x), Value::Integer(y)) => x.value() == y.value(),
        (Value::Float(x), Value::Float(y)) => {
            x.value() == y.value() || (x.value().is_nan() && y.value().is_nan())
        }
        (Value::Boolean(x), Value::Boolean(y)) => x.value() == y.value(),
        (Value::Datetime(x), Value::Datetime(y)) => x.value() == y.value(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| same_value(a, b))
        }
        (Value::InlineTable(x), Value::InlineTable(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, value)| y.get(key).is_some_and(|other| same_value(value, other)))
        }
        _ => false,
    }
}

/// Params JSON into a TOML value: objects become inline tables, integers stay integers.
fn json_to_value(json: &Json, literal: bool) -> std::result::Result<Value, String> {
    Ok(match json {
        Json::Null => return Err("null is not a TOML value".into()),
        Json::Bool(b) => Value::from(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if n.is_u64() {
                return Err(format!("{n} does not fit a TOML integer"));
            } else {
                Value::from(n.as_f64().unwrap_or_default())
            }
        }
        Json::String(s) => string_value(s, literal),
        Json::Array(items) => {
            let mut array = Array::new();
            for item in items {
                array.push(json_to_value(item, literal)?);
            }
            Value::Array(array)
        }
        Json::Object(map) => {
            let mut table = InlineTable::new();
            for (key, item) in map {
                table.insert(key, json_to_value(item, literal)?);
            }
            Value::InlineTable(table)
        }
    })
}

/// The value at `path` as JSON-ish text for messages (never used for secrets).
pub fn describe(item: &Item) -> String {
    match item {
        Item::Value(value) => value.to_string().trim().to_owned(),
        Item::Table(_) | Item::ArrayOfTables(_) => "a table".into(),
        Item::None => "nothing".into(),
    }
}

/// Whether a table-like item has any entry (a non-empty `mirrors` table, say).
pub fn table_keys(item: Option<&Item>) -> Vec<String> {
    item.and_then(Item::as_table_like)
        .map(|table| table.iter().map(|(key, _)| key.to_owned()).collect())
        .unwrap_or_default()
}

/// Every value of a key named like one of `names` (case-insensitive), at any depth:
/// used to find credentials already in a file so they are masked in the diff.
pub fn values_named<'a>(item: &'a Item, names: &[&str], out: &mut Vec<&'a str>) {
    if let Some(table) = item.as_table_like() {
        for (key, child) in table.iter() {
            if names.iter().any(|n| n.eq_ignore_ascii_case(key)) {
                match child {
                    Item::Value(Value::String(s)) => out.push(s.value()),
                    Item::Value(Value::Array(array)) => {
                        out.extend(array.iter().filter_map(Value::as_str));
                    }
                    _ => {}
                }
            }
            values_named(child, names, out);
        }
    }
    if let Item::ArrayOfTables(array) = item {
        for table in array.iter() {
            for (_, child) in table.iter() {
                values_named(child, names, out);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(segments: &[&str]) -> Vec<String> {
        segments.iter().map(|s| (*s).to_owned()).collect()
    }

    fn editor(text: &str) -> Editor {
        Editor::new(text.parse().expect("valid toml"))
    }

    #[test]
    fn changing_a_value_keeps_its_comment_and_quote_style() {
        let mut e = editor("[a]\n  # why\n  x = 'old' # keep\n  y = 1\n");
        assert!(e.set(&p(&["a", "x"]), Value::from("new")).expect("set"));
        assert_eq!(e.render(), "[a]\n  # why\n  x = 'new' # keep\n  y = 1\n");
        assert!(!e.set(&p(&["a", "y"]), Value::from(1)).expect("same"));
        assert_eq!(e.changed_keys(), ["a.x"]);
    }

    #[test]
    fn new_keys_follow_the_indentation_of_their_table() {
        let mut e = editor("[a]\n    x = 1\n\n[b]\ny = 2\n");
        e.set(&p(&["a", "z"]), Value::from(true)).expect("set");
        e.set(&p(&["b", "w"]), Value::from(3)).expect("set");
        assert_eq!(
            e.render(),
            "[a]\n    x = 1\n    z = true\n\n[b]\ny = 2\nw = 3\n"
        );
    }

    #[test]
    fn new_tables_go_after_the_parents_last_sub_table() {
        // Indented one level per table level, as containerd itself writes nested tables.
        let src = "[plugins]\n\n  [plugins.\"x.y\"]\n    a = 1\n\n    [plugins.\"x.y\".sub]\n      b = 2\n\n  [plugins.\"z\"]\n    c = 3\n";
        let mut e = editor(src);
        e.set(
            &p(&[
                "plugins", "x.y", "registry", "configs", "h:5000", "auth", "auth",
            ]),
            e.string("s"),
        )
        .expect("set");
        assert_eq!(
            e.render(),
            "[plugins]\n\n  [plugins.\"x.y\"]\n    a = 1\n\n    [plugins.\"x.y\".sub]\n      b = 2\n\n          [plugins.\"x.y\".registry.configs.\"h:5000\".auth]\n            auth = \"s\"\n\n  [plugins.\"z\"]\n    c = 3\n"
        );
    }

    #[test]
    fn literal_style_files_get_literal_keys_and_strings() {
        let mut e = editor("version = 3\n\n[plugins]\n  [plugins.'a.b']\n    x = 'y'\n");
        e.set(&p(&["plugins", "c.d", "k"]), e.string("v"))
            .expect("set");
        assert_eq!(
            e.render(),
            "version = 3\n\n[plugins]\n  [plugins.'a.b']\n    x = 'y'\n\n  [plugins.'c.d']\n    k = 'v'\n"
        );
    }

    #[test]
    fn a_closing_comment_stays_with_the_table_it_closes() {
        let src = "[a]\n  x = 1\n  # more of a later\n\n[b]\n  y = 2\n";
        let mut e = editor(src);
        e.set(&p(&["a", "z"]), Value::from(2)).expect("set");
        assert_eq!(
            e.render(),
            "[a]\n  x = 1\n  # more of a later\n  z = 2\n\n[b]\n  y = 2\n"
        );
        let mut e = editor(src);
        e.set(&p(&["a", "sub", "k"]), Value::from(3)).expect("set");
        assert_eq!(
            e.render(),
            "[a]\n  x = 1\n  # more of a later\n\n  [a.sub]\n    k = 3\n\n[b]\n  y = 2\n"
        );
        // A comment glued to the next header belongs to it.
        let mut e = editor("[a]\nx = 1\n\n# about b\n[b]\ny = 2\n");
        e.set(&p(&["a", "z"]), Value::from(2)).expect("set");
        assert_eq!(e.render(), "[a]\nx = 1\nz = 2\n\n# about b\n[b]\ny = 2\n");
    }

    #[test]
    fn setting_inside_a_value_is_refused() {
        let mut e = editor("a = 1\n");
        let err = e
            .set(&p(&["a", "b"]), Value::from(1))
            .expect_err("a is a value");
        assert!(err.to_string().contains("a is a value"), "{err}");
    }

    #[test]
    fn inline_tables_are_edited_in_place() {
        let mut e = editor("[a]\nopts = { x = 1 }\n");
        e.set(&p(&["a", "opts", "y"]), Value::from(2)).expect("set");
        assert_eq!(e.render(), "[a]\nopts = { x = 1 , y = 2 }\n");
    }

    #[test]
    fn removing_a_key_leaves_the_rest_alone() {
        let mut e = editor("# top\n[a]\nx = 1\ny = 2 # c\n");
        assert!(e.remove(&p(&["a", "x"])).expect("remove"));
        assert!(!e.remove(&p(&["a", "nope"])).expect("absent"));
        assert_eq!(e.render(), "# top\n[a]\ny = 2 # c\n");
    }

    #[test]
    fn pruning_removes_the_tables_left_empty() {
        let mut e = editor("[r.configs]\n[r.configs.\"h\"]\n[r.configs.\"h\".auth]\nauth = \"x\"\n[r.other]\ny = 1\n");
        let auth = p(&["r", "configs", "h", "auth"]);
        assert!(e
            .remove_pruning(&auth, &p(&["r", "configs"]))
            .expect("remove"));
        assert_eq!(e.render(), "[r.configs]\n[r.other]\ny = 1\n");
    }

    #[test]
    fn equal_values_compare_across_spellings() {
        let a: Value = "'x'".parse().expect("v");
        let b: Value = "\"x\"".parse().expect("v");
        assert!(same_value(&a, &b));
        let a: Value = "[1, 2]".parse().expect("v");
        let b: Value = "[ 1,2 ]".parse().expect("v");
        assert!(same_value(&a, &b));
        let a: Value = "true".parse().expect("v");
        let b: Value = "'true'".parse().expect("v");
        assert!(!same_value(&a, &b));
    }
}
