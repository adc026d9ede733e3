//! The task (user) prompt: a built-in task by name, or the user's own file.

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
