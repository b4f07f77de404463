//! Pure helpers that reproduce Redis's exact text rules: glob matching,
//! number parsing and formatting.

pub mod counter;
#[cfg(test)]
pub mod fuzz;
pub mod glob;
pub mod longdouble;
pub mod number;
