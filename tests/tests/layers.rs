//! The runtime's architecture, kept: imports flow one way (leaves <- blocks <- configuration <- phases <-
//! facades), the leaves import nothing of the crate, there are no import cycles between its top-level
//! modules, and no source file grows past 800 lines. The layers are those of the crate's "Anatomy"
//! section (daemon-runtime/src/lib.rs); a new top-level module must be given one here.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Each top-level module of daemon-runtime and its layer.
const LAYERS: &[(&str, u8)] = &[
    ("error", 0),
    ("spelling", 0),
    ("sys", 0),
    ("caps", 1),
    ("handshake", 1),
    ("hardening", 1),
    ("identity", 1),
    ("logfile", 1),
    ("pidfile", 1),
    ("readiness", 1),
    ("sink", 1),
    ("systemd", 1),
    ("threads", 1),
    ("config", 2),
    ("control", 3),
    ("launch", 3),
    ("setup", 3),
    ("signal", 3),
    ("unit", 3),
    ("builder", 4),
    ("running", 4),
    ("start", 4),
    ("__private", 4),
    ("guide", 4),
    ("lib", 4),
];

const LAYER_NAMES: [&str; 5] = ["leaf", "block", "configuration", "phase", "facade"];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../daemon-runtime/src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file belongs to: `setup/steps.rs` -> `setup`, `lib.rs` -> `lib`.
fn module_of(file: &Path) -> String {
    let relative = file.strip_prefix(src()).unwrap();
    let first = relative.components().next().unwrap().as_os_str();
    first.to_string_lossy().trim_end_matches(".rs").to_string()
}

/// The code of a file without comments (doc links to other modules are not imports).
fn code(text: &str) -> String {
    text.lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The top-level modules `text` (a file of `module`) names: `crate::x`, `crate::{x, y}`, and, from a
/// folder's `mod.rs`, `super::x`.
fn imports(text: &str, from_folder_root: bool) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let code = code(text);
    let mut prefixes = vec!["crate::"];
    if from_folder_root {
        prefixes.push("super::");
    }
    for prefix in prefixes {
        for (at, _) in code.match_indices(prefix) {
            // `$crate::` and `daemon_runtime::crate::` are not this crate's paths.
            if code[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == '$') {
                continue;
            }
            let rest = &code[at + prefix.len()..];
            if let Some(list) = rest.strip_prefix('{') {
                let mut depth = 0;
                let mut item = String::new();
                for c in list.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            found.insert(first_segment(&item));
                            item.clear();
                        }
                        _ => item.push(c),
                    }
                }
                found.insert(first_segment(&item));
            } else {
                found.insert(first_segment(rest));
            }
        }
    }
    found.remove("");
    found.remove("self");
    found
}

fn first_segment(path: &str) -> String {
    path.trim()
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Who imports whom, by top-level module.
fn graph() -> BTreeMap<String, BTreeSet<String>> {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let module = module_of(&file);
        let folder_root = file.file_name().is_some_and(|n| n == "mod.rs");
        let text = std::fs::read_to_string(&file).unwrap();
        let edges = graph.entry(module.clone()).or_default();
        for import in imports(&text, folder_root) {
            if import != module {
                edges.insert(import);
            }
        }
    }
    graph
}

fn layer(module: &str) -> u8 {
    LAYERS.iter().find(|(name, _)| *name == module).map_or_else(
        || panic!("daemon-runtime/src/{module}: give the new module a layer in LAYERS"),
        |(_, layer)| *layer,
    )
}

#[test]
fn nothing_imports_upward_and_leaves_import_nothing() {
    let graph = graph();
    let mut wrong = Vec::new();
    for (module, imports) in &graph {
        let own = layer(module);
        for import in imports {
            // A name that is not a module of ours (`crate::Error` re-exported at the root) is the
            // root's: a facade.
            let theirs = if LAYERS.iter().any(|(name, _)| name == import) {
                layer(import)
            } else {
                4
            };
            if theirs > own || (own == 0 && import != module) {
                wrong.push(format!(
                    "{module} ({}) imports {import} ({})",
                    LAYER_NAMES[own as usize], LAYER_NAMES[theirs as usize]
                ));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "imports against the layers:\n{}",
        wrong.join("\n")
    );
}

// Depth-first search; a module met again on the current path closes a cycle.
fn visit(
    module: &str,
    graph: &BTreeMap<String, BTreeSet<String>>,
    path: &mut Vec<String>,
    done: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if let Some(at) = path.iter().position(|m| m == module) {
        let mut cycle = path[at..].to_vec();
        cycle.push(module.to_string());
        return Some(cycle);
    }
    if !done.insert(module.to_string()) {
        return None;
    }
    path.push(module.to_string());
    for next in graph.get(module).into_iter().flatten() {
        if let Some(cycle) = visit(next, graph, path, done) {
            return Some(cycle);
        }
    }
    path.pop();
    None
}

#[test]
fn the_modules_import_each_other_without_cycles() {
    let graph = graph();
    let mut done = BTreeSet::new();
    for module in graph.keys() {
        if let Some(cycle) = visit(module, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_checker_sees_imports() {
    let text = "use crate::error::Error;\nuse crate::{caps, sys::fd};\n/// [`x`](crate::builder)\nfn f() { crate::launch::go(); $crate::no::no(); }\n";
    let found = imports(text, false);
    let want: BTreeSet<String> = ["error", "caps", "sys", "launch"]
        .into_iter()
        .map(String::from)
        .collect();
    assert_eq!(found, want);
    assert!(imports("use super::readiness;", true).contains("readiness"));
    assert!(imports("use super::readiness;", false).is_empty());
}

#[test]
fn no_file_is_over_800_lines() {
    let mut files = Vec::new();
    rust_files(&src(), &mut files);
    rust_files(&src().join("../../daemon-macro/src"), &mut files);
    let long: Vec<String> = files
        .iter()
        .filter_map(|file| {
            let lines = std::fs::read_to_string(file).unwrap().lines().count();
            (lines > 800).then(|| format!("{} ({lines} lines)", file.display()))
        })
        .collect();
    assert!(long.is_empty(), "split these files: {long:?}");
}
