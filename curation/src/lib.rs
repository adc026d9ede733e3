//! Curation of problem sets: well-formedness, exact / MinHash-LSH / semantic dedup,
//! decontamination against the benchmarks, the importers (JSONL, JSON, Parquet) and `pipeline
//! curate`. Its settings are its own types (`params`), which the config schema composes. No
//! burn, no libtorch: semantic dedup takes its vectors from the caller ([`embed::Embed`]).

pub mod curate;
pub mod dedup;
pub mod embed;
pub mod error;
pub mod filter;
pub mod import;
pub mod params;

pub use error::CurationError;
