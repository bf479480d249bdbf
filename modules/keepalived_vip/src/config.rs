//! The keepalived configuration grammar, lossless: every byte of a file belongs to exactly
//! one node of the tree, so an edit replaces the byte range of one block and leaves every
//! other byte as it was.
//!
//! The rules are keepalived's own (lib/parser.c of 2.2.x: `decomment`, `read_line`,
//! `alloc_strvec`):
//! - A comment starts at the first `#` or `!` outside double quotes, anywhere in a line,
//!   even inside a word: keepalived reads `auth_pass ab#cd` as `auth_pass ab`. `\#` and
//!   `\!` are literal characters.
//! - `"` opens a quoted word that runs to the next `"` on the same line; a quote left
//!   open is an error.
//! - `{` and `}` outside quotes are words of their own wherever they stand. The `{` of a
//!   block may be on its keyword's line or alone on a later line.
//! - `$NAME=value` lines define parameters (a trailing `\` continues the value on the next
//!   line). They are kept as opaque text; a parameter whose value holds braces is not
//!   understood.
//! - `include`, `@id` and `~SEQ` lines are ordinary statements here: included files are
//!   not read.

use std::fmt;
use std::ops::Range;

/// One word of a statement: its text as keepalived sees it (quotes and the `\` of `\#`
/// removed) and where it stands in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    pub text: String,
    pub span: Range<usize>,
}

/// A keyword with its arguments, and the block that follows it, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub words: Vec<Word>,
    /// 1-based line of the first word.
    pub line: usize,
    /// From the first word to the end of the last word, or to the `{` of the block (so a
    /// comment between the words and a `{` on a later line belongs to the head).
    pub head: Range<usize>,
    pub block: Option<Block>,
}

/// `{ body }`: `open` and `close` are the offsets of the braces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    pub open: usize,
    pub body: Vec<Node>,
    pub close: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Node {
    /// Whitespace, comments and parameter definitions between statements.
    Trivia(Range<usize>),
    Statement(Statement),
}

/// A parsed file: its nodes cover `0..len` without gaps or overlaps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    pub nodes: Vec<Node>,
    pub len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ParseError {}

impl Statement {
    pub fn keyword(&self) -> &str {
        self.words.first().map_or("", |w| w.text.as_str())
    }

    /// The words after the keyword.
    pub fn args(&self) -> impl Iterator<Item = &str> {
        self.words.iter().skip(1).map(|w| w.text.as_str())
    }

    /// Whether the statement is `KEYWORD NAME` with nothing else before its block.
    pub fn is_named(&self, keyword: &str, name: &str) -> bool {
        self.words.len() == 2 && self.words[0].text == keyword && self.words[1].text == name
    }

    /// The whole statement: head and block.
    pub fn span(&self) -> Range<usize> {
        let end = self.block.as_ref().map_or(self.head.end, |b| b.close + 1);
        self.head.start..end
    }

    /// The statements of the block (none without a block).
    pub fn children(&self) -> impl Iterator<Item = &Statement> {
        self.block
            .iter()
            .flat_map(|b| b.body.iter())
            .filter_map(Node::as_statement)
    }
}

impl Node {
    pub fn as_statement(&self) -> Option<&Statement> {
        match self {
            Node::Statement(s) => Some(s),
            Node::Trivia(_) => None,
        }
    }
}

impl Document {
    pub fn statements(&self) -> impl Iterator<Item = &Statement> {
        self.nodes.iter().filter_map(Node::as_statement)
    }

    /// Every statement at any depth, parents before their children.
    pub fn all_statements(&self) -> Vec<&Statement> {
        fn walk<'a>(nodes: &'a [Node], out: &mut Vec<&'a Statement>) {
            for statement in nodes.iter().filter_map(Node::as_statement) {
                out.push(statement);
                if let Some(block) = &statement.block {
                    walk(&block.body, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.nodes, &mut out);
        out
    }

    /// The file again, rebuilt from the nodes (byte-identical to what was parsed).
    pub fn render(&self, src: &[u8]) -> Vec<u8> {
        fn nodes(src: &[u8], list: &[Node], out: &mut Vec<u8>) {
            for node in list {
                match node {
                    Node::Trivia(range) => out.extend_from_slice(&src[range.clone()]),
                    Node::Statement(statement) => {
                        out.extend_from_slice(&src[statement.head.clone()]);
                        if let Some(block) = &statement.block {
                            out.extend_from_slice(&src[block.open..=block.open]);
                            nodes(src, &block.body, out);
                            out.extend_from_slice(&src[block.close..=block.close]);
                        }
                    }
                }
            }
        }
        let mut out = Vec::with_capacity(self.len);
        nodes(src, &self.nodes, &mut out);
        out
    }
}

/// Whitespace as keepalived's parser sees it (NUL too: C strings end there).
fn is_space(byte: u8) -> bool {
    matches!(byte, b' ' | b'\t' | b'\r' | b'\n' | 0x0b | 0x0c | 0)
}

#[derive(Debug)]
enum Token {
    Word(Word, usize),
    Open(usize, usize),
    Close(usize, usize),
    EndOfLine,
}

/// Where the code of a line ends: at the first `#` or `!` outside quotes, or at its end.
fn code_end(line: &[u8], line_no: usize) -> Result<usize, ParseError> {
    let mut quoted = false;
    let mut i = 0;
    while i < line.len() {
        match line[i] {
            b'"' => quoted = !quoted,
            // An escaped character (inside quotes too), or a trailing backslash.
            b'\\' => {
                i += 2;
                continue;
            }
            b'#' | b'!' if !quoted => return Ok(i),
            _ => {}
        }
        i += 1;
    }
    if quoted {
        return Err(unterminated_quote(line_no));
    }
    Ok(line.len())
}

fn unterminated_quote(line: usize) -> ParseError {
    ParseError {
        line,
        message: "a double quote is opened and never closed on this line".into(),
    }
}

/// `$NAME=` or `$NAME =` at the start of the code: a parameter definition.
fn is_definition(code: &[u8]) -> bool {
    let Some(rest) = code.strip_prefix(b"$") else {
        return false;
    };
    let name_len = rest
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
        .count();
    if name_len == 0 || rest[0].is_ascii_digit() {
        return false;
    }
    rest[name_len..]
        .iter()
        .find(|b| !matches!(b, b' ' | b'\t'))
        .is_some_and(|b| *b == b'=')
}

fn trim_end(bytes: &[u8]) -> &[u8] {
    let end = bytes
        .iter()
        .rposition(|b| !is_space(*b))
        .map_or(0, |i| i + 1);
    &bytes[..end]
}

/// Splits the file into words, braces and line ends.
fn tokenize(src: &[u8]) -> Result<Vec<Token>, ParseError> {
    let mut tokens = Vec::new();
    let mut line_start = 0;
    let mut line_no = 0;
    let mut in_definition = false;
    while line_start < src.len() {
        line_no += 1;
        let line_end = src[line_start..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(src.len(), |i| line_start + i);
        let line = &src[line_start..line_end];
        let code = &line[..code_end(line, line_no)?];
        let indent = code
            .iter()
            .take_while(|b| matches!(b, b' ' | b'\t'))
            .count();
        let code = &code[indent..];

        // A parameter definition (and its continuation lines) is opaque text.
        if in_definition || is_definition(code) {
            in_definition = trim_end(code).ends_with(b"\\");
        } else {
            tokenize_code(src, line_start + indent, code.len(), line_no, &mut tokens)?;
            tokens.push(Token::EndOfLine);
        }
        line_start = line_end + 1;
    }
    Ok(tokens)
}

/// The words and braces of `src[start..start + len]`, the code part of one line.
fn tokenize_code(
    src: &[u8],
    start: usize,
    len: usize,
    line_no: usize,
    tokens: &mut Vec<Token>,
) -> Result<(), ParseError> {
    let end = start + len;
    let mut i = start;
    while i < end {
        match src[i] {
            byte if is_space(byte) => i += 1,
            b'{' => {
                tokens.push(Token::Open(i, line_no));
                i += 1;
            }
            b'}' => {
                tokens.push(Token::Close(i, line_no));
                i += 1;
            }
            b'"' => {
                let close = src[i + 1..end]
                    .iter()
                    .position(|b| *b == b'"')
                    .map(|p| i + 1 + p)
                    .ok_or_else(|| unterminated_quote(line_no))?;
                let text = String::from_utf8_lossy(&src[i + 1..close]).into_owned();
                tokens.push(Token::Word(
                    Word {
                        text,
                        span: i..close + 1,
                    },
                    line_no,
                ));
                i = close + 1;
            }
            _ => {
                let mut text = Vec::new();
                let mut j = i;
                while j < end && !is_space(src[j]) && !matches!(src[j], b'"' | b'{' | b'}') {
                    // `\#` and `\!` are literal; keepalived drops the backslash.
                    if src[j] == b'\\' && j + 1 < end && matches!(src[j + 1], b'#' | b'!') {
                        j += 1;
                    }
                    text.push(src[j]);
                    j += 1;
                }
                tokens.push(Token::Word(
                    Word {
                        text: String::from_utf8_lossy(&text).into_owned(),
                        span: i..j,
                    },
                    line_no,
                ));
                i = j;
            }
        }
    }
    Ok(())
}

/// A block being read: the statement that owns it and what it holds so far.
struct Frame {
    owner: Option<Statement>,
    nodes: Vec<Node>,
    /// End of the last byte already covered by `nodes`.
    cursor: usize,
    /// Words of the statement being read on the current line.
    words: Vec<Word>,
    words_line: usize,
}

impl Frame {
    fn new(owner: Option<Statement>, cursor: usize) -> Self {
        Frame {
            owner,
            nodes: Vec::new(),
            cursor,
            words: Vec::new(),
            words_line: 0,
        }
    }

    fn push(&mut self, statement: Statement) {
        let start = statement.head.start;
        if start > self.cursor {
            self.nodes.push(Node::Trivia(self.cursor..start));
        }
        self.cursor = statement.span().end;
        self.nodes.push(Node::Statement(statement));
    }

    /// Ends the statement of the current line, if there is one.
    fn finish_words(&mut self) {
        if let Some(statement) = self.take_words(None) {
            self.push(statement);
        }
    }

    /// The statement of the current line, its head reaching to `head_end` when given.
    fn take_words(&mut self, head_end: Option<usize>) -> Option<Statement> {
        if self.words.is_empty() {
            return None;
        }
        let words = std::mem::take(&mut self.words);
        let start = words[0].span.start;
        let end = head_end.unwrap_or_else(|| words[words.len() - 1].span.end);
        Some(Statement {
            words,
            line: self.words_line,
            head: start..end,
            block: None,
        })
    }

    /// The statement a `{` at `open` belongs to: the words before it on its line, or the
    /// statement just before it when the `{` starts a line.
    fn block_owner(&mut self, open: usize) -> Option<Statement> {
        if let Some(statement) = self.take_words(Some(open)) {
            return Some(statement);
        }
        match self.nodes.last() {
            Some(Node::Statement(last)) if last.block.is_none() => {}
            _ => return None,
        }
        let mut statement = match self.nodes.pop() {
            Some(Node::Statement(statement)) => statement,
            _ => return None,
        };
        self.cursor = statement.head.start;
        statement.head.end = open;
        Some(statement)
    }
}

/// Parses a keepalived configuration file.
pub fn parse(src: &[u8]) -> Result<Document, ParseError> {
    let tokens = tokenize(src)?;
    let mut stack = vec![Frame::new(None, 0)];
    for token in tokens {
        let depth = stack.len();
        let frame = stack.last_mut().ok_or_else(|| ParseError {
            line: 0,
            message: "internal parser state lost".into(),
        })?;
        match token {
            Token::Word(word, line) => {
                if frame.words.is_empty() {
                    frame.words_line = line;
                }
                frame.words.push(word);
            }
            Token::EndOfLine => frame.finish_words(),
            Token::Open(open, line) => {
                let owner = frame.block_owner(open).ok_or_else(|| ParseError {
                    line,
                    message: "'{' has no keyword before it".into(),
                })?;
                stack.push(Frame::new(Some(owner), open + 1));
            }
            Token::Close(close, line) => {
                frame.finish_words();
                if depth == 1 {
                    return Err(ParseError {
                        line,
                        message: "'}' has no matching '{'".into(),
                    });
                }
                let Some(mut inner) = stack.pop() else {
                    continue;
                };
                if close > inner.cursor {
                    inner.nodes.push(Node::Trivia(inner.cursor..close));
                }
                let Some(mut owner) = inner.owner else {
                    continue;
                };
                owner.block = Some(Block {
                    open: owner.head.end,
                    body: inner.nodes,
                    close,
                });
                if let Some(parent) = stack.last_mut() {
                    parent.push(owner);
                }
            }
        }
    }
    if stack.len() > 1 {
        // The innermost block still open is the one to report.
        let open = stack.last().and_then(|f| f.owner.as_ref());
        return Err(ParseError {
            line: open.map_or(0, |s| s.line),
            message: format!(
                "the block of '{}' opened on this line is never closed",
                open.map_or("", |s| s.keyword())
            ),
        });
    }
    let Some(mut top) = stack.pop() else {
        return Ok(Document {
            nodes: Vec::new(),
            len: src.len(),
        });
    };
    top.finish_words();
    if src.len() > top.cursor {
        top.nodes.push(Node::Trivia(top.cursor..src.len()));
    }
    Ok(Document {
        nodes: top.nodes,
        len: src.len(),
    })
}

/// A replacement of `range` by `text`; an empty range inserts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    pub range: Range<usize>,
    pub text: Vec<u8>,
}

impl Edit {
    pub fn replace(range: Range<usize>, text: impl Into<Vec<u8>>) -> Self {
        Edit {
            range,
            text: text.into(),
        }
    }

    pub fn insert(at: usize, text: impl Into<Vec<u8>>) -> Self {
        Edit {
            range: at..at,
            text: text.into(),
        }
    }
}

/// Applies edits to `src`. Edits are sorted by position (insertions at one position keep
/// their order, before a replacement starting there); overlapping edits are a bug.
pub fn apply_edits(src: &[u8], mut edits: Vec<Edit>) -> Vec<u8> {
    edits.sort_by_key(|e| (e.range.start, !e.range.is_empty()));
    let mut out = Vec::with_capacity(src.len() + 256);
    let mut cursor = 0;
    for edit in edits {
        debug_assert!(edit.range.start >= cursor, "overlapping edits");
        let start = edit.range.start.clamp(cursor, src.len());
        out.extend_from_slice(&src[cursor..start]);
        out.extend_from_slice(&edit.text);
        cursor = edit.range.end.clamp(start, src.len());
    }
    out.extend_from_slice(&src[cursor..]);
    out
}

/// The start of the line holding `pos` when only blanks precede `pos` on it.
pub fn line_start_if_blank_before(src: &[u8], pos: usize) -> usize {
    let line_start = src[..pos]
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1);
    if src[line_start..pos]
        .iter()
        .all(|b| matches!(b, b' ' | b'\t'))
    {
        line_start
    } else {
        pos
    }
}

/// The range to delete to remove `span` whole: its lines too when nothing else is on
/// them but blanks and a comment after it (a comment on a block's last line goes with it).
pub fn removal_range(src: &[u8], span: Range<usize>) -> Range<usize> {
    let start = line_start_if_blank_before(src, span.start);
    let at_line_start = start == 0 || src[start - 1] == b'\n';
    let rest = &src[span.end..];
    let line_rest = rest.iter().position(|b| *b == b'\n').unwrap_or(rest.len());
    let after = &rest[..line_rest];
    let blanks = after
        .iter()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\r'))
        .count();
    let nothing_after = blanks == after.len() || matches!(after[blanks], b'#' | b'!');
    if at_line_start && nothing_after {
        return start..(span.end + line_rest + 1).min(src.len());
    }
    start..span.end
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(text: &str) -> Document {
        parse(text.as_bytes()).expect("parses")
    }

    fn keywords(d: &Document) -> Vec<String> {
        d.all_statements()
            .iter()
            .map(|s| {
                s.words
                    .iter()
                    .map(|w| w.text.as_str())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn comments_start_anywhere_outside_quotes() {
        let d = doc("auth_pass ab#cd\nauth_pass \"ab#cd\"\nx y!z\nx \\#y\n! all\n# all\n");
        assert_eq!(
            keywords(&d),
            ["auth_pass ab", "auth_pass ab#cd", "x y", "x #y"]
        );
    }

    #[test]
    fn braces_split_words_and_may_stand_on_the_next_line() {
        let text = "vrrp_instance A # c\n{\n state BACKUP }\nvrrp_script s{interval 2}\n";
        let d = doc(text);
        assert_eq!(
            keywords(&d),
            [
                "vrrp_instance A",
                "state BACKUP",
                "vrrp_script s",
                "interval 2"
            ]
        );
        let first = d.statements().next().expect("statement");
        assert_eq!(&text[first.head.clone()], "vrrp_instance A # c\n");
        assert_eq!(
            &text[first.span()],
            "vrrp_instance A # c\n{\n state BACKUP }"
        );
        assert_eq!(d.render(text.as_bytes()), text.as_bytes());
    }

    #[test]
    fn definitions_are_opaque() {
        let text = "$IF=eth0\n$BLOCK=a { \\\n  b }\nx $IF\n";
        assert_eq!(keywords(&doc(text)), ["x $IF"]);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            (
                "a {\n b\n",
                "line 1: the block of 'a' opened on this line is never closed",
            ),
            (
                "a {\n b {\n}\n",
                "line 1: the block of 'a' opened on this line is never closed",
            ),
            ("a\n}\n", "line 2: '}' has no matching '{'"),
            ("{\n}\n", "line 1: '{' has no keyword before it"),
            ("a {\n}\n{\n}", "line 3: '{' has no keyword before it"),
            (
                "x\ny \"open\n",
                "line 2: a double quote is opened and never closed on this line",
            ),
        ];
        for (text, message) in cases {
            let err = parse(text.as_bytes()).expect_err(text);
            assert_eq!(err.to_string(), message, "{text:?}");
        }
    }

    #[test]
    fn edits_and_removal_ranges() {
        let text = b"a\n  b {\n  }\nc\n";
        let d = parse(text).expect("parses");
        let b = d.statements().nth(1).expect("b");
        assert_eq!(removal_range(text, b.span()), 2..12);
        let out = apply_edits(
            text,
            vec![
                Edit::replace(b.span(), "B"),
                Edit::insert(0, "0\n"),
                Edit::insert(0, "1\n"),
            ],
        );
        assert_eq!(out, b"0\n1\na\n  B\nc\n");
    }
}
