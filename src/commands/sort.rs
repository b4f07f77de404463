//! SORT and SORT_RO: the options are parsed into [`SortOptions`] first, then
//! the elements are loaded, weighed, sorted and replied (or stored).
//!
//! SORT reads, besides the key it sorts, keys named by its BY / GET patterns
//! (`weight_*`, `obj_*->field`): any key of the keyspace, in any shard. Redis
//! declares only the sorted key and the STORE destination, so the command is
//! registered with [`KeySpec::AllShards`]: every shard is locked (correct and
//! simple), while COMMAND GETKEYS still reports Redis's keys.

use std::cmp::Ordering;

use bytes::Bytes;

use super::flags::*;
use super::util::{is, owned, parse_f64, parse_i64, NOT_INT, SYNTAX, WRONGTYPE};
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
    )
    .first_key_fixed(),
    Command::new(
        "sort_ro",
        -2,
        READONLY,
        KeySpec::AllShards(sort_ro_keys),
        sort_ro,
        G,
    )
    .first_key_fixed(),
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

// ---- weights and patterns ----

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

// ---- options ----

/// SORT's arguments after the key, parsed before any key is read.
#[derive(Debug, Default, PartialEq)]
struct SortOptions<'a> {
    desc: bool,
    alpha: bool,
    /// LIMIT offset count (0 and -1 without LIMIT: everything).
    limit_start: i64,
    limit_count: i64,
    /// The BY pattern.
    sortby: Option<&'a [u8]>,
    /// A BY pattern without `*`: keep the native order (and it sticks, as in
    /// Redis, even if a later BY has a `*`).
    dontsort: bool,
    store: Option<&'a Bytes>,
    gets: Vec<&'a [u8]>,
}

impl<'a> SortOptions<'a> {
    /// Redis's option loop over the arguments after the key: the first error
    /// in argument order wins; STORE is a syntax error for SORT_RO.
    fn parse(opts: &'a [Bytes], readonly: bool) -> Result<Self, &'static str> {
        let mut o = SortOptions {
            limit_count: -1,
            ..SortOptions::default()
        };
        let mut j = 0;
        while j < opts.len() {
            let left = opts.len() - j - 1;
            let a = &opts[j];
            if is(a, "asc") {
                o.desc = false;
            } else if is(a, "desc") {
                o.desc = true;
            } else if is(a, "alpha") {
                o.alpha = true;
            } else if is(a, "limit") && left >= 2 {
                o.limit_start = parse_i64(&opts[j + 1]).ok_or(NOT_INT)?;
                o.limit_count = parse_i64(&opts[j + 2]).ok_or(NOT_INT)?;
                j += 2;
            } else if !readonly && is(a, "store") && left >= 1 {
                o.store = Some(&opts[j + 1]);
                j += 1;
            } else if is(a, "by") && left >= 1 {
                o.sortby = Some(&opts[j + 1]);
                if !cstr(&opts[j + 1]).contains(&b'*') {
                    o.dontsort = true;
                }
                j += 1;
            } else if is(a, "get") && left >= 1 {
                o.gets.push(&opts[j + 1]);
                j += 1;
            } else {
                return Err(SYNTAX);
            }
            j += 1;
        }
        Ok(o)
    }
}

// ---- execution ----

struct SortItem {
    obj: Vec<u8>,
    score: f64,
    /// ALPHA with BY: the weight (None when its key is missing).
    cmp: Option<Vec<u8>>,
}

impl SortItem {
    fn new(obj: &[u8]) -> Self {
        SortItem {
            obj: obj.to_vec(),
            score: 0.0,
            cmp: None,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    List,
    Set,
    ZSet,
}

/// The part of the sorted elements that is output (`start..=end`, empty
/// when `end < start`), and how many elements are loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Window {
    start: i64,
    end: i64,
    vectorlen: i64,
}

impl Window {
    /// Redis's LIMIT clamping. `native_slice`: BY nosort on a list or a
    /// sorted set, where only the window itself is loaded.
    fn new(limit_start: i64, limit_count: i64, len: usize, native_slice: bool) -> Window {
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
        if native_slice && (start != 0 || end != vlen - 1) {
            vectorlen = end - start + 1;
        }
        Window {
            start,
            end,
            vectorlen,
        }
    }

    /// How many elements are output.
    fn span(&self) -> usize {
        (self.end - self.start + 1).max(0) as usize
    }

    /// The output's indices into the loaded elements.
    fn range(&self) -> std::ops::Range<usize> {
        if self.span() == 0 {
            0..0
        } else {
            self.start as usize..(self.end + 1) as usize
        }
    }

    /// The loaded elements are the window itself: it now starts at 0.
    fn rebase(&mut self) {
        self.end -= self.start;
        self.start = 0;
    }
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
    let mut opts = match SortOptions::parse(&args[2..], readonly) {
        Ok(o) => o,
        Err(e) => return ctx.err(e),
    };
    let key = &args[1];
    let (kind, len) = match ctx.ks.get(key) {
        None => (Kind::List, 0),
        Some(e) => match &e.value {
            Value::List(l) => (Kind::List, l.len()),
            Value::Set(s) => (Kind::Set, s.len()),
            Value::ZSet(z) => (Kind::ZSet, z.len()),
            _ => return ctx.err(WRONGTYPE),
        },
    };

    // A set has no native order: with STORE, or from a script (whose
    // effects must not depend on it), the output must be deterministic.
    if opts.dontsort && kind == Kind::Set && (opts.store.is_some() || ctx.client.in_script) {
        opts.dontsort = false;
        opts.alpha = true;
        opts.sortby = None;
    }
    let native_slice = kind != Kind::Set && opts.dontsort;
    let mut window = Window::new(opts.limit_start, opts.limit_count, len, native_slice);

    let set_intset_max = if kind == Kind::Set {
        ctx.server
            .config
            .get("set-max-intset-entries")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(512)
    } else {
        0
    };
    let mut items = load_items(ctx.ks, key, &opts, &mut window, set_intset_max);

    let mut score_error = false;
    if !opts.dontsort {
        score_error = load_weights(ctx.ks, &mut items, &opts);
        sort_items(&mut items, &opts);
    }

    let span = window.span();
    let outputlen = if opts.gets.is_empty() {
        span
    } else {
        opts.gets.len() * span
    };
    if score_error {
        return ctx.err(SCORE_ERR);
    }
    let selected = &items[window.range()];
    match opts.store {
        None => reply_items(ctx, selected, &opts.gets, outputlen),
        Some(dest) => store_items(ctx, dest, selected, &opts.gets, outputlen),
    }
}

/// The elements to sort: all of them, or with BY nosort on a list or a
/// sorted set only the window, in native (or reversed, DESC) order.
fn load_items(
    ks: &mut Keys<'_>,
    key: &[u8],
    opts: &SortOptions<'_>,
    window: &mut Window,
    set_intset_max: usize,
) -> Vec<SortItem> {
    let mut items: Vec<SortItem> = Vec::with_capacity(window.vectorlen.max(0) as usize);
    match ks.peek(key).map(|e| &e.value) {
        Some(Value::List(l)) => {
            if !opts.dontsort {
                items.extend(l.iter().map(SortItem::new));
            } else if window.end >= window.start {
                let len = l.len();
                let n = window.vectorlen.max(0) as usize;
                let first = window.start as usize;
                for k in 0..n.min(len.saturating_sub(first)) {
                    let idx = if opts.desc {
                        len - 1 - first - k
                    } else {
                        first + k
                    };
                    items.push(SortItem::new(l.get(idx).unwrap_or_default()));
                }
                window.rebase();
            }
        }
        Some(Value::Set(s)) => {
            items.extend(s.iter().map(SortItem::new));
            items = intset_order(items, set_intset_max);
        }
        Some(Value::ZSet(z)) => {
            if !opts.dontsort {
                items.extend(z.iter().map(|(m, _)| SortItem::new(m)));
            } else {
                let n = window.vectorlen.max(0) as usize;
                if n > 0 {
                    let first = window.start as usize;
                    if opts.desc {
                        let from = z.len() - 1 - first;
                        items.extend(z.iter_rev_from(from).take(n).map(|(m, _)| SortItem::new(m)));
                    } else {
                        items.extend(z.iter_from(first).take(n).map(|(m, _)| SortItem::new(m)));
                    }
                }
                window.rebase();
            }
        }
        _ => {}
    }
    items
}

/// Small all-integer sets are intsets in Redis: iterated in numeric order.
fn intset_order(items: Vec<SortItem>, set_intset_max: usize) -> Vec<SortItem> {
    if items.len() > set_intset_max {
        return items;
    }
    let ints: Option<Vec<i64>> = items.iter().map(|i| parse_i64(&i.obj)).collect();
    let Some(ints) = ints else {
        return items;
    };
    let mut paired: Vec<(i64, SortItem)> = ints.into_iter().zip(items).collect();
    paired.sort_by_key(|(v, _)| *v);
    paired.into_iter().map(|(_, i)| i).collect()
}

/// Gives every item its weight: the BY key's value (an item whose BY key is
/// missing keeps the defaults), else the element itself; as a double unless
/// ALPHA. True when some weight is not a double, which Redis reports only
/// after loading everything.
fn load_weights(ks: &mut Keys<'_>, items: &mut [SortItem], opts: &SortOptions<'_>) -> bool {
    let mut score_error = false;
    for it in items.iter_mut() {
        let byval: Option<Vec<u8>> = match opts.sortby {
            Some(p) => match lookup_by_pattern(ks, p, &it.obj) {
                Some(v) => Some(v),
                None => continue,
            },
            None => None,
        };
        if opts.alpha {
            if opts.sortby.is_some() {
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
    score_error
}

/// Redis's sortCompare: numeric weights (ties by element), or byte order of
/// the BY values or elements under ALPHA (as C strings unless storing),
/// reversed for DESC.
fn sort_items(items: &mut [SortItem], opts: &SortOptions<'_>) {
    let by_pattern = opts.sortby.is_some();
    let storing = opts.store.is_some();
    let alpha_cmp = |x: &[u8], y: &[u8]| {
        if storing {
            x.cmp(y)
        } else {
            cstr(x).cmp(cstr(y))
        }
    };
    items.sort_by(|a, b| {
        let c = if !opts.alpha {
            a.score
                .partial_cmp(&b.score)
                .unwrap_or(Ordering::Equal)
                .then_with(|| a.obj.cmp(&b.obj))
        } else if by_pattern {
            match (&a.cmp, &b.cmp) {
                (None, None) => Ordering::Equal,
                (None, Some(_)) => Ordering::Less,
                (Some(_), None) => Ordering::Greater,
                (Some(x), Some(y)) => alpha_cmp(x, y),
            }
        } else {
            alpha_cmp(&a.obj, &b.obj)
        };
        if opts.desc {
            c.reverse()
        } else {
            c
        }
    });
}

/// Replies the selected elements, or for each one its GET values (nil for
/// a missing key).
fn reply_items(ctx: &mut Ctx<'_, '_>, selected: &[SortItem], gets: &[&[u8]], outputlen: usize) {
    ctx.out.array(outputlen);
    for it in selected {
        if gets.is_empty() {
            ctx.out.bulk(&it.obj);
        }
        for g in gets {
            match lookup_by_pattern(ctx.ks, g, &it.obj) {
                Some(v) => ctx.out.bulk(&v),
                None => ctx.out.null(),
            }
        }
    }
}

/// STORE: the output as a list at `dest` (an empty output deletes `dest`;
/// a missing GET value is stored as an empty string); replies its length.
fn store_items(
    ctx: &mut Ctx<'_, '_>,
    dest: &Bytes,
    selected: &[SortItem],
    gets: &[&[u8]],
    outputlen: usize,
) {
    let mut list = ListValue::new();
    for it in selected {
        if gets.is_empty() {
            list.push_back(it.obj.clone().into_boxed_slice());
        }
        for g in gets {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn sort_scores_follow_strtod() {
        assert_eq!(sort_score(b""), Some(0.0));
        assert_eq!(sort_score(b" 1.5"), Some(1.5));
        assert_eq!(sort_score(b"0x10"), Some(16.0));
        assert_eq!(sort_score(b"-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(sort_score(b"2\0junk"), Some(2.0));
        assert_eq!(sort_score(b"1 "), None);
        assert_eq!(sort_score(b"   "), None);
        assert_eq!(sort_score(b"nan"), None);
        assert_eq!(sort_score(b"1e400"), None);
        assert_eq!(sort_score(b"1e-310"), None);
        assert_eq!(sort_score(b"abc"), None);
    }

    #[test]
    fn options_parse() {
        let a = args(&[
            "limit", "1", "2", "BY", "w_*", "get", "#", "GET", "o_*->f", "desc", "alpha", "store",
            "dst",
        ]);
        let o = SortOptions::parse(&a, false).unwrap();
        assert_eq!(
            o,
            SortOptions {
                desc: true,
                alpha: true,
                limit_start: 1,
                limit_count: 2,
                sortby: Some(&b"w_*"[..]),
                dontsort: false,
                store: Some(&a[12]),
                gets: vec![&b"#"[..], &b"o_*->f"[..]],
            }
        );
        let none = SortOptions::parse(&[], false).unwrap();
        assert_eq!((none.limit_start, none.limit_count), (0, -1));
    }

    #[test]
    fn a_constant_by_pattern_means_nosort_and_sticks() {
        let a = args(&["by", "nosort", "by", "w_*"]);
        let o = SortOptions::parse(&a, false).unwrap();
        assert!(o.dontsort);
        assert_eq!(o.sortby, Some(&b"w_*"[..]));
    }

    #[test]
    fn option_errors_match_redis_in_argument_order() {
        let parse = |w: &[&str], ro| SortOptions::parse(&args(w), ro).err();
        assert_eq!(parse(&["limit", "x", "1"], false), Some(NOT_INT));
        assert_eq!(parse(&["limit", "1", "x"], false), Some(NOT_INT));
        assert_eq!(parse(&["limit", "1"], false), Some(SYNTAX));
        assert_eq!(parse(&["by"], false), Some(SYNTAX));
        assert_eq!(parse(&["get"], false), Some(SYNTAX));
        assert_eq!(parse(&["store"], false), Some(SYNTAX));
        assert_eq!(parse(&["store", "d"], true), Some(SYNTAX));
        assert_eq!(parse(&["store", "d"], false), None);
        assert_eq!(parse(&["bogus", "limit", "x", "1"], false), Some(SYNTAX));
        assert_eq!(parse(&["limit", "x", "1", "bogus"], false), Some(NOT_INT));
    }

    #[test]
    fn windows_clamp_like_redis() {
        let w = |s, c, len, native| {
            let w = Window::new(s, c, len, native);
            (w.start, w.end, w.vectorlen)
        };
        // No LIMIT: everything.
        assert_eq!(w(0, -1, 5, false), (0, 4, 5));
        assert_eq!(w(1, 2, 5, false), (1, 2, 5));
        // Negative offsets clamp to 0; counts past the end to the end.
        assert_eq!(w(-3, 2, 5, false), (0, 1, 5));
        assert_eq!(w(3, 100, 5, false), (3, 4, 5));
        // An offset past the end selects nothing.
        assert_eq!(w(9, 2, 5, false), (4, 3, 5));
        assert_eq!(Window::new(9, 2, 5, false).span(), 0);
        assert_eq!(Window::new(9, 2, 5, false).range(), 0..0);
        // An empty key.
        assert_eq!(w(0, -1, 0, false), (-1, -2, 0));
        // BY nosort on a list or sorted set loads only the window.
        assert_eq!(w(1, 2, 5, true), (1, 2, 2));
        assert_eq!(w(0, -1, 5, true), (0, 4, 5));
        let mut rebased = Window::new(1, 2, 5, true);
        rebased.rebase();
        assert_eq!(rebased.range(), 0..2);
    }

    #[test]
    fn small_integer_sets_iterate_in_numeric_order() {
        let objs =
            |items: &[SortItem]| -> Vec<Vec<u8>> { items.iter().map(|i| i.obj.clone()).collect() };
        let items = vec![
            SortItem::new(b"10"),
            SortItem::new(b"-2"),
            SortItem::new(b"3"),
        ];
        let want: Vec<Vec<u8>> = vec![b"-2".to_vec(), b"3".to_vec(), b"10".to_vec()];
        assert_eq!(objs(&intset_order(items, 512)), want);
        // Too many for an intset, or a non-integer: iteration order stays.
        let items = vec![SortItem::new(b"10"), SortItem::new(b"-2")];
        assert_eq!(
            objs(&intset_order(items, 1)),
            vec![b"10".to_vec(), b"-2".to_vec()]
        );
        let items = vec![SortItem::new(b"10"), SortItem::new(b"x")];
        assert_eq!(
            objs(&intset_order(items, 512)),
            vec![b"10".to_vec(), b"x".to_vec()]
        );
    }

    #[test]
    fn sort_compares_like_redis() {
        let sorted = |objs: &[&[u8]], opts: &SortOptions<'_>| -> Vec<Vec<u8>> {
            let mut items: Vec<SortItem> = objs.iter().map(|o| SortItem::new(o)).collect();
            for it in items.iter_mut() {
                it.score = sort_score(&it.obj).unwrap_or(0.0);
            }
            sort_items(&mut items, opts);
            items.into_iter().map(|i| i.obj).collect()
        };
        let numeric = SortOptions::default();
        assert_eq!(
            sorted(&[b"10", b"9", b"1.5"], &numeric),
            vec![b"1.5".to_vec(), b"9".to_vec(), b"10".to_vec()]
        );
        let alpha_desc = SortOptions {
            alpha: true,
            desc: true,
            ..SortOptions::default()
        };
        assert_eq!(
            sorted(&[b"10", b"9", b"1.5"], &alpha_desc),
            vec![b"9".to_vec(), b"10".to_vec(), b"1.5".to_vec()]
        );
        // ALPHA compares as C strings (up to a NUL) unless storing.
        let alpha = SortOptions {
            alpha: true,
            ..SortOptions::default()
        };
        assert_eq!(
            sorted(&[b"a\0z", b"a\0b"], &alpha),
            vec![b"a\0z".to_vec(), b"a\0b".to_vec()]
        );
        let dst = Bytes::from_static(b"dst");
        let alpha_store = SortOptions {
            alpha: true,
            store: Some(&dst),
            ..SortOptions::default()
        };
        assert_eq!(
            sorted(&[b"a\0z", b"a\0b"], &alpha_store),
            vec![b"a\0b".to_vec(), b"a\0z".to_vec()]
        );
    }
}
