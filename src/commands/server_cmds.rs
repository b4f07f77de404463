//! server_cmds commands.

use super::Command;

pub static COMMANDS: &[Command] = &[];
