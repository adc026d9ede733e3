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

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::GenerateConfig;

/// Bumped whenever a strategy's prompt text, turn plan, schema or reply parsing changes: it
/// enters the identity of the generated problems.
pub const PROMPTS_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Direct,
    Cot,
    Sequence,
    MultiTurn,
    VsStandard,
    VsCot,
    VsMulti,
}

impl Strategy {
    pub const ALL: [Strategy; 7] = [
        Strategy::Direct,
        Strategy::Cot,
        Strategy::Sequence,
        Strategy::MultiTurn,
        Strategy::VsStandard,
        Strategy::VsCot,
        Strategy::VsMulti,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Direct => "direct",
            Strategy::Cot => "cot",
            Strategy::Sequence => "sequence",
            Strategy::MultiTurn => "multi_turn",
            Strategy::VsStandard => "vs_standard",
            Strategy::VsCot => "vs_cot",
            Strategy::VsMulti => "vs_multi",
        }
    }

    /// Whether the model verbalizes a probability (or other score) per item.
    pub fn is_verbalized(self) -> bool {
        matches!(self, Strategy::VsStandard | Strategy::VsCot | Strategy::VsMulti)
    }

    /// The paper's probability field per strategy (ablation H.3): `explicit` for VS-Standard
    /// and VS-CoT, `confidence` for VS-Multi; `None` for strategies that verbalize none.
    pub fn default_probability_definition(self) -> Option<ProbabilityDefinition> {
        match self {
            Strategy::VsStandard | Strategy::VsCot => Some(ProbabilityDefinition::Explicit),
            Strategy::VsMulti => Some(ProbabilityDefinition::Confidence),
            _ => None,
        }
    }
}

/// What shapes a strategy's prompts, resolved from `[generate]` for one strategy.
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
        }
    }
}

/// One chat message, as sent to any OpenAI-compatible endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

impl Message {
    pub fn new(role: Role, content: impl Into<String>) -> Self {
        Self { role, content: content.into() }
    }
}

impl Strategy {
    /// The system prompt: method head plus format block (vs-prompts.md §2).
    pub fn system_prompt(self, spec: &PromptSpec) -> String {
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
    pub fn first_messages(self, spec: &PromptSpec, task_prompt: &str) -> Vec<Message> {
        vec![Message::new(Role::System, self.system_prompt(spec)), Message::new(Role::User, task_prompt)]
    }

    /// Items each turn of one conversation asks for; their sum is the items per conversation.
    pub fn turns(self, spec: &PromptSpec) -> Vec<usize> {
        match self {
            Strategy::Direct | Strategy::Cot => vec![1],
            Strategy::Sequence | Strategy::VsStandard | Strategy::VsCot => vec![spec.k],
            Strategy::MultiTurn => vec![1; spec.k],
            Strategy::VsMulti => vs_multi::turns(spec),
        }
    }

    /// The user message of a later turn asking for `n` more items (multi-turn strategies only).
    pub fn continue_prompt(self, n: usize) -> Option<String> {
        match self {
            Strategy::MultiTurn => Some(multi_turn::CONTINUE.to_owned()),
            Strategy::VsMulti => Some(vs_multi::continue_prompt(n)),
            _ => None,
        }
    }

    /// How a reply appears in the history of the turns after it (vs-prompts.md §0): the raw
    /// text for Multi-turn, the Python repr of the parsed items for VS-Multi.
    pub fn history_content(self, raw_reply: &str, items: &[reply::Item]) -> String {
        match self {
            Strategy::VsMulti => vs_multi::history_content(items),
            _ => raw_reply.to_owned(),
        }
    }

    /// The `response_format` to send when the endpoint supports JSON schemas; `None` for the
    /// free-text strategies.
    pub fn response_schema(self, spec: &PromptSpec) -> Option<serde_json::Value> {
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

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the prompt asks the model to score each item (`vs-prompts.md`, probability definitions).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbabilityDefinition {
    Explicit,
    Implicit,
    Relative,
    Percentage,
    Confidence,
    Perplexity,
    Nll,
}
