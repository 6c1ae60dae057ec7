//! The code's shape, read from its own imports: the CLI is a thin shell nothing below it
//! imports, and no two files import each other, directly or around a circle.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

mod common;

/// Every .rs file under src/, by its path relative to src/, with comments and the unit tests
/// (from `#[cfg(test)]` on) removed.
fn sources() -> BTreeMap<String, String> {
    fn walk(dir: &Path, root: &Path, out: &mut BTreeMap<String, String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, root, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                let code = text.split("#[cfg(test)]").next().unwrap();
                let code: String =
                    code.lines().map(|l| l.split("//").next().unwrap()).collect::<Vec<_>>().join("\n");
                out.insert(path.strip_prefix(root).unwrap().to_string_lossy().into_owned(), code);
            }
        }
    }
    let root = common::root().join("src");
    let mut out = BTreeMap::new();
    walk(&root, &root, &mut out);
    out
}

/// The module path of a file: `queue/mod.rs` → [queue], `queue/worker.rs` → [queue, worker].
fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file.trim_end_matches(".rs").split('/').map(str::to_string).collect();
    if matches!(parts.last().map(String::as_str), Some("mod" | "lib" | "main")) {
        parts.pop();
    }
    parts
}

/// The file that defines the longest prefix of a module path.
fn file_of(path: &[String], files: &BTreeMap<String, String>) -> String {
    for n in (1..=path.len()).rev() {
        let stem = path[..n].join("/");
        for candidate in [format!("{stem}.rs"), format!("{stem}/mod.rs")] {
            if files.contains_key(&candidate) {
                return candidate;
            }
        }
    }
    "lib.rs".into()
}

/// `{a, b::{c, d}}` after a prefix → the full paths.
fn expand(prefix: &[String], tree: &str) -> Vec<Vec<String>> {
    let tree = tree.trim();
    let Some(open) = tree.find('{') else {
        let mut p = prefix.to_vec();
        p.extend(
            tree.split(" as ")
                .next()
                .unwrap()
                .split("::")
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && s != "self"),
        );
        return vec![p];
    };
    let mut p = prefix.to_vec();
    p.extend(tree[..open].split("::").map(|s| s.trim().to_string()).filter(|s| !s.is_empty()));
    let inner = &tree[open + 1..tree.rfind('}').unwrap()];
    let (mut parts, mut depth, mut current) = (Vec::new(), 0, String::new());
    for ch in inner.chars() {
        match ch {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(ch);
    }
    parts.push(current);
    parts.iter().filter(|s| !s.trim().is_empty()).flat_map(|s| expand(&p, s)).collect()
}

/// File → the files it names, through `use crate::…`/`use super::…` and inline `crate::…` paths.
fn imports(files: &BTreeMap<String, String>) -> BTreeMap<String, BTreeSet<String>> {
    let mut edges = BTreeMap::new();
    for (file, code) in files {
        let module = module_of(file);
        let parent: Vec<String> = module[..module.len().saturating_sub(1)].to_vec();
        let mut targets = BTreeSet::new();
        let mut paths = Vec::new();
        for statement in code.split(';') {
            let s = statement.trim_start();
            let s = s.strip_prefix("pub ").unwrap_or(s).trim_start();
            let s = s.strip_prefix("pub(crate) ").unwrap_or(s).trim_start();
            if let Some(rest) = s.strip_prefix("use crate::") {
                paths.extend(expand(&[], rest));
            } else if let Some(rest) = s.strip_prefix("use super::") {
                paths.extend(expand(&parent, rest));
            }
        }
        for (i, _) in code.match_indices("crate::") {
            let before = code[..i].chars().last();
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_') {
                continue;
            }
            let rest: String =
                code[i + 7..].chars().take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':').collect();
            paths.push(rest.split("::").filter(|s| !s.is_empty()).map(str::to_string).collect());
        }
        for path in paths {
            let target = file_of(&path, files);
            if &target != file {
                targets.insert(target);
            }
        }
        edges.insert(file.clone(), targets);
    }
    edges
}

#[test]
fn nothing_below_the_cli_imports_it() {
    let files = sources();
    for (file, targets) in imports(&files) {
        if file.starts_with("cli/") || file == "main.rs" {
            continue;
        }
        let into_cli: Vec<&String> = targets.iter().filter(|t| t.starts_with("cli/")).collect();
        assert!(into_cli.is_empty(), "src/{file} imports {into_cli:?}");
    }
}

#[test]
fn no_file_imports_another_that_imports_it_back() {
    let files = sources();
    let edges = imports(&files);
    // A depth-first search for a path back to where it started, from every file.
    fn path_back(
        from: &str,
        to: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        seen: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        for next in &edges[from] {
            if next == to {
                return Some(vec![next.clone()]);
            }
            if seen.insert(next.clone())
                && let Some(mut rest) = path_back(next, to, edges, seen)
            {
                rest.insert(0, next.clone());
                return Some(rest);
            }
        }
        None
    }
    for file in files.keys() {
        if let Some(circle) = path_back(file, file, &edges, &mut BTreeSet::new()) {
            panic!("import circle: {file} → {}", circle.join(" → "));
        }
    }
    // The checker sees real imports: the CLI's dispatcher names its command files.
    assert!(
        edges["cli/mod.rs"].contains("cli/transcribe.rs")
            || edges["cli/transcribe.rs"].contains("cli/recognise.rs")
    );
}

#[test]
fn each_command_file_stays_short() {
    let dir: PathBuf = common::root().join("src/cli");
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let lines = std::fs::read_to_string(&path).unwrap().lines().count();
        assert!(
            lines <= 250,
            "{} has {lines} lines (at most 250: move what is not argument parsing into the library)",
            path.display()
        );
    }
}
