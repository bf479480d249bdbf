//! Config files as users have them: a UTF-8 byte-order mark, Windows line endings.
//! Modules edit plain LF text; [`TextEncoding`] remembers how the file was written so the
//! result goes back the same way, and an untouched line keeps its bytes.

const BOM: &str = "\u{feff}";

/// How a text file is encoded besides its characters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TextEncoding {
    /// The file starts with a UTF-8 byte-order mark.
    pub bom: bool,
    /// Every line of the file ends in CRLF. A file mixing CRLF and LF is edited as it is:
    /// converting it either way would change lines the module does not own.
    pub crlf: bool,
}

impl TextEncoding {
    /// Splits `raw` into LF text to edit and the encoding to write it back with.
    pub fn decode(raw: &str) -> (String, TextEncoding) {
        let (bom, text) = match raw.strip_prefix(BOM) {
            Some(rest) => (true, rest),
            None => (false, raw),
        };
        let newlines = text.matches('\n').count();
        let crlf = newlines > 0 && text.matches("\r\n").count() == newlines;
        let text = if crlf {
            text.replace("\r\n", "\n")
        } else {
            text.to_owned()
        };
        (text, TextEncoding { bom, crlf })
    }

    /// `text` (LF line endings) in this encoding.
    pub fn encode(self, text: &str) -> String {
        let mut out = String::with_capacity(text.len() + text.len() / 16 + 3);
        if self.bom {
            out.push_str(BOM);
        }
        if self.crlf {
            out.push_str(&text.replace('\n', "\r\n"));
        } else {
            out.push_str(text);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_and_bom_round_trip() {
        let raw = "\u{feff}global\r\n  daemon\r\n";
        let (text, encoding) = TextEncoding::decode(raw);
        assert_eq!(text, "global\n  daemon\n");
        assert_eq!(
            encoding,
            TextEncoding {
                bom: true,
                crlf: true
            }
        );
        assert_eq!(encoding.encode(&text), raw);
        assert_eq!(
            encoding.encode("global\n  daemon\nnew\n"),
            "\u{feff}global\r\n  daemon\r\nnew\r\n"
        );
    }

    #[test]
    fn plain_and_mixed_files_are_kept_as_they_are() {
        for raw in ["a\nb\n", "a\r\nb\n", "", "no newline"] {
            let (text, encoding) = TextEncoding::decode(raw);
            assert_eq!(text, raw);
            assert_eq!(encoding, TextEncoding::default());
            assert_eq!(encoding.encode(&text), raw);
        }
    }
}
