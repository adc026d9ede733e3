//! The model's own chat template, rendered with minijinja configured as transformers
//! configures jinja2 (`trim_blocks`, `lstrip_blocks`, `raise_exception`, `strftime_now`,
//! Python string methods through `minijinja_contrib::pycompat`).

use minijinja::{Environment, Error, ErrorKind, context};
use serde::{Deserialize, Serialize};

use crate::error::ModelError;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub role: String,
    pub content: String,
}

impl ChatMessage {
    pub fn new(role: &str, content: &str) -> Self {
        Self { role: role.to_owned(), content: content.to_owned() }
    }
}

#[derive(Clone)]
pub struct ChatTemplate {
    source: String,
    env: Environment<'static>,
    bos: String,
    eos: String,
}

impl ChatTemplate {
    pub fn new(source: &str, bos: Option<String>, eos: Option<String>) -> Result<Self, ModelError> {
        let mut env = Environment::new();
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_unknown_method_callback(minijinja_contrib::pycompat::unknown_method_callback);
        env.add_function("raise_exception", |message: String| -> Result<String, Error> {
            Err(Error::new(ErrorKind::InvalidOperation, message))
        });
        env.add_function("strftime_now", |format: String| -> String { strftime_now(&format) });
        env.add_template_owned("chat", source.to_owned())
            .map_err(|e| ModelError::Template(format!("cannot parse: {e:#}")))?;
        Ok(Self {
            source: source.to_owned(),
            env,
            bos: bos.unwrap_or_default(),
            eos: eos.unwrap_or_default(),
        })
    }

    /// The template with the tokenizer's `bos_token` and `eos_token`.
    pub fn for_tokenizer(source: &str, tokenizer: &crate::text::Tokenizer) -> Result<Self, ModelError> {
        Self::new(source, tokenizer.special_text(tokenizer.bos), tokenizer.special_text(tokenizer.eos))
    }

    /// The Jinja source, as the model shipped it.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The prompt text for `messages`, ending with the assistant header when
    /// `add_generation_prompt`.
    pub fn render(
        &self,
        messages: &[ChatMessage],
        add_generation_prompt: bool,
    ) -> Result<String, ModelError> {
        let template = self.env.get_template("chat").expect("added in new");
        template
            .render(context! {
                messages => messages,
                add_generation_prompt => add_generation_prompt,
                bos_token => self.bos,
                eos_token => self.eos,
            })
            .map_err(|e| ModelError::Template(format!("cannot render: {e:#}")))
    }
}

/// Today's date for templates that print it (Llama 3.1: `strftime_now("%d %b %Y")`).
fn strftime_now(format: &str) -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    const MONTHS: [&str; 12] =
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    const FULL: [&str; 12] = [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ];
    format
        .replace("%d", &format!("{d:02}"))
        .replace("%m", &format!("{m:02}"))
        .replace("%Y", &y.to_string())
        .replace("%B", FULL[(m - 1) as usize])
        .replace("%b", MONTHS[(m - 1) as usize])
}

/// Days since 1970-01-01 to (year, month, day) (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_454), (2026, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    // Qwen-style templates lean on Python string methods and loop controls.
    #[test]
    fn python_methods_and_exceptions() {
        let t = ChatTemplate::new(
            "{% for m in messages %}{% if m.role not in ['user', 'assistant'] %}{{ raise_exception('bad role ' + m.role) }}{% endif %}\
             <|{{ m.role }}|>{{ m.content.split('</think>')[-1].strip() }}{% endfor %}\
             {% if add_generation_prompt %}<|assistant|>{% endif %}",
            None,
            None,
        )
        .unwrap();
        let out = t.render(
            &[ChatMessage::new("user", "  hi  "), ChatMessage::new("assistant", "x</think> ok")],
            true,
        );
        assert_eq!(out.unwrap(), "<|user|>hi<|assistant|>ok<|assistant|>");
        let err = t.render(&[ChatMessage::new("tool", "x")], false).unwrap_err().to_string();
        assert!(err.contains("bad role tool"), "{err}");
    }
}
