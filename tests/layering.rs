//! The layering rules of ARCHITECTURE.md, checked against the code, in the
//! style of rust-analyzer's `tidy` tests.
//!
//! The rules are read from ARCHITECTURE.md's "Layers" table (one row per
//! top-level module: the modules it may import), so the document and the
//! check cannot drift apart. Every path into the crate counts: `use
//! crate::x` lines, grouped `use crate::{x, y}`, inline `crate::x::f()`
//! paths, and `super::` paths that climb out of a folder. Comments do not.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// module -> modules it may import (itself always allowed).
type Rules = BTreeMap<String, BTreeSet<String>>;

/// Parses the "Layers" table of ARCHITECTURE.md: rows of
/// `` | `module` | `a`, `b` | `` (a dash for none). Rows for files
/// (`main.rs`, `lib.rs`) are not rules: the crate root may use everything.
fn parse_rules(doc: &str) -> Rules {
    let start = doc
        .find("## Layers")
        .expect("ARCHITECTURE.md has a '## Layers' section");
    let section = &doc[start..];
    let section = match section[3..].find("\n## ") {
        Some(end) => &section[..end + 3],
        None => section,
    };
    let mut rules = Rules::new();
    for line in section.lines() {
        let cells: Vec<&str> = line.split('|').map(str::trim).collect();
        if cells.len() < 4 || !cells[1].starts_with('`') {
            continue;
        }
        let module = cells[1].trim_matches('`').to_string();
        if module.ends_with(".rs") {
            continue;
        }
        let allowed = cells[2]
            .split(',')
            .map(|s| s.trim().trim_matches('`').to_string())
            .filter(|s| !s.is_empty() && s != "—" && s != "-")
            .collect();
        rules.insert(module, allowed);
    }
    assert!(!rules.is_empty(), "the Layers table has no rows");
    rules
}

/// The top-level modules a source file refers to. `folder` is the file's
/// top-level module; `is_mod_rs` whether it is that folder's `mod.rs` (so
/// one `super::` already reaches the crate root).
fn references(src: &str, is_mod_rs: bool) -> BTreeSet<String> {
    // Comments out, lines kept (a `use crate::{` group spans several).
    let code: String = src
        .lines()
        .map(|l| l.find("//").map_or(l, |i| &l[..i]))
        .collect::<Vec<_>>()
        .join("\n");
    let root_prefixes: &[&str] = if is_mod_rs {
        &["crate::", "super::"]
    } else {
        &["crate::", "super::super::"]
    };
    let mut out = BTreeSet::new();
    for prefix in root_prefixes {
        let mut rest = code.as_str();
        while let Some(i) = rest.find(prefix) {
            // `x::crate::` or `self::super::` are not paths from the root;
            // from a mod.rs, `super::super::` climbs too far to be one.
            let before = rest[..i].chars().last();
            rest = &rest[i + prefix.len()..];
            if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                continue;
            }
            if *prefix == "super::" && rest.starts_with("super::") {
                continue;
            }
            match rest.strip_prefix('{') {
                Some(group) => out.extend(group_heads(group)),
                None => {
                    out.insert(ident(rest));
                }
            }
        }
    }
    out.retain(|m| !m.is_empty() && m != "self" && m != "super");
    out
}

/// The first path segment of each item of `a, b::c, d::{e}}`, up to the
/// group's closing brace.
fn group_heads(group: &str) -> Vec<String> {
    let mut heads = Vec::new();
    let mut depth = 0;
    let mut at_item = true;
    for (i, c) in group.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => at_item = true,
            c if at_item && !c.is_whitespace() => {
                heads.push(ident(&group[i..]));
                at_item = false;
            }
            _ => {}
        }
    }
    heads
}

fn ident(s: &str) -> String {
    s.chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect()
}

/// Every arrow of the crate that crosses the rules: (file, module it uses).
fn violations(root: &Path, rules: &Rules) -> Vec<(PathBuf, String)> {
    let mut bad = Vec::new();
    for entry in walk(&root.join("src")) {
        let rel = entry.strip_prefix(root.join("src")).unwrap().to_path_buf();
        let mut parts = rel.components();
        let first = parts.next().unwrap().as_os_str().to_string_lossy();
        let in_folder = parts.next().is_some();
        let module = first.trim_end_matches(".rs").to_string();
        if !in_folder && (module == "main" || module == "lib") {
            continue;
        }
        let allowed = rules
            .get(&module)
            .unwrap_or_else(|| panic!("src/{module} has no row in ARCHITECTURE.md's Layers table"));
        let is_root_file = !in_folder || rel.ends_with("mod.rs");
        let src = std::fs::read_to_string(&entry).unwrap();
        for used in references(&src, is_root_file) {
            if used != module && rules.contains_key(&used) && !allowed.contains(&used) {
                bad.push((rel.clone(), used));
            }
        }
    }
    bad
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
    out.sort();
    out
}

/// Modules in a cycle of the module graph (arrows drawn from the code).
fn cycles(root: &Path, rules: &Rules) -> Vec<String> {
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in walk(&root.join("src")) {
        let rel = entry.strip_prefix(root.join("src")).unwrap();
        let in_folder = rel.components().count() > 1;
        let module = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if !rules.contains_key(&module) {
            continue;
        }
        let src = std::fs::read_to_string(&entry).unwrap();
        let refs = references(&src, !in_folder || rel.ends_with("mod.rs"));
        graph.entry(module.clone()).or_default().extend(
            refs.into_iter()
                .filter(|m| *m != module && rules.contains_key(m)),
        );
    }
    // A module is in a cycle if it can reach itself.
    let mut in_cycle = Vec::new();
    for start in graph.keys() {
        let mut seen = BTreeSet::new();
        let mut stack: Vec<&String> = graph[start].iter().collect();
        while let Some(m) = stack.pop() {
            if m == start {
                in_cycle.push(start.clone());
                break;
            }
            if seen.insert(m.clone()) {
                if let Some(next) = graph.get(m) {
                    stack.extend(next.iter());
                }
            }
        }
    }
    in_cycle
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rules() -> Rules {
    parse_rules(&std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap())
}

#[test]
fn imports_follow_the_layers_of_architecture_md() {
    let bad = violations(&root(), &rules());
    assert!(
        bad.is_empty(),
        "imports against ARCHITECTURE.md's Layers table:\n{}",
        bad.iter()
            .map(|(f, m)| format!("  src/{} uses crate::{m}", f.display()))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn no_two_top_level_modules_import_each_other() {
    assert_eq!(cycles(&root(), &rules()), Vec::<String>::new());
}

#[test]
fn every_top_level_module_has_a_rule() {
    let rules = rules();
    for e in std::fs::read_dir(root().join("src")).unwrap() {
        let p = e.unwrap().path();
        let name = p.file_stem().unwrap().to_string_lossy().to_string();
        if name == "main" || name == "lib" || p.extension().is_some_and(|x| x == "c") {
            continue;
        }
        assert!(rules.contains_key(&name), "src/{name} has no row");
    }
}

/// The checker itself: an arrow against the rules is found, in each form a
/// path can take, and allowed arrows are not.
#[test]
fn the_check_catches_an_arrow_against_the_rules() {
    let doc = "# x\n## Layers\n| module | may import |\n|---|---|\n\
               | `engine` | `util` |\n| `tier` | `engine`, `util` |\n\
               | `cluster` | `tier`, `engine`, `util` |\n| `util` | — |\n## Next\n";
    let rules = parse_rules(doc);
    assert_eq!(rules.len(), 4);
    assert!(rules["util"].is_empty());
    assert!(rules["cluster"].contains("tier"));

    let forms = [
        "use crate::cluster::replication::apply;",
        "    crate::cluster::replication::apply(db, m);",
        "use crate::{engine::Db, cluster::X};",
        "use crate::{\n    engine::Db,\n    cluster::{a, b},\n};",
    ];
    for src in forms {
        let refs = references(src, false);
        assert!(refs.contains("cluster"), "{src:?} gave {refs:?}");
    }
    assert!(references("use super::super::cluster::X;", false).contains("cluster"));
    assert!(references("use super::cluster::X;", true).contains("cluster"));
    assert!(
        !references("use super::memory::X;", false).contains("memory"),
        "a sibling file in the same folder is not a top-level module"
    );
    assert!(references("// crate::cluster in a comment", false).is_empty());

    // The same arrows, judged against the rules: tier may not use cluster.
    let dir = std::env::temp_dir().join(format!("jcache-layering-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("src/tier")).unwrap();
    std::fs::create_dir_all(dir.join("src/cluster")).unwrap();
    std::fs::write(dir.join("src/tier/mod.rs"), "use crate::engine::Db;\n").unwrap();
    std::fs::write(dir.join("src/cluster/mod.rs"), "use crate::tier::X;\n").unwrap();
    assert!(violations(&dir, &rules).is_empty());
    assert!(cycles(&dir, &rules).is_empty());
    std::fs::write(
        dir.join("src/tier/memory.rs"),
        "fn f() { crate::cluster::replication::apply_unlogged(db, m); }\n",
    )
    .unwrap();
    assert_eq!(
        violations(&dir, &rules),
        vec![(PathBuf::from("tier/memory.rs"), "cluster".to_string())]
    );
    assert_eq!(cycles(&dir, &rules), vec!["cluster", "tier"]);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// ARCHITECTURE.md's code map names every source file: each file of a
/// top-level folder in that folder's row, each top-level file somewhere in
/// the map.
#[test]
fn the_code_map_names_every_file() {
    let doc = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let start = doc.find("## Code map").expect("a '## Code map' section");
    let map = &doc[start..];
    let map = &map[..map[3..].find("\n## ").map_or(map.len(), |e| e + 3)];
    let mut missing = Vec::new();
    for file in walk_all(&root().join("src")) {
        let rel = file.strip_prefix(root().join("src")).unwrap();
        let name = rel.file_name().unwrap().to_string_lossy().to_string();
        let mut parts = rel.components();
        let first = parts
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy()
            .to_string();
        let scope = if parts.next().is_some() {
            let head = format!("| `src/{first}/` |");
            match map.lines().find(|l| l.starts_with(&head)) {
                Some(row) => row.to_string(),
                None => {
                    missing.push(format!("src/{first}/ (no row)"));
                    continue;
                }
            }
        } else {
            map.to_string()
        };
        if !scope.contains(&format!("{name}`")) {
            missing.push(rel.display().to_string());
        }
    }
    assert!(
        missing.is_empty(),
        "not in ARCHITECTURE.md's code map: {missing:?}"
    );
}

/// Every .rs and .c file under `dir`.
fn walk_all(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walk_all(&p));
        } else if p.extension().is_some_and(|x| x == "rs" || x == "c") {
            out.push(p);
        }
    }
    out
}
