//! Glob-style pattern matching, a faithful port of Redis 7.0's
//! `stringmatchlen()` / `stringmatchlen_impl()` (src/util.c).
//!
//! Used by KEYS, SCAN/HSCAN/SSCAN/ZSCAN MATCH, PSUBSCRIBE/PUBSUB CHANNELS,
//! CONFIG GET (nocase), COMMAND LIST FILTERBY PATTERN, ACL key patterns, ...
//!
//! Supported syntax (exactly as Redis interprets it, quirks included):
//! * `*` any run of bytes (consecutive stars collapse into one);
//! * `?` any single byte;
//! * `[abc]`, `[^abc]` (negation), `[a-z]` ranges (reversed ranges such as
//!   `[z-a]` are swapped), `\x` inside a class matches `x` literally — and,
//!   like Redis, always case-sensitively even when `nocase` is set;
//! * `\x` escapes `x` outside a class; a trailing lone `\` matches a literal
//!   backslash;
//! * an unterminated class (`[abc` at the end of the pattern) behaves as if it
//!   were closed at the end of the pattern; `[` alone matches nothing (an
//!   empty class), `[^` alone matches any single byte.
//!
//! Faithfulness notes:
//! * The C code reads one byte past the end of the pattern, relying on the
//!   sds NUL terminator. We reproduce that with `at()`, which yields 0 past
//!   the end; that sentinel is only ever used for control flow and never
//!   compared against a subject byte, exactly as in C.
//! * Range bounds and the subject byte are compared as C `char`, which is
//!   *signed* on x86-64 (the platform Redis is normally built for), so a
//!   range such as `[a-\xff]` is `[\xff-a]` = bytes 0x00..=0x61 plus 0xff.
//!   We reproduce the signed comparison (`as i8`). `tolower` runs in the
//!   "C" locale (Redis never sets LC_CTYPE), so only `A-Z` fold.
//! * Redis's `skipLongerMatches` optimisation (CVE-2022-36021 fix, 7.0.9+)
//!   is reproduced, so `a*a*a*a*a*a*a*a*b` on long subjects takes
//!   O(pattern * subject) time instead of exponential time.
//! * Redis recurses once per (non-consecutive) `*` and caps the nesting at
//!   1000: with more stars than that in play the match fails ("no match"),
//!   and we return the same. Our implementation is iterative (see
//!   `match_with_limit`), so it uses no stack proportional to the pattern.
//! * `*` does not match the empty subject (see [`glob_match`]).
//!
//! Verified against redis-server 7.0.15 (KEYS) on ~400k random and
//! hand-written (pattern, subject) pairs, and against a literal recursive
//! port of the C code (tests below) including the nesting cap.

/// Maximum star nesting before Redis gives up and reports "no match".
const MAX_NESTING: u32 = 1000;

/// Byte at `i`, or 0 past the end (emulates the sds NUL terminator).
#[inline(always)]
fn at(p: &[u8], i: usize) -> u8 {
    match p.get(i) {
        Some(&b) => b,
        None => 0,
    }
}

/// C `tolower()` on a (possibly negative) `char` promoted to `int`, "C" locale.
#[inline(always)]
fn c_tolower(c: i32) -> i32 {
    if (b'A' as i32..=b'Z' as i32).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// Returns true if `string` matches the glob `pattern` (Redis `stringmatchlen`).
///
/// `nocase` folds ASCII letters (as Redis's CONFIG GET / COMMAND LIST do).
///
/// Note, exactly like Redis: `*` does **not** match the empty string
/// (`glob_match(b"*", b"", false)` is false, because the matcher loop only
/// runs while both pattern and subject are non-empty). KEYS and SCAN avoid
/// this by special-casing the pattern `"*"` before calling the matcher;
/// callers porting those commands must do the same.
pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    match_with_limit(pattern, string, nocase, MAX_NESTING)
}

/// Iterative equivalent of Redis's recursive `stringmatchlen_impl`.
///
/// In the C code a `*` loops over every start offset calling itself
/// recursively for the rest of the pattern; when that loop is exhausted it
/// sets the shared `skipLongerMatches` flag, which makes every enclosing
/// star loop return "no match" at once. Hence an exhausted star loop ends
/// the whole match with `false`, and only the innermost active star is ever
/// retried: the recursion is exactly "remember the last star and backtrack
/// to it", which is what this loop does with `star`. `nesting` counts the
/// stars entered, i.e. the C recursion depth; once it would exceed the
/// limit, every sub-call fails in C and the star loop is exhausted, so the
/// result is `false`.
fn match_with_limit(pattern: &[u8], string: &[u8], nocase: bool, max_nesting: u32) -> bool {
    let plen = pattern.len();
    let slen = string.len();
    let mut pi = 0usize;
    let mut si = 0usize;
    let mut nesting = 0u32;
    // Innermost active star: (pattern index just after it, subject offset
    // currently being tried for the rest of the pattern).
    let mut star: Option<(usize, usize)> = None;

    loop {
        // Run one C "call" of stringmatchlen_impl starting at (pi, si).
        let ok = 'call: {
            while pi < plen && si < slen {
                match pattern[pi] {
                    b'*' => {
                        while pi < plen && at(pattern, pi + 1) == b'*' {
                            pi += 1;
                        }
                        if plen - pi == 1 {
                            return true; // trailing star matches the rest
                        }
                        nesting += 1;
                        if nesting > max_nesting {
                            return false; // protection against abusive patterns
                        }
                        // "Recursive call" for the rest of the pattern at si.
                        pi += 1;
                        star = Some((pi, si));
                        continue;
                    }
                    b'?' => {
                        si += 1;
                    }
                    b'[' => {
                        pi += 1;
                        let not = at(pattern, pi) == b'^';
                        if not {
                            pi += 1;
                        }
                        let c_byte = string[si];
                        let mut matched = false;
                        loop {
                            let rem = plen - pi;
                            let cur = at(pattern, pi);
                            if cur == b'\\' && rem >= 2 {
                                pi += 1;
                                if pattern[pi] == c_byte {
                                    matched = true;
                                }
                            } else if cur == b']' {
                                break;
                            } else if rem == 0 {
                                // Unterminated class: step back onto the last
                                // byte so the common `pi += 1` lands on the end.
                                pi -= 1;
                                break;
                            } else if rem >= 3 && pattern[pi + 1] == b'-' {
                                let mut start = pattern[pi] as i8 as i32;
                                let mut end = pattern[pi + 2] as i8 as i32;
                                let mut c = c_byte as i8 as i32;
                                if start > end {
                                    std::mem::swap(&mut start, &mut end);
                                }
                                if nocase {
                                    start = c_tolower(start);
                                    end = c_tolower(end);
                                    c = c_tolower(c);
                                }
                                pi += 2;
                                if c >= start && c <= end {
                                    matched = true;
                                }
                            } else if !nocase {
                                if cur == c_byte {
                                    matched = true;
                                }
                            } else if cur.eq_ignore_ascii_case(&c_byte) {
                                matched = true;
                            }
                            pi += 1;
                        }
                        if matched == not {
                            break 'call false;
                        }
                        si += 1;
                    }
                    first => {
                        let mut pc = first;
                        if first == b'\\' && plen - pi >= 2 {
                            pi += 1;
                            pc = pattern[pi];
                        }
                        let sc = string[si];
                        let eq = if nocase {
                            pc.eq_ignore_ascii_case(&sc)
                        } else {
                            pc == sc
                        };
                        if !eq {
                            break 'call false;
                        }
                        si += 1;
                    }
                }
                pi += 1;
                if si == slen {
                    while at(pattern, pi) == b'*' {
                        pi += 1;
                    }
                    break;
                }
            }
            pi == plen && si == slen
        };
        if ok {
            return true;
        }
        // The call failed: advance the innermost star by one byte, or give
        // up if it is exhausted (skipLongerMatches) or there is none.
        match star {
            Some((star_pi, star_si)) if star_si + 1 < slen => {
                star = Some((star_pi, star_si + 1));
                pi = star_pi;
                si = star_si + 1;
            }
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{glob_match, match_with_limit, MAX_NESTING};

    fn m(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), false)
    }
    fn mi(p: &str, s: &str) -> bool {
        glob_match(p.as_bytes(), s.as_bytes(), true)
    }

    #[test]
    fn table_case_sensitive() {
        // (pattern, subject, expected)
        let cases: &[(&str, &str, bool)] = &[
            // empty pattern / subject
            ("", "", true),
            ("", "a", false),
            // `*` does not match "" in stringmatchlen (KEYS/SCAN special-case
            // the pattern "*" before calling it).
            ("*", "", false),
            ("**", "", false),
            ("?", "", false),
            ("a", "", false),
            ("[a]", "", false),
            ("\\", "", false),
            ("*a", "", false),
            ("[", "", false),
            // literals
            ("hello", "hello", true),
            ("hello", "hell", false),
            ("hello", "helloo", false),
            ("hello", "Hello", false),
            // star
            ("*", "anything", true),
            ("h*o", "hello", true),
            ("h*o", "ho", true),
            ("h*o", "hellx", false),
            ("*o", "hello", true),
            ("h*", "hello", true),
            ("*l*", "hello", true),
            ("*x*", "hello", false),
            ("h***o", "hello", true),
            ("a*b*c", "aXXbYYc", true),
            ("a*b*c", "aXXbYY", false),
            ("a*", "a", true),
            ("a**", "a", true),
            ("a*b", "ab", true),
            ("*a*", "a", true),
            ("a*a*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaab", true),
            // question mark
            ("h?llo", "hello", true),
            ("h?llo", "hallo", true),
            ("h?llo", "hllo", false),
            ("???", "abc", true),
            ("???", "ab", false),
            ("?*", "a", true),
            ("*?", "", false),
            // classes
            ("h[ae]llo", "hello", true),
            ("h[ae]llo", "hallo", true),
            ("h[ae]llo", "hillo", false),
            ("h[^e]llo", "hallo", true),
            ("h[^e]llo", "hello", false),
            ("h[a-b]llo", "hbllo", true),
            ("h[a-b]llo", "hcllo", false),
            ("h[b-a]llo", "hbllo", true), // reversed range is swapped
            ("h[b-a]llo", "hallo", true),
            ("[0-9]", "5", true),
            ("[0-9]", "a", false),
            ("[^0-9]", "a", true),
            // "a-]" is a range a..']' (swapped to ']'..'a'), leaving the
            // class unterminated.
            ("[a-]", "-", false),
            ("[a-]", "a", true),
            ("[a-]", "^", true),
            ("[a-]", "]", true),
            ("[a-]x", "]", true), // class {"]".."a", "x"}, unterminated
            ("[a-]x", "x", true),
            ("[a-]x", "`x", false),
            ("[-a]", "-", true),
            ("[]]", "]", false),  // ']' closes immediately: empty class
            ("[]]", "]]", false), // empty class never matches
            ("[]", "a", false),
            ("[]a", "a", false),
            ("[^]", "a", true), // negated empty class matches anything
            ("[^]a", "xa", true),
            ("[\\]]", "]", true), // escaped ']' inside class
            ("[\\-]", "-", true),
            ("[\\\\]", "\\", true),
            ("[a\\-z]", "b", false),
            ("[a\\-z]", "-", true),
            ("[a-z0-9]", "q", true),
            ("[a-z0-9]", "7", true),
            ("[a-z0-9]", "_", false),
            ("[abc", "a", true), // unterminated class
            ("[abc", "c", true),
            ("[abc", "d", false),
            ("[abc", "ab", false),
            ("[", "a", false), // lone '[' = empty class
            ("[", "[", false),
            ("[^", "a", true), // lone "[^" = negated empty class
            ("[^", "^", true),
            ("[^", "ab", false),
            ("[a-", "a", true),
            ("[a-", "-", true),
            ("[a-", "b", false),
            ("[a-c", "b", true), // unterminated range
            ("[a-c", "d", false),
            ("[\\", "\\", true), // unterminated, trailing backslash in class
            ("[\\", "a", false),
            ("x[\\", "x\\", true),
            ("[a]b", "ab", true),
            ("[a]b", "bb", false),
            ("[*]", "*", true),
            ("[*]", "a", false),
            ("[?]", "?", true),
            ("[?]", "a", false),
            ("[[]", "[", true),
            ("[^^]", "^", false),
            ("[^^]", "a", true),
            ("[a^]", "^", true),
            // escapes
            ("\\*", "*", true),
            ("\\*", "a", false),
            ("\\?", "?", true),
            ("\\?", "a", false),
            ("\\[a]", "[a]", true),
            ("\\[a]", "a", false),
            ("\\a", "a", true),
            ("\\\\", "\\", true),
            ("\\", "\\", true), // trailing lone backslash matches itself
            ("a\\", "a\\", true),
            ("a\\", "a", false),
            ("*\\", "abc\\", true),
            ("*\\*", "abc*", true),
            ("*\\*", "abc", false),
            // star at end after subject consumed
            ("abc*", "abc", true),
            ("abc**", "abc", true),
            ("abc*?", "abc", false),
            ("abc*d", "abc", false),
            ("abc[", "abc", false),
            // embedded NUL bytes are ordinary bytes
            ("a\0b", "a\0b", true),
            ("a?b", "a\0b", true),
            ("a[\0]b", "a\0b", true),
            ("a*", "a\0\0", true),
        ];
        for &(p, s, want) in cases {
            assert_eq!(m(p, s), want, "pattern {p:?} subject {s:?}");
        }
    }

    #[test]
    fn table_nocase() {
        let cases: &[(&str, &str, bool)] = &[
            ("HELLO", "hello", true),
            ("hello", "HeLLo", true),
            ("h?LLO", "Hello", true),
            ("H*O", "hello", true),
            ("[A-Z]", "q", true),
            ("[a-z]", "Q", true),
            ("[^a-z]", "Q", false),
            ("[AB]", "b", true),
            ("[^AB]", "b", false),
            ("\\A", "a", true),
            // Escaped byte inside a class is compared case-sensitively even
            // with nocase (Redis quirk).
            ("[\\A]", "a", false),
            ("[\\A]", "A", true),
            ("maxmemory*", "MAXMEMORY-POLICY", true),
        ];
        for &(p, s, want) in cases {
            assert_eq!(mi(p, s), want, "nocase pattern {p:?} subject {s:?}");
        }
        // Case-sensitive controls.
        assert!(!m("HELLO", "hello"));
        assert!(!m("[A-Z]", "q"));
    }

    #[test]
    fn signed_char_ranges() {
        // On x86-64 C `char` is signed: 0xff is -1 and 0x80 is -128.
        // [a-\xff] is swapped to [\xff-a] = -1..=97.
        let p = b"[a-\xff]";
        assert!(glob_match(p, b"\xff", false));
        assert!(glob_match(p, b"\x00", false));
        assert!(glob_match(p, b"a", false));
        assert!(!glob_match(p, b"b", false));
        assert!(!glob_match(p, b"\x80", false));
        assert!(!glob_match(p, b"\xfe", false));
        // [\x80-\xff] = -128..=-1: all high bytes, no ASCII.
        let p = b"[\x80-\xff]";
        assert!(glob_match(p, b"\x80", false));
        assert!(glob_match(p, b"\xc3", false));
        assert!(glob_match(p, b"\xff", false));
        assert!(!glob_match(p, b"\x7f", false));
        assert!(!glob_match(p, b"\x00", false));
        // [\x00-\x7f] is plain ASCII.
        assert!(glob_match(b"[\x00-\x7f]", b"z", false));
        assert!(!glob_match(b"[\x00-\x7f]", b"\x80", false));
        // literal high bytes
        assert!(glob_match(b"\xc3\xa9*", b"\xc3\xa9t\xc3\xa9", false));
        assert!(glob_match(b"\xc3\xa9*", b"\xc3\xa9t\xc3\xa9", true));
        // nocase does not fold non-ASCII
        assert!(!glob_match(b"\xc3\x89", b"\xc3\xa9", true));
    }

    #[test]
    fn nocase_mixed_range() {
        // [Z-a]: start 'Z'(90) end 'a'(97); nocase folds to 122..97 -> empty.
        assert!(!mi("[Z-a]", "_"));
        assert!(!mi("[Z-a]", "z"));
        assert!(!mi("[Z-a]", "a"));
        // Case-sensitive it is 90..=97.
        assert!(m("[Z-a]", "_"));
        assert!(m("[Z-a]", "Z"));
        assert!(m("[Z-a]", "a"));
    }

    #[test]
    fn pathological_stars_are_fast() {
        let s = "a".repeat(100_000);
        let start = std::time::Instant::now();
        assert!(!m("a*a*a*a*a*a*a*a*b", &s));
        assert!(!m("*a*a*a*a*a*a*a*a*a*a*a*a*b", &s));
        let mut s2 = s.clone();
        s2.push('b');
        assert!(m("a*a*a*a*a*a*a*a*b", &s2));
        assert!(!m("*?*?*?*?*?*?*?*?*?*x", &s));
        assert!(start.elapsed().as_secs() < 5, "took {:?}", start.elapsed());
    }

    #[test]
    fn nesting_limit_matches_redis() {
        // 1000 non-consecutive stars are fine (nesting reaches 1000).
        let p = "*a".repeat(1000);
        let s = "a".repeat(1000);
        assert!(m(&p, &s));
        // 1001 stars exceed Redis's nesting limit: Redis reports no match.
        let p = "*a".repeat(1001);
        let s = "a".repeat(1001);
        assert!(!m(&p, &s));
        // A trailing star returns "match" before the nesting check.
        let p = "*a".repeat(1000) + "*";
        assert!(m(&p, &"a".repeat(1000)));
        assert!(!m(&("*a".repeat(1001) + "*"), &"a".repeat(1001)));
        // A pattern of 10k consecutive stars collapses into one.
        assert!(m(&"*".repeat(10_000), "whatever"));
    }

    #[test]
    fn no_stack_overflow_on_huge_patterns() {
        // Run on a thread with a small (256 KiB) stack, smaller than tokio's
        // default worker stack, to prove the recursion stays bounded.
        let h = std::thread::Builder::new()
            .stack_size(256 * 1024)
            .spawn(|| {
                let p = "*a".repeat(10_000) + "b";
                let s = "a".repeat(20_000);
                assert!(!m(&p, &s));
                let p = "*?".repeat(10_000);
                assert!(!m(&p, &s));
                let p = "*[a]".repeat(10_000);
                assert!(!m(&p, &s[..5000]));
            })
            .unwrap();
        h.join().unwrap();
    }

    /// Literal recursive port of the C `stringmatchlen_impl`, used as an
    /// oracle for the iterative implementation. With `use_skip == false`
    /// and no nesting limit it is the pre-7.0.9 exponential algorithm.
    fn reference(p: &[u8], s: &[u8], nocase: bool, use_skip: bool, limit: u32) -> bool {
        #[allow(clippy::too_many_arguments)]
        fn go(
            p: &[u8],
            mut pi: usize,
            s: &[u8],
            mut si: usize,
            nocase: bool,
            skip: &mut bool,
            use_skip: bool,
            nesting: u32,
            limit: u32,
        ) -> bool {
            if nesting > limit {
                return false;
            }
            let at = |i: usize| p.get(i).copied().unwrap_or(0);
            while pi < p.len() && si < s.len() {
                match p[pi] {
                    b'*' => {
                        while pi < p.len() && at(pi + 1) == b'*' {
                            pi += 1;
                        }
                        if p.len() - pi == 1 {
                            return true;
                        }
                        while si < s.len() {
                            if go(p, pi + 1, s, si, nocase, skip, use_skip, nesting + 1, limit) {
                                return true;
                            }
                            if use_skip && *skip {
                                return false;
                            }
                            si += 1;
                        }
                        *skip = true;
                        return false;
                    }
                    b'?' => si += 1,
                    b'[' => {
                        pi += 1;
                        let not = at(pi) == b'^';
                        if not {
                            pi += 1;
                        }
                        let mut matched = false;
                        loop {
                            let rem = p.len() - pi;
                            if at(pi) == b'\\' && rem >= 2 {
                                pi += 1;
                                matched |= p[pi] == s[si];
                            } else if at(pi) == b']' {
                                break;
                            } else if rem == 0 {
                                pi -= 1;
                                break;
                            } else if rem >= 3 && p[pi + 1] == b'-' {
                                let (mut a, mut b) = (p[pi] as i8 as i32, p[pi + 2] as i8 as i32);
                                let mut c = s[si] as i8 as i32;
                                if a > b {
                                    std::mem::swap(&mut a, &mut b);
                                }
                                if nocase {
                                    let l =
                                        |x: i32| if (65..=90).contains(&x) { x + 32 } else { x };
                                    a = l(a);
                                    b = l(b);
                                    c = l(c);
                                }
                                pi += 2;
                                matched |= c >= a && c <= b;
                            } else if nocase {
                                matched |= p[pi].eq_ignore_ascii_case(&s[si]);
                            } else {
                                matched |= p[pi] == s[si];
                            }
                            pi += 1;
                        }
                        if matched == not {
                            return false;
                        }
                        si += 1;
                    }
                    c => {
                        let mut pc = c;
                        if c == b'\\' && p.len() - pi >= 2 {
                            pi += 1;
                            pc = p[pi];
                        }
                        let ok = if nocase {
                            pc.eq_ignore_ascii_case(&s[si])
                        } else {
                            pc == s[si]
                        };
                        if !ok {
                            return false;
                        }
                        si += 1;
                    }
                }
                pi += 1;
                if si == s.len() {
                    while at(pi) == b'*' {
                        pi += 1;
                    }
                    break;
                }
            }
            pi == p.len() && si == s.len()
        }
        let mut skip = false;
        go(p, 0, s, 0, nocase, &mut skip, use_skip, 0, limit)
    }

    struct XorShift(u64);
    impl XorShift {
        fn next(&mut self) -> u64 {
            let mut x = self.0;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.0 = x;
            x
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    fn random_case(rng: &mut XorShift, max_p: usize, max_s: usize) -> (Vec<u8>, Vec<u8>) {
        // Small alphabets heavy in metacharacters so every branch is hit.
        const PAT: &[u8] = b"ab*?[]^-\\A\xff\x80\0";
        const SUB: &[u8] = b"ab-]^\\A\xff\x80\0";
        let pl = rng.below(max_p + 1);
        let sl = rng.below(max_s + 1);
        let p = (0..pl).map(|_| PAT[rng.below(PAT.len())]).collect();
        let s = (0..sl).map(|_| SUB[rng.below(SUB.len())]).collect();
        (p, s)
    }

    #[test]
    fn iterative_equals_recursive_port() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for i in 0..200_000 {
            let (p, s) = random_case(&mut rng, 12, 12);
            let limit = [0, 1, 2, 3, MAX_NESTING][i % 5];
            for nocase in [false, true] {
                assert_eq!(
                    match_with_limit(&p, &s, nocase, limit),
                    reference(&p, &s, nocase, true, limit),
                    "pattern {:?} subject {:?} nocase {nocase} limit {limit}",
                    String::from_utf8_lossy(&p),
                    String::from_utf8_lossy(&s)
                );
            }
        }
    }

    #[test]
    fn skip_longer_matches_is_semantics_preserving() {
        // The optimisation never changes results below the nesting cap.
        let mut rng = XorShift(0x1234_5678_9ABC_DEF1);
        for _ in 0..100_000 {
            let (p, s) = random_case(&mut rng, 9, 9);
            for nocase in [false, true] {
                assert_eq!(
                    glob_match(&p, &s, nocase),
                    reference(&p, &s, nocase, false, u32::MAX),
                    "pattern {:?} subject {:?} nocase {nocase}",
                    String::from_utf8_lossy(&p),
                    String::from_utf8_lossy(&s)
                );
            }
        }
    }
}
