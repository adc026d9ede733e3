//! Multi-turn: k turns of one item each; every later turn asks for "one more".

use super::PromptSpec;

/// The first turn is Direct's.
pub fn system_prompt(spec: &PromptSpec) -> String {
    super::direct::system_prompt(spec)
}

pub const CONTINUE: &str = "Generate one more data instance based on the original input prompt.";
