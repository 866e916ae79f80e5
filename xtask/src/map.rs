//! The check that ARCHITECTURE.md's code map names every source file: each file under
//! `crates/*/src` and `xtask/src` must be named in its crate's section (`### crates/NAME`
//! or `### xtask`), itself or through a folder that holds it, so that the map cannot
//! fall behind the tree unnoticed. It runs with xtask's unit tests, and so in `cargo
//! xtask test` (the host tests are `cargo test --workspace`).
//!
//! A file or folder is named by any end of its path that no other file or folder of the
//! crate shares: `prepare.rs` where there is one, `sys/child.rs` where there are two
//! `child.rs`, `src/sys.rs` beside a `bench/sys.rs`, `golden/` as a folder — written as
//! a word of its own, so that `sys/child.rs` does not also name a `child.rs`. The crate
//! root (`lib.rs`) is named by the section's heading.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every file beneath `dir`, as paths relative to it with `/` between components.
fn files_below(dir: &Path) -> Vec<String> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for e in entries {
            let e = e.unwrap();
            let name = e.file_name().into_string().expect("a UTF-8 file name");
            let rel = format!("{prefix}{name}");
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &format!("{rel}/"), out);
            } else {
                out.push(rel);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, "", &mut out);
    out.sort();
    out
}

/// The ends of a file's or a folder's path: `a/b/c.rs` gives `c.rs`, `b/c.rs`,
/// `a/b/c.rs` and `src/a/b/c.rs` (which only it has: a top-level `sys.rs` beside a
/// `bench/sys.rs`); the folder `a/b/` gives `b/`, `a/b/` and `src/a/b/`.
fn ends(path: &str) -> Vec<String> {
    let (body, slash) = match path.strip_suffix('/') {
        Some(folder) => (folder, "/"),
        None => (path, ""),
    };
    let parts: Vec<&str> = body.split('/').collect();
    let mut out: Vec<String> = (0..parts.len())
        .rev()
        .map(|k| format!("{}{slash}", parts[k..].join("/")))
        .collect();
    out.push(format!("src/{path}"));
    out
}

/// The folders that hold `file`, each as `a/`, `a/b/`.
fn folders(file: &str) -> Vec<String> {
    file.match_indices('/')
        .map(|(i, _)| file[..=i].to_string())
        .collect()
}

/// Whether `text` holds `token` as a word of its own: no path character right before it,
/// and, for a file, no name character right after it.
fn names(text: &str, token: &str) -> bool {
    let path_char = |c: char| c.is_ascii_alphanumeric() || "_-./".contains(c);
    let name_char = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(token).any(|(at, _)| {
        let before = text[..at].chars().next_back();
        let after = text[at + token.len()..].chars().next();
        !before.is_some_and(path_char) && (token.ends_with('/') || !after.is_some_and(name_char))
    })
}

/// The files of `files` (one crate's) that `text` (its section) does not name.
fn unnamed<'a>(files: &'a [String], text: &str) -> Vec<&'a str> {
    let mut entries: BTreeSet<String> = files.iter().cloned().collect();
    entries.extend(files.iter().flat_map(|f| folders(f)));
    let mut holders: BTreeMap<String, usize> = BTreeMap::new();
    for e in &entries {
        for end in ends(e) {
            *holders.entry(end).or_default() += 1;
        }
    }
    let named = |entry: &str| {
        ends(entry)
            .iter()
            .any(|end| holders[end] == 1 && names(text, end))
    };
    files
        .iter()
        .filter(|f| f.as_str() != "lib.rs" && !named(f) && !folders(f).iter().any(|d| named(d)))
        .map(String::as_str)
        .collect()
}

/// The text of every `### ` section whose heading names `crate_dir` (`crates/ns-core`,
/// `xtask`), up to the next heading.
fn section(doc: &str, crate_dir: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in doc.lines() {
        if line.starts_with("#") {
            inside = line.starts_with("### ")
                && line[4..]
                    .split(|c: char| c.is_whitespace() || c == ',' || c == '(')
                    .any(|w| w == crate_dir);
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn architecture_names_every_source_file() {
    let root = crate::vm::workspace_root();
    let doc = std::fs::read_to_string(root.join("ARCHITECTURE.md")).unwrap();
    let mut crates: Vec<String> = std::fs::read_dir(root.join("crates"))
        .unwrap()
        .map(|e| format!("crates/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    crates.sort();
    crates.push("xtask".into());
    let mut missing = Vec::new();
    for c in &crates {
        let text = section(&doc, c);
        assert!(!text.is_empty(), "ARCHITECTURE.md has no `### {c}` section");
        let files = files_below(&root.join(c).join("src"));
        missing.extend(
            unnamed(&files, &text)
                .iter()
                .map(|f| format!("{c}/src/{f}")),
        );
    }
    assert!(
        missing.is_empty(),
        "ARCHITECTURE.md's code map does not name these files (name each, or a folder \
         holding it, in its crate's section): {missing:#?}"
    );
}

#[test]
fn a_file_is_named_by_an_end_of_its_path_no_other_shares() {
    let files: Vec<String> = ["lib.rs", "spawn/child.rs", "spawn/sys/child.rs", "kind.rs"]
        .map(String::from)
        .to_vec();
    // `child.rs` is two files' end: it names neither; `sys/child.rs` names one.
    assert_eq!(
        unnamed(&files, "child.rs and sys/child.rs, kind.rs."),
        ["spawn/child.rs"]
    );
    // A folder names what it holds; a longer word is not the name.
    assert_eq!(unnamed(&files, "spawn/ and kind.rsx"), ["kind.rs"]);
    assert_eq!(unnamed(&files, "sys/ kind.rs"), ["spawn/child.rs"]);
    assert!(unnamed(&files, "spawn/child.rs, spawn/sys/ and `kind.rs`").is_empty());
    // A top-level file by the path beneath `src`, when a nested one has its name.
    let files: Vec<String> = ["sys.rs", "bench/sys.rs"].map(String::from).to_vec();
    assert_eq!(unnamed(&files, "sys.rs and bench/"), ["sys.rs"]);
    assert!(unnamed(&files, "src/sys.rs and bench/").is_empty());
}

#[test]
fn sections_are_found_by_the_crate_in_their_heading() {
    let doc = "## Code map\n### crates/a (x)\none\n### crates/b (y), crates/c (z)\ntwo\n## Other\nthree\n### xtask\nfour\n";
    assert_eq!(section(doc, "crates/a"), "### crates/a (x)\none\n");
    assert!(section(doc, "crates/c").contains("two"));
    assert!(section(doc, "xtask").contains("four"));
    assert!(section(doc, "crates/d").is_empty());
}
