//! The C libraries Redis links into its Lua, written again in Rust with the
//! same behaviour: `cjson`, `cmsgpack`, `bit` and `struct`.

pub mod bit;
pub mod cjson;
pub mod cmsgpack;
pub mod structlib;
mod support;

pub(crate) use support::INTERNAL_CHUNK;

/// Registers the four libraries as globals of `lua` (as Redis does, before
/// the sandbox makes them read-only).
pub fn open_all(lua: &mlua::Lua) -> mlua::Result<()> {
    cjson::open(lua)?;
    cmsgpack::open(lua)?;
    bit::open(lua)?;
    structlib::open(lua)
}
