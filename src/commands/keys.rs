//! Generic key commands: DEL, UNLINK, EXISTS, TYPE, expiry, renames, SCAN, ...

use bytes::Bytes;

use super::flags::*;
use super::util::owned;
use super::{Command, Ctx, KeySpec};
use crate::engine::Mutation;

const ALL_KEYS: KeySpec = KeySpec::Range {
    first: 1,
    last: -1,
    step: 1,
};
const KEY1: KeySpec = KeySpec::Range {
    first: 1,
    last: 1,
    step: 1,
};

pub static COMMANDS: &[Command] = &[
    Command::new("del", -2, WRITE, ALL_KEYS, del, "generic"),
    Command::new("unlink", -2, WRITE | FAST, ALL_KEYS, del, "generic"),
    Command::new("exists", -2, READONLY | FAST, ALL_KEYS, exists, "generic"),
    Command::new("type", 2, READONLY | FAST, KEY1, type_cmd, "generic"),
];

fn del(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let mut n = 0;
    for k in &args[1..] {
        if ctx.ks.exists(k) {
            ctx.ks.apply(Mutation::Del { key: owned(k) });
            n += 1;
        }
    }
    ctx.out.int(n);
}

fn exists(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let n = args[1..].iter().filter(|k| ctx.ks.exists(k)).count();
    ctx.out.int(n as i64);
}

fn type_cmd(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    let t = ctx
        .ks
        .peek(&args[1])
        .map(|e| e.value.value_type().name())
        .unwrap_or("none");
    ctx.out.simple(t);
}
