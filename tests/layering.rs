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

/// The longest a function outside tests may be (ARCHITECTURE.md, "Size").
const MAX_FN_LINES: usize = 150;

/// `src` with comments, string, byte-string, raw-string and char literals
/// replaced by spaces (newlines kept), so braces inside them do not count.
fn strip_literals(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        let start = i;
        if b[i..].starts_with(b"//") {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if b[i..].starts_with(b"/*") {
            let mut depth = 0;
            while i < b.len() {
                if b[i..].starts_with(b"/*") {
                    depth += 1;
                    i += 2;
                } else if b[i..].starts_with(b"*/") {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
        } else if (b[i] == b'r' || b[i..].starts_with(b"br"))
            && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_'))
            && {
                let j = i + if b[i] == b'b' { 2 } else { 1 };
                let h = b[j..].iter().take_while(|&&c| c == b'#').count();
                b.get(j + h) == Some(&b'"')
            }
        {
            let j = i + if b[i] == b'b' { 2 } else { 1 };
            let hashes = b[j..].iter().take_while(|&&c| c == b'#').count();
            let mut end = vec![b'"'];
            end.extend(std::iter::repeat_n(b'#', hashes));
            i = j + hashes + 1;
            while i < b.len() && !b[i..].starts_with(&end) {
                i += 1;
            }
            i = (i + end.len()).min(b.len());
        } else if b[i] == b'"' {
            i += 1;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i = (i + 1).min(b.len());
        } else if b[i] == b'\'' {
            // A char literal ('x', '\n', '\u{1F600}', '"'), not a lifetime.
            let close = if b.get(i + 1) == Some(&b'\\') {
                b[i + 2..]
                    .iter()
                    .position(|&c| c == b'\'')
                    .map(|p| i + 2 + p)
            } else {
                let ch = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                (b.get(i + 1 + ch) == Some(&b'\'')).then_some(i + 1 + ch)
            };
            match close {
                Some(c) => i = c + 1,
                None => {
                    i += 1;
                    continue;
                }
            }
        } else {
            i += 1;
            continue;
        }
        blank(&mut out, start, i);
    }
    String::from_utf8(out).unwrap()
}

/// The name after `fn ` at byte `at` of `s`, if `at` starts the keyword.
fn fn_name(s: &str, at: usize) -> Option<&str> {
    let b = s.as_bytes();
    if !s[at..].starts_with("fn ")
        || (at > 0 && (b[at - 1].is_ascii_alphanumeric() || b[at - 1] == b'_'))
    {
        return None;
    }
    let rest = &s[at + 3..];
    let len = rest
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
        .count();
    (len > 0).then(|| &rest[..len])
}

/// Functions of `src` longer than `max` lines (from `fn` to the closing
/// brace), as `name (lines)`; the `#[cfg(test)]` module at the end is not
/// looked at.
fn long_functions(src: &str, max: usize) -> Vec<String> {
    let clean = strip_literals(src);
    let clean = match clean.find("#[cfg(test)]\nmod tests") {
        Some(p) => &clean[..p],
        None => &clean[..],
    };
    let b = clean.as_bytes();
    let mut out = Vec::new();
    for (at, _) in clean.match_indices("fn ") {
        let Some(name) = fn_name(clean, at) else {
            continue;
        };
        // The body starts at the first `{` before any `;` (a declaration).
        let Some(open) = clean[at..].find(['{', ';']).map(|p| at + p) else {
            continue;
        };
        if b[open] == b';' {
            continue;
        }
        let mut depth = 0usize;
        let mut close = open;
        for (k, &c) in b[open..].iter().enumerate() {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = open + k;
                        break;
                    }
                }
                _ => {}
            }
        }
        let lines = clean[at..=close].lines().count();
        if lines > max {
            out.push(format!("{name} ({lines})"));
        }
    }
    out
}

#[test]
fn no_function_is_longer_than_the_limit() {
    let mut long = Vec::new();
    for p in walk(&root().join("src")) {
        let src = std::fs::read_to_string(&p).unwrap();
        for f in long_functions(&src, MAX_FN_LINES) {
            long.push(format!(
                "{}: {f}",
                p.strip_prefix(root()).unwrap().display()
            ));
        }
    }
    assert!(
        long.is_empty(),
        "functions over {MAX_FN_LINES} lines (split them: ARCHITECTURE.md, \"Size\"): {long:#?}"
    );
}

#[test]
fn the_length_check_sees_a_long_function_and_ignores_braces_in_text() {
    let body = "    x += 1;\n".repeat(10);
    let long = format!("fn long() {{\n{body}}}\n");
    assert_eq!(long_functions(&long, 10), vec!["long (12)".to_string()]);
    assert!(long_functions(&long, 12).is_empty());
    // Braces in strings, chars and comments do not end or open a body.
    let tricky = format!(
        "fn a<'x>(s: &'x str) -> char {{\n    let _ = \"}}\";\n    let _ = r#\"}}\"#;\n    \
         // }}\n    /* }} */\n{body}    '}}'\n}}\nfn b() {{}}\n"
    );
    assert_eq!(long_functions(&tricky, 10), vec!["a (17)".to_string()]);
    // A declaration without a body is not measured; test modules are not.
    let decl = format!("trait T {{ fn d(&self); }}\n#[cfg(test)]\nmod tests {{\n{long}}}\n");
    assert!(long_functions(&decl, 10).is_empty());
}
