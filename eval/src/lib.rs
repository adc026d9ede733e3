//! The math side: benchmark loaders, answer extraction and the equivalence grader, the
//! evaluation harness and diversity metrics. Builds without burn or libtorch: the grader can be
//! used and benchmarked on its own.

pub mod benchmarks;
pub mod diversity;
pub mod grader;
pub mod prompt;

pub use benchmarks::{Benchmark, BenchmarkError, Problem};
