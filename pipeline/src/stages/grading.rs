//! Who grades the evaluate stage's responses (`evaluate.grader`): our grader
//! ([`eval::grader::grade_response`], the one entry point `pipeline grade` uses too), the
//! math-verify package itself (the paper's grader, run as one long-lived subprocess by
//! [`eval::grader::reference::MathVerify`]), or both. With `both`, every record carries both
//! verdicts, math-verify's is the headline (`correct`, as the paper reported), and the report
//! counts the records on which they disagree.
//!
//! A case math-verify could not grade (it raised, timed out or crashed its process) is marked
//! wrong in `correct` (math-verify's own `verify` returns false on a timeout) and its failure is
//! named in the record, so the report counts it; it is never silently a plain "wrong".

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::StageError;
use crate::config::{EvaluateConfig, GraderChoice, MathVerifyConfig};
use eval::grader::reference::{MathVerify, Outcome};

/// The math-verify release the reference must be (pinned in `tools/grader/requirements.txt`);
/// a different one fails the stage at start, since its verdicts would carry another identity.
pub const MATH_VERIFY_PIN: &str = "0.9.0";

/// The pins that decide math-verify's verdicts: (package, handshake key, version), read from
/// `tools/grader/requirements.txt` as built into the binary.
fn pins() -> Vec<(&'static str, &'static str, &'static str)> {
    const REQUIREMENTS: &str = include_str!("../../../tools/grader/requirements.txt");
    let pin = |package: &str| {
        REQUIREMENTS
            .lines()
            .find_map(|l| l.split_whitespace().next()?.strip_prefix(package)?.strip_prefix("=="))
    };
    [("math-verify", "math_verify"), ("latex2sympy2_extended", "latex2sympy2_extended"), ("sympy", "sympy")]
        .into_iter()
        .map(|(package, key)| (package, key, pin(package).unwrap_or("unpinned")))
        .collect()
}

/// One grader's verdict on a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grade {
    /// `native` or `math_verify`.
    pub grader: String,
    /// `grader-3/math_verify` (ours: version and extraction) or `math-verify-0.9.0`.
    pub version: String,
    pub correct: bool,
    pub extracted: Option<String>,
    /// Why the grader gave no verdict (`timeout`, `crashed: ...`, `error: ...`); `correct` is
    /// then false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// A record's grading: the headline verdict and each grader's.
#[derive(Debug, Clone, PartialEq)]
pub struct Graded {
    pub correct: bool,
    pub extracted: Option<String>,
    /// Empty with the native grader alone (its verdict is the headline).
    pub grades: Vec<Grade>,
}

/// One response to grade.
pub struct Item<'a> {
    pub gold: &'a str,
    pub response: &'a str,
    pub problem: &'a str,
}

fn native_version(e: &EvaluateConfig) -> String {
    format!("grader-{}/{}", eval::grader::VERSION, e.extraction.as_str())
}

fn reference_version() -> String {
    format!("math-verify-{MATH_VERIFY_PIN}")
}

/// What the verdicts of `e` come from, e.g. `grader-3/math_verify`,
/// `math-verify-0.9.0` or `grader-3/math_verify+math-verify-0.9.0`: a record graded
/// otherwise is re-graded from its stored response.
pub fn label(e: &EvaluateConfig) -> String {
    match e.grader {
        GraderChoice::Native => native_version(e),
        GraderChoice::MathVerify => reference_version(),
        GraderChoice::Both => format!("{}+{}", native_version(e), reference_version()),
    }
}

/// The graders of one stage run; math-verify's process starts on the first case it grades and
/// serves every target after.
pub struct Graders {
    choice: GraderChoice,
    extraction: eval::grader::Extraction,
    native_version: String,
    label: String,
    settings: MathVerifyConfig,
    reference: Option<MathVerify>,
}

impl Graders {
    pub fn new(e: &EvaluateConfig) -> Self {
        Self {
            choice: e.grader,
            extraction: e.extraction,
            native_version: native_version(e),
            label: label(e),
            settings: e.math_verify.clone().unwrap_or_default(),
            reference: None,
        }
    }

    /// [`label`] of this run's configuration.
    pub fn label(&self) -> &str {
        &self.label
    }

    /// Starts math-verify now if this configuration uses it: a missing interpreter or a wrong
    /// version fails the stage before any model is asked.
    pub fn ready(&mut self) -> Result<(), StageError> {
        if self.choice.uses_math_verify() {
            self.reference()?;
        }
        Ok(())
    }

    /// Whether a stored record must be graded again: graded otherwise, or math-verify gave no
    /// verdict on it (a timeout or crash may not recur).
    pub fn stale(&self, graded_by: &str, grades: &[Grade]) -> bool {
        graded_by != self.label || grades.iter().any(|g| g.failure.is_some())
    }

    fn reference(&mut self) -> Result<&mut MathVerify, StageError> {
        if self.reference.is_none() {
            let s = &self.settings;
            // Validated to at most a day; no panic on a value that was not.
            let timeout = Duration::try_from_secs_f64(s.timeout_s).unwrap_or(Duration::MAX);
            let started = MathVerify::start(&s.python, timeout).map_err(|e| {
                StageError::config(
                    "evaluate.math_verify.python",
                    format!(
                        "{}: evaluate.grader = \"{}\" needs math-verify there: {e}",
                        s.python.display(),
                        self.choice.as_str()
                    ),
                )
            })?;
            // Every verdict carries the pinned release's label, so the environment must be the
            // pinned one: math-verify and the packages that parse and compare for it.
            for (package, key, pin) in pins() {
                let have = started.versions()[key].as_str().unwrap_or("none");
                if have != pin {
                    return Err(StageError::input(
                        &s.python,
                        format!(
                            "has {package} {have}, but the grader is pinned to {package} {pin} \
                             (tools/grader/requirements.txt): rerun `just grader-venv` so every verdict comes \
                             from the pinned environment"
                        ),
                    ));
                }
            }
            tracing::info!("math-verify started: {}", started.versions());
            self.reference = Some(started);
        }
        Ok(self.reference.as_mut().expect("started above"))
    }

    /// Grades `items` in order.
    pub fn grade(&mut self, items: &[Item<'_>]) -> Result<Vec<Graded>, StageError> {
        let native: Vec<eval::grader::Graded> = if self.choice.uses_native() {
            items
                .iter()
                .map(|i| eval::grader::grade_response(i.gold, i.response, Some(i.problem), self.extraction))
                .collect()
        } else {
            Vec::new()
        };
        if !self.choice.uses_math_verify() {
            return Ok(native
                .into_iter()
                .map(|g| Graded { correct: g.verdict.equal, extracted: g.extracted, grades: Vec::new() })
                .collect());
        }
        let pairs: Vec<(&str, &str)> = items.iter().map(|i| (i.gold, i.response)).collect();
        let verdicts = self.reference()?.grade_all(&pairs, &mut |_| {});
        // Given up on: no verdict to store (the stage stops; a rerun grades these again).
        if let Some(why) = verdicts.iter().find_map(|v| match &v.outcome {
            Outcome::Abandoned(why) => Some(why),
            _ => None,
        }) {
            return Err(StageError::GraderStopped {
                python: self.settings.python.clone(),
                why: why.to_string(),
            });
        }
        let mut out = Vec::with_capacity(items.len());
        for (k, v) in verdicts.into_iter().enumerate() {
            let (correct, failure) = match v.outcome {
                Outcome::Correct => (true, None),
                Outcome::Wrong => (false, None),
                Outcome::Error(e) => (false, Some(format!("error: {e}"))),
                Outcome::Timeout => (false, Some("timeout".to_owned())),
                Outcome::Crashed(e) => (false, Some(format!("crashed: {e}"))),
                Outcome::Abandoned(e) => (false, Some(format!("abandoned: {e}"))),
            };
            if let Some(f) = &failure {
                tracing::warn!("math-verify gave no verdict on a case (gold {:?}): {f}", items[k].gold);
            }
            let reference = Grade {
                grader: "math_verify".into(),
                version: reference_version(),
                correct,
                extracted: v.extracted.clone(),
                failure,
            };
            let mut grades = Vec::with_capacity(2);
            if let Some(n) = native.get(k) {
                grades.push(Grade {
                    grader: "native".into(),
                    version: self.native_version.clone(),
                    correct: n.verdict.equal,
                    extracted: n.extracted.clone(),
                    failure: None,
                });
            }
            grades.push(reference);
            out.push(Graded { correct, extracted: v.extracted, grades });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_verdict_deciding_package_is_pinned() {
        let pins = pins();
        assert_eq!(pins[0], ("math-verify", "math_verify", MATH_VERIFY_PIN));
        assert!(
            pins.iter().all(|(_, _, v)| v.chars().next().is_some_and(|c| c.is_ascii_digit())),
            "{pins:?}"
        );
    }

    #[test]
    fn the_pin_is_the_requirements_pin() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../tools/grader/requirements.txt");
        let text = std::fs::read_to_string(path).unwrap();
        let pin = format!("math-verify=={MATH_VERIFY_PIN}");
        assert!(
            text.lines().any(|l| l.split_whitespace().next() == Some(pin.as_str())),
            "{path} does not pin {pin}"
        );
    }

    #[test]
    fn labels_name_every_grader_in_use() {
        let mut e = EvaluateConfig::default();
        let native = format!("grader-{}/math_verify", eval::grader::VERSION);
        assert_eq!(label(&e), native);
        e.grader = GraderChoice::MathVerify;
        assert_eq!(label(&e), "math-verify-0.9.0");
        e.grader = GraderChoice::Both;
        assert_eq!(label(&e), format!("{native}+math-verify-0.9.0"));
    }

    #[test]
    fn native_grading_needs_no_python() {
        let e = EvaluateConfig {
            math_verify: Some(MathVerifyConfig { python: "/nonexistent/python".into(), timeout_s: 1.0 }),
            ..EvaluateConfig::default()
        };
        let mut g = Graders::new(&e);
        let items = [
            Item { gold: "\\frac{1}{2}", response: "so $\\boxed{0.5}$", problem: "q" },
            Item { gold: "3", response: "the answer is 4", problem: "q" },
        ];
        let out = g.grade(&items).unwrap();
        assert_eq!(out.iter().map(|g| g.correct).collect::<Vec<_>>(), [true, false]);
        assert!(out.iter().all(|g| g.grades.is_empty()));
    }

    #[test]
    fn a_missing_interpreter_fails_naming_the_key() {
        let e = EvaluateConfig {
            grader: GraderChoice::Both,
            math_verify: Some(MathVerifyConfig { python: "/nonexistent/python".into(), timeout_s: 1.0 }),
            ..EvaluateConfig::default()
        };
        let err = Graders::new(&e)
            .grade(&[Item { gold: "1", response: "1", problem: "q" }])
            .unwrap_err()
            .to_string();
        assert!(err.contains("evaluate.math_verify.python: /nonexistent/python:"), "{err}");
    }
}
