//! Answer grading with math-verify's semantics: extract the answer from a response, normalize,
//! parse into an expression tree, and compare gold first (see `compare`). Bounded in time by a
//! step budget and free of panics: garbage in gives `equal: false` and a reason.

mod compare;
pub mod extract;
pub mod fuzz;
mod matrix;
pub mod normalize;
pub mod parse;
pub mod reference;
mod response;
mod tree;
mod verdict;

pub use compare::{REL_TOL, STEP_BUDGET};
pub use response::{
    Extraction, Graded, committed_answer, extract_answer, grade, grade_response, math_verify_candidates,
    restates,
};
pub use verdict::{Verdict, answers_equal, trees_equal};

/// Bumped whenever a verdict can change (extraction, normalisation, parsing, comparison): it
/// enters the identity of the verify and evaluate outputs that rest on the grader.
pub const VERSION: u32 = 4;

#[cfg(test)]
mod tests;
