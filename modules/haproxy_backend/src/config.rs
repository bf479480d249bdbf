//! The haproxy configuration grammar, as far as editing sections needs it: lines split
//! into words the way haproxy splits them (quotes, backslash escapes, `#` comments),
//! sections started by a line whose first word is a section keyword, and the byte span
//! of every section so that an edit replaces its own sections and nothing else.
//!
//! Like haproxy itself, a section keyword starts a section wherever it is indented, and
//! body lines need no indentation. Conditional blocks (`.if` ... `.endif`) and the other
//! `.` directives are allowed anywhere and tracked so that a section inside one is
//! never edited.

use std::fmt;
use std::ops::Range;

/// Every keyword that opens a section in haproxy 2.x/3.x: a line starting with one of
/// these ends the section before it.
pub const SECTION_KEYWORDS: &[&str] = &[
    "global",
    "defaults",
    "frontend",
    "backend",
    "listen",
    "userlist",
    "peers",
    "mailers",
    "resolvers",
    "program",
    "http-errors",
    "ring",
    "cache",
    "fcgi-app",
    "log-forward",
    "namespace_list",
    "crt-store",
    "traces",
    "acme",
];

/// Sections that haproxy refuses without a name.
const NAMED_SECTIONS: &[&str] = &["frontend", "backend", "listen"];

/// Input the parser cannot make sense of (haproxy would refuse it too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

/// One line of the file: where it is and its words (comment stripped, quotes removed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// 1-based line number.
    pub number: usize,
    /// Byte range of the line, its newline included.
    pub span: Range<usize>,
    pub words: Vec<String>,
    /// The line starts with a space or a tab.
    pub indented: bool,
}

impl Line {
    /// A line with no words: blank or comment only.
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// `.if`, `.endif`, `.notice`, ...: handled by haproxy before sections.
    pub fn is_directive(&self) -> bool {
        self.words.first().is_some_and(|w| w.starts_with('.'))
    }
}

/// One section: its header, its lines and its byte span.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// `frontend`, `backend`, `global`, ...
    pub keyword: String,
    /// The first word after the keyword (`defaults` and `global` may have none).
    pub name: Option<String>,
    /// Every line from the header to the next section (or the end), header included.
    pub lines: Vec<Line>,
    /// From the header's first byte to the end of the last line that belongs to the
    /// section: a directive, or an indented comment. Trailing blank lines and comments
    /// at column 0 (the banner of the next section, usually) are left outside.
    pub span: Range<usize>,
    /// The header is inside a `.if` block, or the body holds a `.` directive: such a
    /// section cannot be replaced without breaking the block structure.
    pub conditional: bool,
}

impl Section {
    pub fn header_line(&self) -> usize {
        self.lines.first().map_or(0, |l| l.number)
    }

    /// The lines of the body that hold words (header, comments and blanks left out).
    pub fn directives(&self) -> impl Iterator<Item = &Line> {
        self.lines.iter().skip(1).filter(|l| !l.is_empty())
    }

    pub fn is(&self, keyword: &str, name: &str) -> bool {
        self.keyword == keyword && self.name.as_deref() == Some(name)
    }

    /// `frontend NAME`, for messages.
    pub fn title(&self) -> String {
        match &self.name {
            Some(name) => format!("{} {name}", self.keyword),
            None => self.keyword.clone(),
        }
    }
}

/// A parsed file: the text and its sections, in order.
#[derive(Debug, Clone)]
pub struct Document<'a> {
    pub text: &'a str,
    /// Lines before the first section (comments, blanks, directives).
    pub preamble: Vec<Line>,
    pub sections: Vec<Section>,
}

impl<'a> Document<'a> {
    /// Parses haproxy configuration text; refuses what haproxy would refuse at this level
    /// (words outside any section, an unmatched quote, a NUL byte, a proxy without a
    /// name, unbalanced `.if`/`.endif`).
    pub fn parse(text: &'a str) -> Result<Self, ParseError> {
        let mut preamble = Vec::new();
        let mut sections: Vec<Section> = Vec::new();
        let mut conditional_depth = 0usize;
        let mut open_if_line = 0usize;
        let mut offset = 0usize;
        for (index, raw) in text.split_inclusive('\n').enumerate() {
            let number = index + 1;
            let span = offset..offset + raw.len();
            offset += raw.len();
            let words = split_words(raw).map_err(|message| ParseError {
                line: number,
                message,
            })?;
            let line = Line {
                number,
                span,
                words,
                indented: raw.starts_with([' ', '\t']),
            };
            if line.is_directive() {
                match line.words[0].as_str() {
                    ".if" => {
                        if conditional_depth == 0 {
                            open_if_line = number;
                        }
                        conditional_depth += 1;
                    }
                    ".endif" => {
                        conditional_depth =
                            conditional_depth.checked_sub(1).ok_or_else(|| ParseError {
                                line: number,
                                message: "'.endif' without a matching '.if'".into(),
                            })?;
                    }
                    ".elif" | ".else" if conditional_depth == 0 => {
                        return Err(ParseError {
                            line: number,
                            message: format!("'{}' without a matching '.if'", line.words[0]),
                        })
                    }
                    _ => {}
                }
                match sections.last_mut() {
                    Some(section) => {
                        section.conditional = true;
                        section.lines.push(line);
                    }
                    None => preamble.push(line),
                }
                continue;
            }
            let keyword = line.words.first().map(String::as_str);
            match keyword {
                Some(keyword) if SECTION_KEYWORDS.contains(&keyword) => {
                    let name = line.words.get(1).cloned();
                    if name.is_none() && NAMED_SECTIONS.contains(&keyword) {
                        return Err(ParseError {
                            line: number,
                            message: format!("'{keyword}' needs a name"),
                        });
                    }
                    sections.push(Section {
                        keyword: keyword.to_owned(),
                        name,
                        span: line.span.clone(),
                        lines: vec![line],
                        conditional: conditional_depth > 0,
                    });
                }
                Some(word) => match sections.last_mut() {
                    Some(section) => section.lines.push(line),
                    None => {
                        return Err(ParseError {
                            line: number,
                            message: format!(
                                "'{word}' is outside any section (only comments may come before the first section keyword such as 'global' or 'frontend')"
                            ),
                        })
                    }
                },
                None => match sections.last_mut() {
                    Some(section) => section.lines.push(line),
                    None => preamble.push(line),
                },
            }
        }
        if conditional_depth > 0 {
            return Err(ParseError {
                line: open_if_line,
                message: "'.if' is never closed by '.endif'".into(),
            });
        }
        for section in &mut sections {
            let last_owned = section
                .lines
                .iter()
                .rev()
                .find(|l| !l.is_empty() || (l.indented && !is_blank(&text[l.span.clone()])));
            if let Some(last) = last_owned {
                section.span.end = last.span.end;
            }
        }
        Ok(Document {
            text,
            preamble,
            sections,
        })
    }

    /// The sections titled `keyword name`.
    pub fn find<'s>(
        &'s self,
        keyword: &'s str,
        name: &'s str,
    ) -> impl Iterator<Item = &'s Section> {
        self.sections.iter().filter(move |s| s.is(keyword, name))
    }

    /// The file cut into consecutive pieces (the text between sections, then each section
    /// span): concatenated, they are the file byte for byte.
    pub fn pieces(&self) -> Vec<Range<usize>> {
        let mut pieces = Vec::new();
        let mut at = 0;
        for section in &self.sections {
            if section.span.start > at {
                pieces.push(at..section.span.start);
            }
            pieces.push(section.span.clone());
            at = section.span.end;
        }
        if at < self.text.len() {
            pieces.push(at..self.text.len());
        }
        pieces
    }

    /// The file rebuilt from its pieces.
    pub fn render(&self) -> String {
        self.pieces()
            .into_iter()
            .map(|range| &self.text[range])
            .collect()
    }
}

fn is_blank(text: &str) -> bool {
    text.trim().is_empty()
}

/// Splits one line into words like haproxy's parser: blanks separate words, `#` outside
/// quotes starts a comment, `"..."` and `'...'` group, a backslash escapes the next
/// character. Environment variables are kept as written.
pub fn split_words(line: &str) -> Result<Vec<String>, String> {
    Ok(split_words_raw(line)?
        .into_iter()
        .map(|(word, _)| word)
        .collect())
}

/// [`split_words`], each word with its text as written in the line (quotes and
/// backslashes included): what a secret looks like in the file itself.
pub fn split_words_raw(line: &str) -> Result<Vec<(String, &str)>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut start: Option<usize> = None;
    let mut scanned_to = line.len();
    let mut chars = line.char_indices();
    while let Some((at, c)) = chars.next() {
        match c {
            '\0' => return Err("contains a NUL byte".into()),
            ' ' | '\t' | '\r' | '\n' => {
                if let Some(from) = start.take() {
                    words.push((std::mem::take(&mut word), &line[from..at]));
                }
            }
            '#' => {
                scanned_to = at;
                break;
            }
            '\\' => {
                start.get_or_insert(at);
                if let Some((_, next)) = chars.next() {
                    word.push(next);
                }
            }
            '"' | '\'' => {
                start.get_or_insert(at);
                let quote = c;
                loop {
                    match chars.next().map(|(_, c)| c) {
                        None | Some('\n') => {
                            return Err(format!(
                                "unmatched quote {quote} (quotes must close on the same line)"
                            ))
                        }
                        Some('\0') => return Err("contains a NUL byte".into()),
                        Some('\\') if quote == '"' => match chars.next().map(|(_, c)| c) {
                            None | Some('\n') => {
                                return Err(format!(
                                    "unmatched quote {quote} (quotes must close on the same line)"
                                ))
                            }
                            Some(escaped) => word.push(escaped),
                        },
                        Some(q) if q == quote => break,
                        Some(other) => word.push(other),
                    }
                }
            }
            other => {
                start.get_or_insert(at);
                word.push(other);
            }
        }
    }
    if let Some(from) = start {
        words.push((word, &line[from..scanned_to]));
    }
    Ok(words)
}

/// Bytes as text: text that is not UTF-8 is refused with the line where it stops being so.
pub fn decode_utf8(bytes: &[u8]) -> Result<&str, ParseError> {
    std::str::from_utf8(bytes).map_err(|e| {
        let line = bytes[..e.valid_up_to()]
            .iter()
            .filter(|&&b| b == b'\n')
            .count()
            + 1;
        ParseError {
            line,
            message: "is not valid UTF-8 text".into(),
        }
    })
}

/// Parses bytes: text that is not UTF-8 is refused with the line where it stops being so.
pub fn parse_bytes(bytes: &[u8]) -> Result<Document<'_>, ParseError> {
    Document::parse(decode_utf8(bytes)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split_words(line).expect("splits")
    }

    #[test]
    fn words_follow_haproxy_quoting() {
        assert_eq!(words("  bind *:8443   # the API"), ["bind", "*:8443"]);
        assert_eq!(
            words(r#"stats realm HAProxy\ Statistics"#),
            ["stats", "realm", "HAProxy Statistics"]
        );
        assert_eq!(
            words(r#"http-request return string "a # b" 'c\d'"#),
            ["http-request", "return", "string", "a # b", r"c\d"]
        );
        assert_eq!(words(r"pass a\#b"), ["pass", "a#b"]);
        assert_eq!(words("\t\r\n"), Vec::<String>::new());
        assert!(split_words("x \"open").is_err());
        assert!(split_words("x 'open\n").is_err());
    }

    #[test]
    fn raw_words_are_the_text_as_written() {
        let raw = split_words_raw("  stats auth 'admin:a b#c' \"x\\\"y\" p\\ q # note\n")
            .expect("splits");
        let written: Vec<&str> = raw.iter().map(|(_, r)| *r).collect();
        assert_eq!(
            written,
            ["stats", "auth", "'admin:a b#c'", "\"x\\\"y\"", "p\\ q"]
        );
        let words: Vec<&str> = raw.iter().map(|(w, _)| w.as_str()).collect();
        assert_eq!(words, ["stats", "auth", "admin:a b#c", "x\"y", "p q"]);
        let last = split_words_raw("user u insecure-password pw").expect("splits");
        assert_eq!(last[3], ("pw".to_owned(), "pw"));
    }

    #[test]
    fn sections_and_spans() {
        let text = "# head\nglobal\n    daemon\n\n#----\n# banner\nfrontend api\n    bind :1\n    # note\n\nbackend api\n    server a 1.2.3.4:6443\n";
        let doc = Document::parse(text).expect("parses");
        let titles: Vec<String> = doc.sections.iter().map(Section::title).collect();
        assert_eq!(titles, ["global", "frontend api", "backend api"]);
        assert_eq!(&text[doc.sections[0].span.clone()], "global\n    daemon\n");
        assert_eq!(
            &text[doc.sections[1].span.clone()],
            "frontend api\n    bind :1\n    # note\n"
        );
        assert_eq!(doc.render(), text);
        assert_eq!(doc.sections[2].header_line(), 11);
    }

    #[test]
    fn indented_section_keywords_still_open_sections() {
        let doc = Document::parse("frontend a\n  bind :1\n  backend b\nserver x 1.1.1.1:1\n")
            .expect("parses");
        assert_eq!(doc.sections.len(), 2);
        assert_eq!(doc.sections[1].directives().count(), 1);
    }

    #[test]
    fn refusals_name_the_line() {
        let cases = [
            ("bind :80\n", 1, "outside any section"),
            ("global\nfrontend\n", 2, "'frontend' needs a name"),
            ("global\n  log \"x\n", 2, "unmatched quote"),
            ("global\n.endif\n", 2, "without a matching '.if'"),
            ("global\n.if defined(X)\n  daemon\n", 2, "never closed"),
            ("global\n  daemon\0\n", 2, "NUL"),
        ];
        for (text, line, needle) in cases {
            let err = Document::parse(text).expect_err(text);
            assert_eq!(err.line, line, "{text:?}: {err}");
            assert!(err.message.contains(needle), "{text:?}: {err}");
        }
        let err = parse_bytes(b"global\n  # caf\xe9\n").expect_err("latin-1");
        assert_eq!(err.to_string(), "line 2: is not valid UTF-8 text");
    }

    #[test]
    fn conditional_sections_are_marked() {
        let doc = Document::parse(
            ".if defined(A)\nfrontend a\n  bind :1\n.endif\nbackend b\n  .notice hi\nlisten c\n",
        )
        .expect("parses");
        let marks: Vec<bool> = doc.sections.iter().map(|s| s.conditional).collect();
        assert_eq!(marks, [true, true, false]);
    }
}
