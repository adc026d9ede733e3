//! Where semantic dedup's vectors come from: the caller's embedder (a local encoder or an
//! endpoint, both outside this crate, so curation needs neither burn nor an HTTP client).

/// Sentence embeddings: one unit vector per text, in order.
pub trait Embed {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error + Send + Sync>>;
}
