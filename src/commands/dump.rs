//! DUMP and RESTORE: a key's value as Redis's DUMP payload and back, through
//! [`crate::rdb`]. This file owns the commands' arguments, checks and reply
//! texts; the payload layout lives in `rdb`.

use bytes::Bytes;

use super::flags::*;
use super::util::{is, owned, parse_i64, NOT_INT, SYNTAX};
use super::KEY1;
use super::{Command, Ctx};
use crate::engine::{evict, Mutation};
use crate::rdb::{self, DecodeError};

const G: &str = "generic";

pub static COMMANDS: &[Command] = &[
    Command::new("dump", 2, READONLY, KEY1, dump, G),
    Command::new("restore", -4, WRITE | DENYOOM, KEY1, restore, G),
];

const BUSYKEY: &str = "BUSYKEY Target key name already exists.";
const INVALID_TTL: &str = "ERR Invalid TTL value, must be >= 0";
const INVALID_IDLETIME: &str = "ERR Invalid IDLETIME value, must be >= 0";
const INVALID_FREQ: &str = "ERR Invalid FREQ value, must be >= 0 and <= 255";

/// Redis's reply to a payload it refuses.
fn decode_error_text(e: DecodeError) -> &'static str {
    match e {
        DecodeError::VersionOrChecksum => "ERR DUMP payload version or checksum are wrong",
        DecodeError::BadFormat => "ERR Bad data format",
    }
}

fn dump(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    match ctx.ks.get(&args[1]) {
        None => ctx.out.null(),
        Some(e) => {
            let payload = rdb::encode(&e.value);
            ctx.out.bulk(&payload);
        }
    }
}

/// RESTORE's options after the payload: [REPLACE] [ABSTTL] [IDLETIME s] [FREQ f].
#[derive(Debug, Default, PartialEq, Eq)]
struct RestoreOptions {
    replace: bool,
    absttl: bool,
    /// Seconds idle, for an LRU (or no-eviction) policy.
    idle: Option<u64>,
    /// The LFU counter, for an LFU policy.
    freq: Option<u8>,
}

impl RestoreOptions {
    /// Redis's option loop: errors in argument order; IDLETIME and FREQ
    /// exclude each other (the second one is a syntax error).
    fn parse(opts: &[Bytes]) -> Result<Self, &'static str> {
        let mut o = RestoreOptions::default();
        let mut j = 0;
        while j < opts.len() {
            let more = opts.len() - j - 1;
            let a = &opts[j];
            if is(a, "replace") {
                o.replace = true;
            } else if is(a, "absttl") {
                o.absttl = true;
            } else if is(a, "idletime") && more >= 1 && o.freq.is_none() {
                let v = parse_i64(&opts[j + 1]).ok_or(NOT_INT)?;
                o.idle = Some(u64::try_from(v).map_err(|_| INVALID_IDLETIME)?);
                j += 1;
            } else if is(a, "freq") && more >= 1 && o.idle.is_none() {
                let v = parse_i64(&opts[j + 1]).ok_or(NOT_INT)?;
                o.freq = Some(u8::try_from(v).map_err(|_| INVALID_FREQ)?);
                j += 1;
            } else {
                return Err(SYNTAX);
            }
            j += 1;
        }
        Ok(o)
    }
}

/// RESTORE key ttl payload [options], checked in Redis's order: options,
/// existing key, TTL, payload. IDLETIME sets the new key's idle time under an
/// LRU (or no-eviction) policy, FREQ its LFU counter under an LFU policy, as
/// in Redis.
fn restore(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let opts = match RestoreOptions::parse(&args[4..]) {
        Ok(o) => o,
        Err(e) => return ctx.err(e),
    };
    let key = &args[1];
    let exists = ctx.ks.exists(key);
    if !opts.replace && exists {
        return ctx.err(BUSYKEY);
    }
    let Some(ttl) = parse_i64(&args[2]) else {
        return ctx.err(NOT_INT);
    };
    if ttl < 0 {
        return ctx.err(INVALID_TTL);
    }
    let value = match rdb::decode(&args[3]) {
        Ok(v) => v,
        Err(e) => return ctx.err(decode_error_text(e)),
    };
    let now = ctx.ks.now() as i64;
    let mut at = ttl;
    if at != 0 && !opts.absttl {
        at = at.saturating_add(now);
    }
    if at != 0 && at <= now {
        // Already expired: the key is not created (an old one is deleted).
        if opts.replace && exists {
            ctx.ks.apply(Mutation::Del { key: owned(key) });
        }
        ctx.out.ok();
        return;
    }
    ctx.ks.next_event(b'g', "restore");
    ctx.ks.apply(Mutation::Put {
        key: owned(key),
        value,
        expire_at: at as u64,
    });
    // Redis's objectSetLRUOrLFU: FREQ counts under an LFU policy, IDLETIME otherwise.
    let access = if ctx.ks.db().policy().is_lfu() {
        opts.freq.map(evict::access_with_freq)
    } else {
        opts.idle.map(evict::access_with_idle)
    };
    if let Some(a) = access {
        ctx.ks.set_access(key, a);
    }
    ctx.out.ok();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(words: &[&str]) -> Result<RestoreOptions, &'static str> {
        let args: Vec<Bytes> = words.iter().map(|w| Bytes::from(w.to_string())).collect();
        RestoreOptions::parse(&args)
    }

    #[test]
    fn restore_options_parse() {
        assert_eq!(parse(&[]), Ok(RestoreOptions::default()));
        let o = parse(&["REPLACE", "absttl", "IdleTime", "7"]).unwrap();
        assert_eq!(
            o,
            RestoreOptions {
                replace: true,
                absttl: true,
                idle: Some(7),
                freq: None
            }
        );
        assert_eq!(parse(&["freq", "255"]).unwrap().freq, Some(255));
    }

    #[test]
    fn restore_option_errors_match_redis() {
        assert_eq!(parse(&["idletime", "x"]), Err(NOT_INT));
        assert_eq!(parse(&["idletime", "-1"]), Err(INVALID_IDLETIME));
        assert_eq!(parse(&["freq", "256"]), Err(INVALID_FREQ));
        assert_eq!(parse(&["freq", "-1"]), Err(INVALID_FREQ));
        assert_eq!(parse(&["idletime", "1", "freq", "1"]), Err(SYNTAX));
        assert_eq!(parse(&["freq", "1", "idletime", "1"]), Err(SYNTAX));
        assert_eq!(parse(&["idletime"]), Err(SYNTAX));
        assert_eq!(parse(&["bogus"]), Err(SYNTAX));
        // The first error in argument order wins.
        assert_eq!(parse(&["bogus", "idletime", "x"]), Err(SYNTAX));
        assert_eq!(parse(&["idletime", "x", "bogus"]), Err(NOT_INT));
    }
}
