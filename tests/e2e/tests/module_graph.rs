//! No crate's modules import each other in a circle.
//!
//! Each source file of `crates/*/src` is a node; a path to an item (`crate::a::b::Item`,
//! `super::x`, `self::y`, in `use` statements and in code) is an edge from the file it is
//! written in to the file that defines the module it names. A path through a re-export of the
//! crate root (`crate::Item`) is an edge to the root, which itself re-exports every module, so
//! inside a crate items are named by their module. Test code (from a top-level `#[cfg(test)]`
//! on) and comments are left out.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// A crate's files by module path (`[]` for the root, `["host", "kv"]` for `src/host/kv.rs`).
type Files = BTreeMap<Vec<String>, PathBuf>;

fn crate_files(src: &Path) -> Files {
    let mut files = Files::new();
    let mut folders = vec![src.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(src).unwrap().with_extension("");
            let mut module: Vec<String> =
                relative.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect();
            if matches!(module.last().map(String::as_str), Some("mod" | "lib" | "main")) {
                module.pop();
            }
            files.insert(module, path);
        }
    }
    files
}

/// The source without test code and comment lines.
fn code(text: &str) -> String {
    text.lines()
        .take_while(|line| !line.starts_with("#[cfg(test)]"))
        .filter(|line| !line.trim_start().starts_with("//"))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// Every path starting with `crate`, `super` or `self` in `code`, with `{...}` groups of `use`
/// statements expanded: each as its segments.
fn paths(code: &str) -> Vec<Vec<String>> {
    let bytes = code.as_bytes();
    let mut found = Vec::new();
    for start in ["crate::", "super::", "self::"] {
        for (at, _) in code.match_indices(start) {
            let before = at.checked_sub(1).map(|i| bytes[i]);
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':') {
                continue;
            }
            let mut end = at;
            let mut depth = 0;
            while end < bytes.len() {
                match bytes[end] {
                    b'{' => depth += 1,
                    b'}' if depth == 0 => break,
                    b'}' => depth -= 1,
                    b if b.is_ascii_alphanumeric() || b == b'_' || b == b':' => {}
                    b',' | b' ' | b'\n' if depth > 0 => {}
                    _ => break,
                }
                end += 1;
            }
            expand("", &code[at..end], &mut found);
        }
    }
    found
}

/// `prefix::tree`, where `tree` is a use tree, as its paths.
fn expand(prefix: &str, tree: &str, found: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let joined = format!("{prefix}{tree}");
        found.push(joined.split("::").filter(|s| !s.is_empty()).map(String::from).collect());
        return;
    };
    let head = &tree[..open];
    let inner = tree[open + 1..].trim_end().strip_suffix('}').unwrap_or(&tree[open + 1..]);
    let mut depth = 0;
    let mut from = 0;
    for (i, c) in inner.char_indices().chain([(inner.len(), ',')]) {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                let part = inner[from..i].trim();
                if !part.is_empty() {
                    expand(&format!("{prefix}{head}"), part, found);
                }
                from = i + 1;
            }
            _ => {}
        }
    }
}

/// The file defining the module that `path`, written in module `from`, names.
fn target<'a>(files: &'a Files, from: &[String], path: &[String]) -> Option<&'a PathBuf> {
    let mut segments = path.iter();
    let mut module: Vec<String> = match segments.next()?.as_str() {
        "crate" => Vec::new(),
        "self" => from.to_vec(),
        "super" => from[..from.len().checked_sub(1)?].to_vec(),
        _ => return None,
    };
    for segment in segments {
        match segment.as_str() {
            "super" => {
                module.pop();
            }
            "self" => {}
            name => {
                module.push(name.to_string());
                if !files.contains_key(&module) {
                    module.pop();
                    break;
                }
            }
        }
    }
    files.get(&module)
}

/// A circle among the files' imports, if any, as the files along it.
fn find_circle(edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>) -> Option<Vec<PathBuf>> {
    fn visit(
        node: &PathBuf,
        edges: &BTreeMap<PathBuf, BTreeSet<PathBuf>>,
        stack: &mut Vec<PathBuf>,
        done: &mut BTreeSet<PathBuf>,
    ) -> Option<Vec<PathBuf>> {
        if let Some(at) = stack.iter().position(|n| n == node) {
            let mut circle = stack[at..].to_vec();
            circle.push(node.clone());
            return Some(circle);
        }
        if done.contains(node) {
            return None;
        }
        stack.push(node.clone());
        for next in edges.get(node).into_iter().flatten() {
            if let Some(circle) = visit(next, edges, stack, done) {
                return Some(circle);
            }
        }
        stack.pop();
        done.insert(node.clone());
        None
    }
    let mut done = BTreeSet::new();
    edges.keys().find_map(|node| visit(node, edges, &mut Vec::new(), &mut done))
}

fn imports(files: &Files) -> BTreeMap<PathBuf, BTreeSet<PathBuf>> {
    let mut edges = BTreeMap::new();
    for (module, file) in files {
        let text = std::fs::read_to_string(file).unwrap();
        let targets: BTreeSet<PathBuf> = paths(&code(&text))
            .iter()
            .filter_map(|path| target(files, module, path))
            .filter(|to| *to != file)
            .cloned()
            .collect();
        edges.insert(file.clone(), targets);
    }
    edges
}

#[test]
fn no_crate_has_a_circle_of_imports() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../crates");
    let mut checked = 0;
    let mut circles = Vec::new();
    for entry in std::fs::read_dir(&crates).unwrap() {
        let src = entry.unwrap().path().join("src");
        if !src.is_dir() {
            continue;
        }
        let edges = imports(&crate_files(&src));
        if let Some(circle) = find_circle(&edges) {
            let shown: Vec<String> =
                circle.iter().map(|f| f.strip_prefix(&src).unwrap().display().to_string()).collect();
            circles.push(format!("{}: {}", src.display(), shown.join(" -> ")));
        }
        checked += 1;
    }
    assert!(checked >= 5, "only {checked} crates found under {}", crates.display());
    assert!(circles.is_empty(), "circles of imports:\n{}", circles.join("\n"));
}

#[test]
fn the_check_finds_paths_in_use_trees_and_code_and_a_circle_between_them() {
    let code = "use crate::a::{b::{C, D}, e};\nuse super::x;\nfn f() { crate::y::run(self::z::Z); }\n";
    let found = paths(code);
    let joined: Vec<String> = found.iter().map(|p| p.join("::")).collect();
    assert_eq!(
        joined,
        ["crate::a::b::C", "crate::a::b::D", "crate::a::e", "crate::y::run", "super::x", "self::z::Z"]
    );

    let mut files = Files::new();
    for module in [vec![], vec!["a"], vec!["a", "b"], vec!["y"]] {
        let name = if module.is_empty() { "lib".to_string() } else { module.join("/") };
        files.insert(module.into_iter().map(String::from).collect(), PathBuf::from(format!("{name}.rs")));
    }
    let from = ["a".to_string(), "b".to_string()];
    let to =
        |path: &str| target(&files, &from, &path.split("::").map(String::from).collect::<Vec<_>>()).cloned();
    assert_eq!(to("crate::a::b::C"), Some(PathBuf::from("a/b.rs")));
    assert_eq!(to("crate::a::e"), Some(PathBuf::from("a.rs")));
    assert_eq!(to("super::Thing"), Some(PathBuf::from("a.rs")));
    assert_eq!(to("crate::Thing"), Some(PathBuf::from("lib.rs")));

    let edge = |from: &str, to: &[&str]| (PathBuf::from(from), to.iter().map(PathBuf::from).collect());
    let acyclic = BTreeMap::from([edge("a", &["b"]), edge("b", &["c"]), edge("c", &[])]);
    assert_eq!(find_circle(&acyclic), None);
    let circular = BTreeMap::from([edge("a", &["b"]), edge("b", &["c"]), edge("c", &["a"])]);
    assert_eq!(find_circle(&circular).map(|c| c.len()), Some(4));
}
