//! The fuzz targets' kept corpus and crash inputs (`fuzz/corpus/`, `fuzz/artifacts/`), replayed
//! through the same entry points on stable: every input ends in a result or a SCIM error, never
//! a panic or a stack overflow.

use std::path::Path;

#[path = "../../fuzz/entries.rs"]
mod entries;

type Entry = fn(&[u8]);

const TARGETS: [(&str, Entry); 5] = [
    ("filter", entries::filter),
    ("patch_path", entries::patch_path),
    ("patch_apply", entries::patch_apply),
    ("canonicalize", entries::canonicalize),
    ("bulk", entries::bulk),
];

fn inputs(dir: &Path) -> Vec<Vec<u8>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter(|e| e.path().is_file())
        .filter_map(|e| std::fs::read(e.path()).ok())
        .collect()
}

#[test]
fn every_kept_fuzz_input_replays_cleanly() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    for (name, entry) in TARGETS {
        let corpus = inputs(&root.join("corpus").join(name));
        assert!(!corpus.is_empty(), "fuzz/corpus/{name} holds no inputs");
        let crashes = inputs(&root.join("artifacts").join(name));
        for input in corpus.iter().chain(&crashes) {
            entry(input);
        }
    }
}
