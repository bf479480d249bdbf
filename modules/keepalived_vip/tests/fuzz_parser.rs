//! Deterministic fuzzing of the parser and the editor: the fixture configs, mutated by a
//! seeded PRNG (same inputs every run, bounded iterations). For every input:
//! - parsing never panics, and a parsed file renders back byte-identical;
//! - the tree is consistent (nodes cover the file in order, words lie in their heads);
//! - editing a parsed file gives a file that parses, holds the module's blocks exactly
//!   once and as rendered, is unchanged by a second edit, and loses them on removal.
//!
//! `FUZZ_ITERATIONS=N` runs longer; a failing input is printed (escaped) with its seed.

use std::fs;
use std::net::IpAddr;
use std::path::Path;

use keepalived_vip::config::{self, Document, Node};
use keepalived_vip::host::Prefixed;
use keepalived_vip::{edit_config, remove_blocks, render, ManagedBlocks, Params, Resolved};
use module_runtime::params::from_params;
use serde_json::json;

/// xorshift64*: small, seeded, good enough to pick mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }
}

const SNIPPETS: &[&[u8]] = &[
    b"{",
    b"}",
    b"\"",
    b"#",
    b"!",
    b"\\",
    b"\n",
    b" ",
    b"\t",
    b"\r\n",
    b"\0",
    b"\xff\xfe",
    b"$X=",
    b"$Y=a \\\n",
    b"\\#",
    b"@node1 ",
    b"include /etc/keepalived/*.conf\n",
    b"vrrp_instance kubernetes-apiserver {",
    b"vrrp_instance kubernetes-apiserver\n{\n}\n",
    b"vrrp_script check_apiserver {",
    b"global_defs {",
    b"global_defs {}\n",
    b"script_user nobody",
    b"enable_script_security",
    b"virtual_ipaddress { 192.168.0.66/24 }",
    b"auth_pass \"a#b\"",
];

fn corpus() -> Vec<Vec<u8>> {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut files: Vec<_> = fs::read_dir(fixtures)
        .expect("fixtures")
        .flatten()
        .flat_map(|case| [case.path().join("in"), case.path().join("out")])
        .filter(|p| p.exists())
        .collect();
    files.sort();
    let mut corpus: Vec<Vec<u8>> = files.iter().map(|p| fs::read(p).expect("read")).collect();
    corpus.push(Vec::new());
    corpus
}

fn mutate(rng: &mut Rng, input: &mut Vec<u8>) {
    for _ in 0..=rng.below(4) {
        let len = input.len();
        match rng.below(6) {
            0 => {
                let snippet = SNIPPETS[rng.below(SNIPPETS.len())];
                let at = rng.below(len + 1);
                input.splice(at..at, snippet.iter().copied());
            }
            1 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(16)).min(len);
                input.drain(start..end);
            }
            2 if len > 0 => {
                let start = rng.below(len);
                let end = (start + 1 + rng.below(64)).min(len);
                let copy = input[start..end].to_vec();
                let at = rng.below(len + 1);
                input.splice(at..at, copy);
            }
            3 if len > 0 => {
                let at = rng.below(len);
                input[at] = (rng.next() & 0xff) as u8;
            }
            4 => input.truncate(rng.below(len + 1)),
            _ => {
                let mut lines: Vec<Vec<u8>> =
                    input.split(|b| *b == b'\n').map(<[u8]>::to_vec).collect();
                let (a, b) = (rng.below(lines.len()), rng.below(lines.len()));
                lines.swap(a, b);
                *input = lines.join(&b'\n');
            }
        }
    }
}

/// Nodes cover `range` in order; every statement's words lie in its head.
fn check_tree(nodes: &[Node], range: std::ops::Range<usize>) -> Result<(), String> {
    let mut cursor = range.start;
    for node in nodes {
        match node {
            Node::Trivia(r) => {
                if r.start != cursor || r.is_empty() {
                    return Err(format!("trivia {r:?} at cursor {cursor}"));
                }
                cursor = r.end;
            }
            Node::Statement(s) => {
                if s.head.start != cursor || s.words.is_empty() {
                    return Err(format!("statement {:?} at cursor {cursor}", s.head));
                }
                for word in &s.words {
                    if word.span.start < s.head.start || word.span.end > s.head.end {
                        return Err(format!("word {:?} outside head {:?}", word.span, s.head));
                    }
                }
                if let Some(block) = &s.block {
                    if block.open != s.head.end || block.close < block.open {
                        return Err(format!(
                            "block {}..{} after head {:?}",
                            block.open, block.close, s.head
                        ));
                    }
                    check_tree(&block.body, block.open + 1..block.close)?;
                }
                cursor = s.span().end;
            }
        }
    }
    if cursor != range.end {
        return Err(format!("nodes end at {cursor}, not {}", range.end));
    }
    Ok(())
}

struct Setup {
    params: Params,
    blocks: ManagedBlocks,
}

fn setup() -> Setup {
    let args = json!({"vip": "192.168.0.66/24", "auth_pass": "k8s#vip", "unicast_peers": ["192.168.0.62"]});
    let params: Params =
        from_params("keepalived_vip", args.as_object().expect("object")).expect("params");
    let resolved = Resolved {
        vip: Prefixed::parse("192.168.0.66/24").expect("vip"),
        interface: "eth0".into(),
        virtual_router_id: 66,
        priority: 150,
        initial_state: "BACKUP",
        nopreempt: true,
        unicast_peers: vec!["192.168.0.62".parse::<IpAddr>().expect("ip")],
        unicast_src_ip: Some("192.168.0.61".parse::<IpAddr>().expect("ip")),
    };
    let blocks = ManagedBlocks {
        instance: render::instance(&params, &resolved),
        script: render::vrrp_script(&params, &params.check_script),
        script_user: "root".into(),
    };
    Setup { params, blocks }
}

fn ours<'a>(
    doc: &'a Document,
    keyword: &'a str,
    name: &'a str,
) -> Vec<&'a keepalived_vip::config::Statement> {
    doc.statements()
        .filter(|s| s.is_named(keyword, name))
        .collect()
}

fn check_input(src: &[u8], setup: &Setup) -> Result<bool, String> {
    let Ok(doc) = config::parse(src) else {
        return Ok(false);
    };
    if doc.render(src) != src {
        return Err("render differs from the input".into());
    }
    check_tree(&doc.nodes, 0..src.len())?;
    let (name, script_name) = (&setup.params.name, &setup.params.script_name);
    if ours(&doc, "vrrp_instance", name).len() > 1
        || ours(&doc, "vrrp_script", script_name).len() > 1
    {
        return Ok(true); // the module refuses these files
    }

    let edited = edit_config(src, &doc, &setup.params, &setup.blocks);
    let edited_doc =
        config::parse(&edited).map_err(|e| format!("edited file does not parse: {e}"))?;
    let normalise = |bytes: &[u8]| String::from_utf8_lossy(bytes).replace("\r\n", "\n");
    for (keyword, name, text) in [
        ("vrrp_instance", name, &setup.blocks.instance),
        ("vrrp_script", script_name, &setup.blocks.script),
    ] {
        let found = ours(&edited_doc, keyword, name);
        if found.len() != 1 || normalise(&edited[found[0].span()]) != *text {
            return Err(format!(
                "edited file has {} {keyword} {name}, or not as rendered",
                found.len()
            ));
        }
    }
    if edit_config(&edited, &edited_doc, &setup.params, &setup.blocks) != edited {
        return Err("a second edit changed the file".into());
    }
    let removed = remove_blocks(&edited, &edited_doc, &setup.params);
    let removed_doc =
        config::parse(&removed).map_err(|e| format!("file after removal does not parse: {e}"))?;
    if !ours(&removed_doc, "vrrp_instance", name).is_empty()
        || !ours(&removed_doc, "vrrp_script", script_name).is_empty()
    {
        return Err("removal left a managed block".into());
    }
    Ok(true)
}

#[test]
fn mutated_configs_never_break_the_parser_or_the_editor() {
    let iterations: u64 = std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let corpus = corpus();
    let setup = setup();
    let mut parsed = 0;
    for seed in 1..=iterations {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
        let mut input = corpus[rng.below(corpus.len())].clone();
        mutate(&mut rng, &mut input);
        let outcome = std::panic::catch_unwind(|| check_input(&input, &setup));
        match outcome {
            Ok(Ok(true)) => parsed += 1,
            Ok(Ok(false)) => {}
            Ok(Err(problem)) => panic!(
                "seed {seed}: {problem}\ninput: {:?}",
                String::from_utf8_lossy(&input)
            ),
            Err(_) => panic!(
                "seed {seed}: panicked\ninput: {:?}",
                String::from_utf8_lossy(&input)
            ),
        }
    }
    // The mutations must leave enough files parseable for the editor checks to matter.
    assert!(
        parsed * 4 > iterations,
        "only {parsed} of {iterations} inputs parsed"
    );
}

#[test]
fn unmodified_fixtures_round_trip_and_edit_cleanly() {
    let setup = setup();
    let corpus = corpus();
    let mut parsed = 0;
    for input in &corpus {
        match check_input(input, &setup) {
            Ok(true) => parsed += 1,
            Ok(false) => {}
            Err(problem) => panic!("{problem}\ninput: {}", String::from_utf8_lossy(input)),
        }
    }
    // All but the four malformed inputs of the error fixtures.
    assert_eq!(parsed, corpus.len() - 4);
}
