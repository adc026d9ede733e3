//! Answer grading, math-verify style. So far: extraction of the answer from a response.
//! The expression parser and equivalence checks are still to come (issue 3).

pub mod extract;
