//! The math side: benchmark loaders, answer extraction and the equivalence grader, the
//! evaluation harness and diversity metrics. Tensor work is delegated to `trainer`.

pub mod benchmarks;
pub mod diversity;
pub mod grader;
pub mod prompt;

pub use benchmarks::{Benchmark, BenchmarkError, Problem};
