//! What can stop a curation, each naming the file, id or key at fault.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CurationError {
    #[error(transparent)]
    Import(#[from] crate::import::ImportError),
    /// Ids name rows in kept.jsonl and dropped.jsonl: two rows with one id would be ambiguous.
    #[error(
        "{}: id `{id}` appears more than once (map another field with --id, or none: ids become row-<index>)",
        path.display()
    )]
    RepeatedId { path: PathBuf, id: String },
    #[error(
        "{}: is one of the files curate writes in {} ({}): choose another --out; nothing was read or written",
        input.display(),
        out.display(),
        crate::curate::OUTPUTS.join(", ")
    )]
    OverwritesInput { input: PathBuf, out: PathBuf },
    #[error(transparent)]
    Benchmark(#[from] eval::BenchmarkError),
    #[error("dedup.semantic needs embeddings: dedup.embeddings.provider is \"none\"")]
    NoEmbeddings,
    #[error(transparent)]
    Embeddings(Box<dyn std::error::Error + Send + Sync>),
    #[error(transparent)]
    Records(#[from] vs_core::jsonl::JsonlError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}
