//! How each strategy prompts, dispatched to its own file.

use vs_core::{Message, Role, Strategy};

use super::spec::PromptSpec;
use super::{cot, direct, multi_turn, reply, sequence, vs_cot, vs_multi, vs_standard};

/// How each strategy prompts (one file per strategy in this folder): the strategies' names
/// live in `vs_core`, what they say lives here.
pub trait Prompting {
    fn system_prompt(self, spec: &PromptSpec) -> String;
    fn first_messages(self, spec: &PromptSpec, task_prompt: &str) -> Vec<Message>;
    fn turns(self, spec: &PromptSpec) -> Vec<usize>;
    fn continue_prompt(self, n: usize) -> Option<String>;
    fn history_content(self, raw_reply: &str, items: &[reply::Item]) -> String;
    fn response_schema(self, spec: &PromptSpec) -> Option<serde_json::Value>;
}

impl Prompting for Strategy {
    /// The system prompt: method head plus format block (vs-prompts.md §2).
    fn system_prompt(self, spec: &PromptSpec) -> String {
        match self {
            Strategy::Direct => direct::system_prompt(spec),
            Strategy::Cot => cot::system_prompt(spec),
            Strategy::Sequence => sequence::system_prompt(spec),
            Strategy::MultiTurn => multi_turn::system_prompt(spec),
            Strategy::VsStandard => vs_standard::system_prompt(spec),
            Strategy::VsCot => vs_cot::system_prompt(spec),
            Strategy::VsMulti => vs_multi::system_prompt(spec),
        }
    }

    /// The first turn: system prompt and the task prompt.
    fn first_messages(self, spec: &PromptSpec, task_prompt: &str) -> Vec<Message> {
        vec![Message::new(Role::System, self.system_prompt(spec)), Message::new(Role::User, task_prompt)]
    }

    /// Items each turn of one conversation asks for; their sum is the items per conversation.
    fn turns(self, spec: &PromptSpec) -> Vec<usize> {
        match self {
            Strategy::Direct | Strategy::Cot => vec![1],
            Strategy::Sequence | Strategy::VsStandard | Strategy::VsCot => vec![spec.k],
            Strategy::MultiTurn => vec![1; spec.k],
            Strategy::VsMulti => vs_multi::turns(spec),
        }
    }

    /// The user message of a later turn asking for `n` more items (multi-turn strategies only).
    fn continue_prompt(self, n: usize) -> Option<String> {
        match self {
            Strategy::MultiTurn => Some(multi_turn::CONTINUE.to_owned()),
            Strategy::VsMulti => Some(vs_multi::continue_prompt(n)),
            _ => None,
        }
    }

    /// How a reply appears in the history of the turns after it (vs-prompts.md §0): the raw
    /// text for Multi-turn, the Python repr of the parsed items for VS-Multi.
    fn history_content(self, raw_reply: &str, items: &[reply::Item]) -> String {
        match self {
            Strategy::VsMulti => vs_multi::history_content(items),
            _ => raw_reply.to_owned(),
        }
    }

    /// The `response_format` to send when the endpoint supports JSON schemas; `None` for the
    /// free-text strategies.
    fn response_schema(self, spec: &PromptSpec) -> Option<serde_json::Value> {
        match self {
            Strategy::Direct | Strategy::MultiTurn => None,
            Strategy::Cot => Some(cot::response_schema()),
            Strategy::Sequence => Some(sequence::response_schema()),
            Strategy::VsStandard => Some(vs_standard::response_schema(spec)),
            Strategy::VsCot => Some(vs_cot::response_schema(spec)),
            Strategy::VsMulti => Some(vs_multi::response_schema(spec)),
        }
    }
}
