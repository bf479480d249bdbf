//! Deterministic fuzzing of the parser and the section editor: a fixed-seed PRNG mutates
//! the fixture configs (bytes, quotes, comments, section keywords, conditionals, NULs,
//! invalid UTF-8, truncation) for a bounded number of rounds. Properties:
//! - parsing never panics; a parsed file renders back byte for byte, and its pieces are
//!   consecutive, ordered and cover the file;
//! - editing never panics; an edited file parses, a second edit changes nothing, and
//!   every section the module does not own keeps its exact text and order.
//!
//! The coverage-guided counterpart is `fuzz/` (cargo fuzz, see the README there).

use std::fs;
use std::path::Path;

use haproxy_backend::address::FixedHost;
use haproxy_backend::config::{parse_bytes, Document};
use haproxy_backend::edit::{self, SectionId, WantedSection};
use haproxy_backend::{validate, HaproxyBackend, Params};
use module_runtime::{params::from_params, Module};
use serde_json::json;

/// xorshift64*: small, fast, and the same sequence on every machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const FRAGMENTS: &[&[u8]] = &[
    b"\"",
    b"'",
    b"\\",
    b"#",
    b"\n",
    b" ",
    b"\t",
    b"\r\n",
    b"\0",
    b"\xff",
    b"\xc3",
    b".if defined(X)\n",
    b".endif\n",
    b".else\n",
    b".notice hi\n",
    b"frontend kubernetes-apiserver\n",
    b"backend kubernetes-apiserver\n",
    b"listen kubernetes-apiserver\n",
    b"listen kubernetes-apiserver-stats\n",
    b"frontend\n",
    b"global\n",
    b"defaults\n",
    b"    server x 10.0.0.1:6443 check\n",
    b"  # comment\n",
    b"# banner\n",
    b"\n\n\n",
    b"peers p\n",
    b"cache c\n",
    b"userlist u\n",
    b"ring r\n",
    b"    bind *:8443\n",
    b"\xe2\x82\xac",
];

fn mutate(rng: &mut Rng, input: &[u8]) -> Vec<u8> {
    let mut data = input.to_vec();
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(data.len() + 1);
        match rng.below(6) {
            0 => {
                let fragment = FRAGMENTS[rng.below(FRAGMENTS.len())];
                data.splice(at..at, fragment.iter().copied());
            }
            1 => {
                let end = (at + rng.below(40)).min(data.len());
                data.drain(at..end);
            }
            2 => data.truncate(at),
            3 => {
                // Duplicate a run of bytes (often whole lines or sections).
                let end = (at + rng.below(200)).min(data.len());
                let copy = data[at..end].to_vec();
                let to = rng.below(data.len() + 1);
                data.splice(to..to, copy);
            }
            4 => {
                if at < data.len() {
                    data[at] = rng.next() as u8;
                }
            }
            _ => {
                // Indent or unindent the line at `at`.
                let start = data[..at]
                    .iter()
                    .rposition(|&b| b == b'\n')
                    .map_or(0, |i| i + 1);
                if data.get(start) == Some(&b' ') {
                    data.remove(start);
                } else {
                    data.insert(start, b' ');
                }
            }
        }
    }
    data
}

fn corpus() -> Vec<Vec<u8>> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = fs::read_dir(&fixtures)
        .expect("fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .flat_map(|case| [case.join("in"), case.join("out")])
        .filter(|p| p.exists())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| fs::read(p).expect("read"))
        .collect()
}

fn check_document(doc: &Document<'_>, label: &str) {
    assert_eq!(doc.render(), doc.text, "{label}: render differs");
    let mut at = 0;
    for piece in doc.pieces() {
        assert_eq!(piece.start, at, "{label}: pieces not consecutive");
        assert!(piece.end > piece.start, "{label}: empty piece");
        at = piece.end;
    }
    assert_eq!(at, doc.text.len(), "{label}: pieces do not cover the file");
    for section in &doc.sections {
        let starts_line =
            section.span.start == 0 || doc.text.as_bytes()[section.span.start - 1] == b'\n';
        let ends_line = section.span.end == doc.text.len()
            || doc.text.as_bytes()[section.span.end - 1] == b'\n';
        assert!(
            starts_line && ends_line,
            "{label}: span {:?} not on line bounds",
            section.span
        );
    }
}

fn wanted() -> (Vec<SectionId>, Vec<WantedSection>) {
    let args = json!({
        "servers": [{"name": "cp1", "address": "10.0.0.11"}, {"name": "cp2", "address": "10.0.0.12", "state": "drain"}],
        "stats": true,
        "stats_password": "pw",
    });
    let params: Params =
        from_params(HaproxyBackend::NAME, args.as_object().expect("object")).expect("params");
    let desired = validate(&params, &FixedHost::default()).expect("valid");
    (desired.owned(), desired.sections())
}

fn foreign_sections<'a>(doc: &'a Document<'_>, owned: &[SectionId]) -> Vec<&'a str> {
    doc.sections
        .iter()
        .filter(|s| !owned.iter().any(|id| s.is(id.keyword, &id.name)))
        .map(|s| &doc.text[s.span.clone()])
        .collect()
}

#[test]
fn unmodified_fixtures_render_byte_identical() {
    let corpus = corpus();
    assert!(corpus.len() > 20);
    for (i, input) in corpus.iter().enumerate() {
        if let Ok(doc) = parse_bytes(input) {
            check_document(&doc, &format!("corpus[{i}]"));
        }
    }
}

#[test]
fn mutated_configs_never_panic_and_edits_keep_foreign_sections() {
    let corpus = corpus();
    let (owned, wanted) = wanted();
    // Fixed by default; HAPROXY_FUZZ_SEED and HAPROXY_FUZZ_ROUNDS explore further.
    let env_number = |name: &str| std::env::var(name).ok().and_then(|v| v.parse::<u64>().ok());
    let mut rng = Rng(env_number("HAPROXY_FUZZ_SEED").unwrap_or(0x5EED_0000_4A50_C0DE) | 1);
    let rounds = env_number("HAPROXY_FUZZ_ROUNDS").unwrap_or(4000);
    let (mut parsed, mut refused, mut edited) = (0, 0, 0);
    for round in 0..rounds {
        let source = &corpus[rng.below(corpus.len())];
        let input = mutate(&mut rng, source);
        let label = format!("round {round}: {:?}", String::from_utf8_lossy(&input));
        let Ok(doc) = parse_bytes(&input) else {
            refused += 1;
            continue;
        };
        parsed += 1;
        check_document(&doc, &label);
        let (present, absent) = (
            edit::apply(doc.text, &owned, &wanted),
            edit::apply(doc.text, &owned, &[]),
        );
        for (result, sections) in [(present, &wanted[..]), (absent, &[][..])] {
            let Ok(out) = result else { continue };
            edited += 1;
            let out_doc = Document::parse(&out)
                .unwrap_or_else(|e| panic!("{label}: edit output does not parse: {e}\n{out}"));
            check_document(&out_doc, &label);
            // Appending after a last line without a newline has to add that newline.
            let mut expected: Vec<String> = foreign_sections(&doc, &owned)
                .into_iter()
                .map(str::to_owned)
                .collect();
            let last_is_foreign = doc.sections.last().is_some_and(|s| {
                s.span.end == doc.text.len() && !owned.iter().any(|id| s.is(id.keyword, &id.name))
            });
            let got: Vec<&str> = foreign_sections(&out_doc, &owned);
            if last_is_foreign && !doc.text.ends_with('\n') {
                if let (Some(last), Some(new_last)) = (expected.last_mut(), got.last()) {
                    if *new_last == format!("{last}\n") {
                        last.push('\n');
                    }
                }
            }
            assert_eq!(got, expected, "{label}: a foreign section changed");
            let again = edit::apply(&out, &owned, sections).expect("second edit");
            assert_eq!(again, out, "{label}: second edit changed the file");
        }
    }
    // The mutations must exercise both paths, or the test proves little.
    assert!(
        parsed > 1000 && refused > 200 && edited > 1000,
        "parsed {parsed}, refused {refused}, edited {edited}"
    );
}
