//! How the library tells its caller about progress, without printing: the CLI implements
//! [`Reporter`] with indicatif bars; tests use [`Silent`].

use std::time::Duration;

use crate::manifest::Manifest;
use vs_core::StageName;

pub trait Reporter: Sync {
    fn stage_started(&self, _stage: StageName) {}
    /// The stage's manifest matched: nothing to do.
    fn stage_skipped(&self, _stage: StageName, _manifest: &Manifest) {}
    fn stage_finished(&self, _stage: StageName, _manifest: &Manifest, _took: Duration) {}
    fn stage_failed(&self, _stage: StageName) {}
    /// A bar for `total` units of work inside a stage (calls, problems, steps).
    fn bar(&self, _label: &str, _total: u64) -> Box<dyn Progress> {
        Box::new(Silent)
    }
}

pub trait Progress: Send + Sync {
    fn inc(&self, _n: u64) {}
    fn finish(&self) {}
}

/// Reports nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct Silent;

impl Reporter for Silent {}
impl Progress for Silent {}
