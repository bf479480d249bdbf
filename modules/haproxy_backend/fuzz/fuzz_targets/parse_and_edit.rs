//! Any bytes: parsing never panics; a parsed file renders back byte for byte; editing
//! never panics, its output parses, and a second edit changes nothing.
#![no_main]

use haproxy_backend::config::{parse_bytes, Document};
use haproxy_backend::edit::{apply, SectionId, WantedSection};
use libfuzzer_sys::fuzz_target;

fn wanted() -> (Vec<SectionId>, Vec<WantedSection>) {
    let name = "kubernetes-apiserver";
    let owned = vec![
        SectionId::new("frontend", name),
        SectionId::new("backend", name),
        SectionId::new("listen", name),
        SectionId::new("listen", "kubernetes-apiserver-stats"),
    ];
    let wanted = vec![
        WantedSection {
            id: owned[0].clone(),
            text: format!("frontend {name}\n    bind *:8443\n    default_backend {name}\n"),
        },
        WantedSection {
            id: owned[1].clone(),
            text: format!("backend {name}\n    server cp1 10.0.0.11:6443\n"),
        },
    ];
    (owned, wanted)
}

fuzz_target!(|data: &[u8]| {
    let Ok(doc) = parse_bytes(data) else { return };
    assert_eq!(doc.render(), doc.text);
    let (owned, wanted) = wanted();
    for sections in [&wanted[..], &[][..]] {
        if let Ok(out) = apply(doc.text, &owned, sections) {
            let parsed = Document::parse(&out).expect("edit output parses");
            assert_eq!(parsed.render(), out);
            assert_eq!(apply(&out, &owned, sections).expect("second edit"), out);
        }
    }
});
