//! The seven prompting strategies of the VS paper: how each asks for problems (one file per
//! strategy, prompt text verbatim from the reference implementation), how many items each turn
//! asks for, the JSON schema each can send, how replies become items (`reply`), and post-hoc
//! selection over verbalized distributions (`select`).

mod cot;
mod direct;
mod multi_turn;
pub mod reply;
mod schema;
pub mod select;
mod sequence;
mod text;
mod vs_cot;
mod vs_multi;
mod vs_standard;

use vs_core::{Message, ProbabilityDefinition, Role, Strategy};

use crate::config::GenerateConfig;

/// Bumped whenever a strategy's prompt text, turn plan, schema or reply parsing changes: it
/// enters the identity of the generated problems.
pub const PROMPTS_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq)]
pub struct PromptSpec {
    /// Items per call (1 for Direct and CoT, whatever the config says).
    pub k: usize,
    pub target_words: usize,
    /// VS-Multi: items asked for in the first turn.
    pub samples_per_turn: usize,
    pub probability_definition: ProbabilityDefinition,
    pub probability_tuning: Option<f64>,
}

impl PromptSpec {
    pub fn new(strategy: Strategy, g: &GenerateConfig) -> Self {
        Self {
            k: if matches!(strategy, Strategy::Direct | Strategy::Cot) { 1 } else { g.k },
            target_words: g.target_words,
            samples_per_turn: g.samples_per_turn,
            probability_definition: g
                .probability_definition
                .or(strategy.default_probability_definition())
                .unwrap_or(ProbabilityDefinition::Explicit),
            probability_tuning: g.probability_tuning,
        }
    }
}

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

/// The task prompts built into the binary: `data/prompts/<name>.txt` (see its SOURCES.md).
pub const BUILTIN_TASKS: [(&str, &str); 2] = [
    ("competition_math", include_str!("../../../data/prompts/competition_math.txt")),
    ("gsm8k", include_str!("../../../data/prompts/gsm8k.txt")),
];

/// Where `generate.task`'s text comes from: a built-in task by name, or the user's own file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TaskSource {
    Builtin { name: &'static str, text: &'static str },
    File(std::path::PathBuf),
}

impl TaskSource {
    /// A built-in task's name, else a path to a text file.
    pub fn of(task: &str) -> Self {
        match BUILTIN_TASKS.iter().find(|(name, _)| *name == task) {
            Some(&(name, text)) => TaskSource::Builtin { name, text },
            None => TaskSource::File(task.into()),
        }
    }

    /// Where the text sits: `data/prompts/<name>.txt` in the source tree, or the file.
    pub fn path(&self) -> std::path::PathBuf {
        match self {
            TaskSource::Builtin { name, .. } => {
                std::path::Path::new("data/prompts").join(format!("{name}.txt"))
            }
            TaskSource::File(path) => path.clone(),
        }
    }

    /// The prompt, trailing newlines trimmed and nothing else.
    pub fn text(&self) -> std::io::Result<String> {
        let text = match self {
            TaskSource::Builtin { text, .. } => (*text).to_owned(),
            TaskSource::File(path) => std::fs::read_to_string(path)
                .map_err(|e| std::io::Error::new(e.kind(), format!("task prompt {}: {e}", path.display())))?,
        };
        Ok(text.trim_end_matches(['\n', '\r']).to_owned())
    }
}

/// The task (user) prompt `generate.task` names (see [`TaskSource`]).
pub fn task_prompt(task: &str) -> std::io::Result<String> {
    TaskSource::of(task).text()
}
