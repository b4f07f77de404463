//! SORT and SORT_RO.
//!
//! SORT reads, besides the key it sorts, keys named by its BY / GET patterns
//! (`weight_*`, `obj_*->field`): any key of the keyspace, in any shard. Redis
//! declares only the sorted key and the STORE destination, so the command is
//! registered with [`KeySpec::AllShards`]: every shard is locked (correct and
//! simple), while COMMAND GETKEYS still reports Redis's keys.

use bytes::Bytes;

use super::flags::*;
use super::util::{is, owned, parse_f64, parse_i64, SYNTAX, WRONGTYPE};
use super::{Command, Ctx, KeySpec};
use crate::engine::{Keys, ListValue, Mutation, Value};

const G: &str = "generic";

pub static COMMANDS: &[Command] = &[
    Command::new(
        "sort",
        -2,
        WRITE | DENYOOM,
        KeySpec::AllShards(sort_keys),
        sort,
        G,
    ),
    Command::new(
        "sort_ro",
        -2,
        READONLY,
        KeySpec::AllShards(sort_ro_keys),
        sort_ro,
        G,
    ),
];

// ---- key positions (COMMAND GETKEYS) ----

/// Redis's sortGetKeys: the sorted key, and the last STORE destination.
fn sort_keys(args: &[Bytes]) -> Vec<usize> {
    if args.len() < 2 {
        return Vec::new();
    }
    let mut keys = vec![1];
    let mut store = None;
    let mut i = 2;
    while i < args.len() {
        let a = &args[i];
        if is(a, "limit") {
            i += 2;
        } else if is(a, "get") || is(a, "by") {
            i += 1;
        } else if is(a, "store") && i + 1 < args.len() {
            store = Some(i + 1);
        }
        i += 1;
    }
    keys.extend(store);
    keys
}

fn sort_ro_keys(args: &[Bytes]) -> Vec<usize> {
    if args.len() < 2 {
        Vec::new()
    } else {
        vec![1]
    }
}

// ---- SORT ----

const SCORE_ERR: &str = "ERR One or more scores can't be converted into double";

/// The bytes a C string function sees (up to the first NUL).
fn cstr(s: &[u8]) -> &[u8] {
    match s.iter().position(|&c| c == 0) {
        Some(i) => &s[..i],
        None => s,
    }
}

fn is_c_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// SORT's numeric weight: Redis runs `strtod` and refuses trailing bytes,
/// NaN and ERANGE (overflow, and underflow to zero or a subnormal). Leading
/// whitespace is skipped and an empty string is 0, as with `strtod`.
fn sort_score(s: &[u8]) -> Option<f64> {
    let s = cstr(s);
    if s.is_empty() {
        return Some(0.0);
    }
    let start = s.iter().position(|&c| !is_c_space(c))?;
    let v = parse_f64(&s[start..])?;
    if v != 0.0 && v.is_finite() && v.abs() < f64::MIN_POSITIVE {
        return None;
    }
    Some(v)
}

/// Redis's lookupKeyByPattern: `#` is the element itself; otherwise the
/// first `*` is replaced by the element, and a `->field` suffix (after the
/// star, with a non-empty field) reads that field of a hash. A missing key,
/// a key of the wrong type, or a pattern without `*` gives None.
fn lookup_by_pattern(ks: &mut Keys<'_>, pat: &[u8], subst: &[u8]) -> Option<Vec<u8>> {
    let cpat = cstr(pat);
    if cpat == b"#" {
        return Some(subst.to_vec());
    }
    let p = cpat.iter().position(|&c| c == b'*')?;
    let arrow = cpat[p + 1..]
        .windows(2)
        .position(|w| w == b"->")
        .map(|i| p + 1 + i)
        .filter(|&f| f + 2 < cpat.len());
    let (field, postfix) = match arrow {
        Some(f) => (Some(&pat[f + 2..]), &pat[p + 1..f]),
        None => (None, &pat[p + 1..]),
    };
    let mut key = Vec::with_capacity(p + subst.len() + postfix.len());
    key.extend_from_slice(&pat[..p]);
    key.extend_from_slice(subst);
    key.extend_from_slice(postfix);
    let e = ks.get(&key)?;
    match (field, &e.value) {
        (Some(f), Value::Hash(h)) => h.get(f).map(|v| v.to_vec()),
        (None, Value::Str(s)) => Some(s.to_vec()),
        _ => None,
    }
}

struct SortItem {
    obj: Vec<u8>,
    score: f64,
    /// ALPHA with BY: the weight (None when its key is missing).
    cmp: Option<Vec<u8>>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    ZSet,
}

fn sort(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    sort_generic(ctx, args, false);
}

fn sort_ro(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    sort_generic(ctx, args, true);
}

/// Redis's sortCommandGeneric, step by step (LIMIT clamping, the native-order
/// shortcuts of BY nosort for lists and sorted sets, the error for weights
/// that are not doubles reported only after loading everything).
fn sort_generic(ctx: &mut Ctx<'_, '_>, args: &[Bytes], readonly: bool) {
    let mut desc = false;
    let mut alpha = false;
    let mut limit_start: i64 = 0;
    let mut limit_count: i64 = -1;
    let mut dontsort = false;
    let mut sortby: Option<&[u8]> = None;
    let mut store: Option<&Bytes> = None;
    let mut gets: Vec<&[u8]> = Vec::new();
    let mut j = 2;
    while j < args.len() {
        let left = args.len() - j - 1;
        let a = &args[j];
        if is(a, "asc") {
            desc = false;
        } else if is(a, "desc") {
            desc = true;
        } else if is(a, "alpha") {
            alpha = true;
        } else if is(a, "limit") && left >= 2 {
            let Some(s) = ctx.int_arg(&args[j + 1]) else {
                return;
            };
            let Some(c) = ctx.int_arg(&args[j + 2]) else {
                return;
            };
            limit_start = s;
            limit_count = c;
            j += 2;
        } else if !readonly && is(a, "store") && left >= 1 {
            store = Some(&args[j + 1]);
            j += 1;
        } else if is(a, "by") && left >= 1 {
            sortby = Some(&args[j + 1]);
            // A constant pattern means "don't sort" (and it sticks, as in Redis).
            if !cstr(&args[j + 1]).contains(&b'*') {
                dontsort = true;
            }
            j += 1;
        } else if is(a, "get") && left >= 1 {
            gets.push(&args[j + 1]);
            j += 1;
        } else {
            ctx.err(SYNTAX);
            return;
        }
        j += 1;
    }

    let key = &args[1];
    let (kind, len) = match ctx.ks.get(key) {
        None => (Kind::List, 0),
        Some(e) => match &e.value {
            Value::List(l) => (Kind::List, l.len()),
            Value::Set(s) => (Kind::Set, s.len()),
            Value::ZSet(z) => (Kind::ZSet, z.len()),
            _ => {
                ctx.err(WRONGTYPE);
                return;
            }
        },
    };

    // A set has no native order: with STORE the output must be deterministic.
    if dontsort && kind == Kind::Set && store.is_some() {
        dontsort = false;
        alpha = true;
        sortby = None;
    }

    let vlen = len as i64;
    let mut start = limit_start.max(0).min(vlen);
    let count = limit_count.max(-1).min(vlen);
    let mut end = if count < 0 {
        vlen - 1
    } else {
        start + count - 1
    };
    if start >= vlen {
        start = vlen - 1;
        end = vlen - 2;
    }
    if end >= vlen {
        end = vlen - 1;
    }
    let mut vectorlen = vlen;
    if kind != Kind::Set && dontsort && (start != 0 || end != vlen - 1) {
        vectorlen = end - start + 1;
    }

    let set_intset_max = if kind == Kind::Set {
        ctx.server
            .config
            .get("set-max-intset-entries")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(512)
    } else {
        0
    };
    let mut items: Vec<SortItem> = Vec::with_capacity(vectorlen.max(0) as usize);
    let item = |obj: &[u8]| SortItem {
        obj: obj.to_vec(),
        score: 0.0,
        cmp: None,
    };
    match ctx.ks.peek(key).map(|e| &e.value) {
        Some(Value::List(l)) => {
            if dontsort {
                if end >= start {
                    let n = vectorlen.max(0) as usize;
                    let first = start as usize;
                    for k in 0..n.min(len.saturating_sub(first)) {
                        let idx = if desc { len - 1 - first - k } else { first + k };
                        items.push(item(l.get(idx).unwrap_or_default()));
                    }
                    end -= start;
                    start = 0;
                }
            } else {
                items.extend(l.iter().map(item));
            }
        }
        Some(Value::Set(s)) => {
            items.extend(s.iter().map(item));
            // Small all-integer sets are intsets in Redis: iterated in order.
            if items.len() <= set_intset_max {
                let ints: Option<Vec<i64>> = items.iter().map(|i| parse_i64(&i.obj)).collect();
                if let Some(ints) = ints {
                    let mut paired: Vec<(i64, SortItem)> = ints.into_iter().zip(items).collect();
                    paired.sort_by_key(|(v, _)| *v);
                    items = paired.into_iter().map(|(_, i)| i).collect();
                }
            }
        }
        Some(Value::ZSet(z)) => {
            if dontsort {
                let n = vectorlen.max(0) as usize;
                if n > 0 {
                    let first = start as usize;
                    if desc {
                        items.extend(
                            z.iter_rev_from(len - 1 - first)
                                .take(n)
                                .map(|(m, _)| item(m)),
                        );
                    } else {
                        items.extend(z.iter_from(first).take(n).map(|(m, _)| item(m)));
                    }
                }
                end -= start;
                start = 0;
            } else {
                items.extend(z.iter().map(|(m, _)| item(m)));
            }
        }
        _ => {}
    }

    let mut score_error = false;
    if !dontsort {
        for it in items.iter_mut() {
            let byval: Option<Vec<u8>> = match sortby {
                Some(p) => match lookup_by_pattern(ctx.ks, p, &it.obj) {
                    Some(v) => Some(v),
                    None => continue,
                },
                None => None,
            };
            if alpha {
                if sortby.is_some() {
                    it.cmp = byval;
                }
            } else {
                let w = byval.as_deref().unwrap_or(&it.obj);
                match sort_score(w) {
                    Some(s) => it.score = s,
                    None => score_error = true,
                }
            }
        }
        let by_pattern = sortby.is_some();
        let storing = store.is_some();
        items.sort_by(|a, b| {
            let c = if !alpha {
                a.score
                    .partial_cmp(&b.score)
                    .unwrap_or(std::cmp::Ordering::Equal)
                    .then_with(|| a.obj.cmp(&b.obj))
            } else if by_pattern {
                match (&a.cmp, &b.cmp) {
                    (None, None) => std::cmp::Ordering::Equal,
                    (None, Some(_)) => std::cmp::Ordering::Less,
                    (Some(_), None) => std::cmp::Ordering::Greater,
                    (Some(x), Some(y)) => {
                        if storing {
                            x.cmp(y)
                        } else {
                            cstr(x).cmp(cstr(y))
                        }
                    }
                }
            } else if storing {
                a.obj.cmp(&b.obj)
            } else {
                cstr(&a.obj).cmp(cstr(&b.obj))
            };
            if desc {
                c.reverse()
            } else {
                c
            }
        });
    }

    let span = (end - start + 1).max(0) as usize;
    let outputlen = if gets.is_empty() {
        span
    } else {
        gets.len() * span
    };
    if score_error {
        ctx.err(SCORE_ERR);
        return;
    }
    let range = if span == 0 {
        0..0
    } else {
        start as usize..(end + 1) as usize
    };
    match store {
        None => {
            ctx.out.array(outputlen);
            for it in &items[range] {
                if gets.is_empty() {
                    ctx.out.bulk(&it.obj);
                }
                for g in &gets {
                    match lookup_by_pattern(ctx.ks, g, &it.obj) {
                        Some(v) => ctx.out.bulk(&v),
                        None => ctx.out.null(),
                    }
                }
            }
        }
        Some(dest) => {
            let mut list = ListValue::new();
            for it in &items[range] {
                if gets.is_empty() {
                    list.push_back(it.obj.clone().into_boxed_slice());
                }
                for g in &gets {
                    let v = lookup_by_pattern(ctx.ks, g, &it.obj).unwrap_or_default();
                    list.push_back(v.into_boxed_slice());
                }
            }
            if outputlen > 0 {
                ctx.ks.next_event(b'l', "sortstore");
                ctx.ks.apply(Mutation::Put {
                    key: owned(dest),
                    value: Value::List(Box::new(list)),
                    expire_at: 0,
                });
            } else if ctx.ks.exists(dest) {
                ctx.ks.apply(Mutation::Del { key: owned(dest) });
            }
            ctx.out.int(outputlen as i64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sort_scores_follow_strtod() {
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b" 1.5"), Some(1.5));
        assert_eq!(sort_score(b"0x10"), Some(16.0));
        assert_eq!(sort_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(sort_score(b"1 "), None);
        assert_eq!(sort_score(b"   "), None);
        assert_eq!(sort_score(b"nan"), None);
        assert_eq!(sort_score(b"1e400"), None);
        assert_eq!(sort_score(b"abc"), None);
    }
}
