//! The first line of a script (`#!lua flags=no-writes,...`) and of a
//! library (`#!lua name=mylib`), parsed as Redis 7.0 parses them
//! (`evalExtractShebangFlags`, `functionExtractLibMetaData`), with their
//! error texts.

use super::ScriptFlags;

/// Flags by their shebang names (Redis's `scripts_flags_def`).
const FLAG_NAMES: [&str; 5] = [
    "no-writes",
    "allow-oom",
    "allow-stale",
    "no-cluster",
    "allow-cross-slot-keys",
];

/// Sets the flag called `name` (exact, lower-case); false if unknown.
pub(crate) fn set_flag(flags: &mut ScriptFlags, name: &str) -> bool {
    match name {
        "no-writes" => flags.no_writes = true,
        "allow-oom" => flags.allow_oom = true,
        "allow-stale" => flags.allow_stale = true,
        "no-cluster" => flags.no_cluster = true,
        "allow-cross-slot-keys" => flags.allow_cross_slot_keys = true,
        _ => return false,
    }
    debug_assert!(FLAG_NAMES.contains(&name));
    true
}

/// An EVAL body's flags and the length of its shebang line (without its
/// newline, which stays in the compiled code so line numbers are kept).
pub(crate) fn eval_flags(body: &[u8]) -> Result<(ScriptFlags, usize), String> {
    let mut flags = ScriptFlags::default();
    if !body.starts_with(b"#!") {
        return Ok((flags, 0));
    }
    let Some(end) = body.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid script shebang".into());
    };
    let parts = split_args(&body[..end])
        .filter(|p| !p.is_empty())
        .ok_or_else(|| "ERR Invalid engine in script shebang".to_string())?;
    if parts[0] != b"#!lua" {
        return Err(format!(
            "ERR Unexpected engine in script shebang: {}",
            String::from_utf8_lossy(&parts[0])
        ));
    }
    flags.shebang = true;
    for part in &parts[1..] {
        let Some(list) = part.strip_prefix(b"flags=") else {
            return Err(format!(
                "ERR Unknown lua shebang option: {}",
                String::from_utf8_lossy(part)
            ));
        };
        // sdssplitlen of an empty string yields no element: `flags=` is no flag.
        if list.is_empty() {
            continue;
        }
        for name in list.split(|&b| b == b',') {
            let name = String::from_utf8_lossy(name);
            if !set_flag(&mut flags, &name) {
                return Err(format!("ERR Unexpected flag in script shebang: {name}"));
            }
        }
    }
    Ok((flags, end))
}

/// A library's metadata: its engine (as written, `#!<engine>`), its name,
/// and where its code starts (at the shebang's newline).
pub(crate) struct LibraryMeta {
    pub engine: String,
    pub name: String,
    pub code_start: usize,
}

pub(crate) fn library_meta(code: &[u8]) -> Result<LibraryMeta, String> {
    if !code.starts_with(b"#!") {
        return Err("ERR Missing library metadata".into());
    }
    let Some(end) = code.iter().position(|&b| b == b'\n') else {
        return Err("ERR Invalid library metadata".into());
    };
    let parts = split_args(&code[..end])
        .filter(|p| !p.is_empty())
        .ok_or_else(|| "ERR Invalid library metadata".to_string())?;
    let engine = String::from_utf8_lossy(parts[0].get(2..).unwrap_or_default()).into_owned();
    let mut name = None;
    for part in &parts[1..] {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case(b"name=") {
            if name.is_some() {
                return Err(
                    "ERR Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(String::from_utf8_lossy(&part[5..]).into_owned());
            continue;
        }
        return Err(format!(
            "ERR Invalid metadata value given: {}",
            String::from_utf8_lossy(part)
        ));
    }
    let Some(name) = name else {
        return Err("ERR Library name was not given".into());
    };
    Ok(LibraryMeta {
        engine,
        name,
        code_start: end,
    })
}

/// Redis's name rule for libraries and functions: `[A-Za-z0-9_]+`.
pub(crate) fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `sdssplitargs`: words separated by spaces, with "double" (escapes,
/// `\xHH`) and 'single' quotes. None on unbalanced quotes or a closing
/// quote not followed by a space.
pub(crate) fn split_args(line: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    let mut i = 0;
    let n = line.len();
    loop {
        while i < n && line[i].is_ascii_whitespace() {
            i += 1;
        }
        if i >= n {
            return Some(out);
        }
        let mut cur = Vec::new();
        let (mut inq, mut insq) = (false, false);
        loop {
            let c = line.get(i).copied();
            if inq {
                match c {
                    None => return None,
                    Some(b'\\')
                        if line.get(i + 1) == Some(&b'x')
                            && line.get(i + 2).is_some_and(u8::is_ascii_hexdigit)
                            && line.get(i + 3).is_some_and(u8::is_ascii_hexdigit) =>
                    {
                        let hex = std::str::from_utf8(&line[i + 2..i + 4]).ok()?;
                        cur.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 3;
                    }
                    Some(b'\\') if i + 1 < n => {
                        i += 1;
                        cur.push(match line[i] {
                            b'n' => b'\n',
                            b'r' => b'\r',
                            b't' => b'\t',
                            b'b' => 8,
                            b'a' => 7,
                            other => other,
                        });
                    }
                    Some(b'"') => {
                        if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(b) => cur.push(b),
                }
            } else if insq {
                match c {
                    None => return None,
                    Some(b'\\') if line.get(i + 1) == Some(&b'\'') => {
                        i += 1;
                        cur.push(b'\'');
                    }
                    Some(b'\'') => {
                        if line.get(i + 1).is_some_and(|b| !b.is_ascii_whitespace()) {
                            return None;
                        }
                        i += 1;
                        break;
                    }
                    Some(b) => cur.push(b),
                }
            } else {
                match c {
                    None | Some(b' ' | b'\n' | b'\r' | b'\t' | 0) => break,
                    Some(b'"') => inq = true,
                    Some(b'\'') => insq = true,
                    Some(b) => cur.push(b),
                }
            }
            i += 1;
        }
        out.push(cur);
    }
}
