//! WAIT, ROLE and DEBUG DIGEST. Standalone answers here; in cluster mode the
//! cluster router answers WAIT and ROLE before these handlers run.

use bytes::Bytes;

use super::flags::*;
use super::{Command, Ctx, KeySpec};

pub static COMMANDS: &[Command] = &[
    Command::new("wait", 3, NOSCRIPT, KeySpec::None, wait, "generic"),
    Command::new(
        "role",
        1,
        NOSCRIPT | LOADING | STALE | FAST,
        KeySpec::None,
        role,
        "server",
    ),
];

fn wait(ctx: &mut Ctx<'_, '_>, args: &[Bytes]) {
    if ctx.int_arg(&args[1]).is_none() {
        return;
    }
    let Some(t) = ctx.int_arg(&args[2]) else {
        return;
    };
    if t < 0 {
        ctx.err("ERR timeout is negative");
        return;
    }
    // Standalone: no replicas.
    ctx.out.int(0);
}

fn role(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    ctx.out.array(3);
    ctx.out.bulk(b"master");
    ctx.out.int(0);
    ctx.out.array(0);
}

/// DEBUG DIGEST: a digest of the whole keyspace (equal keyspaces, equal digests).
pub fn debug_digest(ctx: &mut Ctx<'_, '_>, _args: &[Bytes]) {
    let d = crate::engine::digest::digest(&ctx.server.db);
    ctx.out.bulk(d.as_bytes());
}
