//! Weights into the model. Every format is a [`WeightSource`] that hands out dense f32 data by
//! transformers tensor name; each module of the model asks for its tensors through
//! [`weights::Weights`] with the shape it expects, so a missing or misshaped tensor is an error
//! naming it, and [`WeightSource::finish`] refuses tensors nobody asked for.

pub mod gguf;
pub mod names;
pub mod quant;
pub mod random;
pub mod safetensors;
pub mod weights;

use std::collections::BTreeSet;

use crate::error::ModelError;

pub trait WeightSource {
    /// The tensor `name` as row-major f32 of exactly `shape`.
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError>;
    /// Called once the model is built: fails on tensors that were never taken.
    fn finish(&mut self) -> Result<(), ModelError>;
}

/// Bookkeeping shared by the file-backed sources: which names exist, which were taken.
#[derive(Debug)]
pub struct Ledger {
    pub source_name: String,
    pub available: BTreeSet<String>,
    pub taken: BTreeSet<String>,
    /// Names that may be left over without complaint (tied heads stored anyway, buffers).
    pub ignorable: fn(&str) -> bool,
}

impl Ledger {
    pub fn new(source_name: String, available: BTreeSet<String>) -> Self {
        Self { source_name, available, taken: BTreeSet::new(), ignorable: |_| false }
    }

    pub fn check(&mut self, name: &str, found: &[usize], expected: &[usize]) -> Result<(), ModelError> {
        if !self.available.contains(name) {
            return Err(ModelError::MissingTensor {
                name: name.to_owned(),
                source_name: self.source_name.clone(),
            });
        }
        if found != expected {
            return Err(ModelError::Shape {
                name: name.to_owned(),
                expected: expected.to_vec(),
                found: found.to_vec(),
            });
        }
        self.taken.insert(name.to_owned());
        Ok(())
    }

    pub fn finish(&self) -> Result<(), ModelError> {
        let unused: Vec<&str> = self
            .available
            .difference(&self.taken)
            .map(String::as_str)
            .filter(|n| !(self.ignorable)(n))
            .collect();
        if unused.is_empty() {
            Ok(())
        } else {
            let mut names = unused.iter().take(8).copied().collect::<Vec<_>>().join(", ");
            if unused.len() > 8 {
                names.push_str(&format!(" and {} more", unused.len() - 8));
            }
            Err(ModelError::UnusedTensors { source_name: self.source_name.clone(), names })
        }
    }
}
