//! Direct: one item per call, the baseline the paper shows collapsing onto typical answers.

use super::PromptSpec;
use super::text;

pub fn system_prompt(spec: &PromptSpec) -> String {
    text::head_base(spec)
}
