//! Lua library `bit`, as Redis ships it.

/// Registers the global table.
pub fn open(_lua: &mlua::Lua) -> mlua::Result<()> {
    Ok(())
}
