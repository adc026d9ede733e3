//! The seven prompting strategies of the VS paper: how each asks for problems (one file per
//! strategy, prompt text verbatim from the reference implementation), how many items each turn
//! asks for, the JSON schema each can send, how replies become items (`reply`), and post-hoc
//! selection over verbalized distributions (`select`). Their names are `vs_core::Strategy`;
//! a new strategy is a variant there and a file here, dispatched in `prompting`.

mod cot;
mod direct;
mod multi_turn;
mod prompting;
pub mod reply;
mod schema;
pub mod select;
mod sequence;
mod spec;
mod task;
mod text;
mod vs_cot;
mod vs_multi;
mod vs_standard;

pub use prompting::Prompting;
pub use select::{SelectionConfig, SelectionMode};
pub use spec::PromptSpec;
pub use task::{BUILTIN_TASKS, TaskSource, task_prompt};

/// Bumped whenever a strategy's prompt text, turn plan, schema or reply parsing changes: it
/// enters the identity of the generated problems.
pub const PROMPTS_VERSION: u32 = 1;
