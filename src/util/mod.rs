//! Pure helpers that reproduce Redis's exact text rules: glob matching,
//! number parsing and formatting.

pub mod alloc;
pub mod cgroup;
pub mod counter;
/// Seeds and mutations for the fuzz tests, the unit tests' and
/// `tests/fuzz_commands.rs`'s (so compiled outside `cfg(test)` too).
#[doc(hidden)]
pub mod fuzz;
pub mod geohash;
pub mod glob;
pub mod hll;
pub mod listpack;
pub mod longdouble;
pub mod number;
pub mod worker;
