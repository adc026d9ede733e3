//! The pipeline's stages: the trait each implements (`stage`), one file per stage in this
//! folder, and the registry of those that exist. Stage names and flow order are `vs_core`'s.

pub mod arms;
pub mod dedup;
pub mod error;
pub mod evaluate;
pub mod generate;
pub mod grading;
pub mod llm_session;
pub mod report;
pub mod solve;
pub mod stage;
pub mod train;
pub mod verify;

pub use error::{Rerun, StageError};
pub use llm_session::{CallMeter, Failures, LlmSession, llm_client};
pub use stage::{Stage, StageContext, StageOutput, device, strategy_identities};

/// The stages built so far. A stage of [`StageName::FLOW`] missing here makes the runner stop
/// with "not implemented yet" rather than fake its outputs.
pub fn implemented() -> Vec<Box<dyn Stage>> {
    vec![
        Box::new(generate::Generate),
        Box::new(solve::Solve),
        Box::new(dedup::Dedup),
        Box::new(verify::Verify),
        Box::new(train::Train),
        Box::new(evaluate::Evaluate),
        Box::new(report::Report),
    ]
}
