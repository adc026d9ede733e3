//! Which grader the report's accuracies rest on, and, with `evaluate.grader = "both"`, how
//! often ours and math-verify disagree per evaluated model, with a few examples; with
//! math-verify in use, the cases it could not grade, named.

use std::path::Path;

use super::doc::{DisagreementExample, GraderAgreement, Grading};
use crate::config::{Config, GraderChoice};
use crate::stages::StageError;
use crate::stages::evaluate::EvalRecord;
use vs_core::jsonl::read_jsonl;

/// Examples of disagreement and named failures kept per model.
const EXAMPLES: usize = 3;

/// Every evaluated model folder of the run: (student, model label, folder).
fn models(config: &Config, root: &Path) -> Vec<(String, String, std::path::PathBuf)> {
    let seeds = crate::stages::arms::seeds(config);
    let mut out = Vec::new();
    for student in config.train.students.keys() {
        let dir = root.join("evaluate").join(student);
        if config.evaluate.baseline {
            out.push((student.clone(), "baseline".to_owned(), dir.join("baseline")));
        }
        for source in crate::stages::arms::sources(config) {
            for s in &seeds {
                let label = format!("{}/seed-{s}", source.label());
                out.push((student.clone(), label.clone(), dir.join(label)));
            }
        }
    }
    out
}

/// The grading section: what decided `correct`, and each model's agreement between graders.
pub fn grading(config: &Config, root: &Path, benchmarks: &[&str]) -> Result<Grading, StageError> {
    let e = &config.evaluate;
    let mut out = Grading {
        grader: e.grader.as_str().to_owned(),
        headline: if e.grader.uses_math_verify() { "math_verify" } else { "native" }.to_owned(),
        label: crate::stages::grading::label(e),
        models: Vec::new(),
    };
    if !e.grader.uses_math_verify() {
        return Ok(out);
    }
    for (student, model, dir) in models(config, root) {
        let mut m = GraderAgreement { student, model, ..GraderAgreement::default() };
        let (mut native_right, mut reference_right) = (0usize, 0usize);
        for b in benchmarks {
            let path = dir.join(format!("{b}.jsonl"));
            if !path.exists() {
                continue;
            }
            let records: Vec<EvalRecord> = read_jsonl(&path)?;
            for r in &records {
                let of = |g: &str| r.grades.iter().find(|x| x.grader == g);
                let Some(reference) = of("math_verify") else {
                    return Err(StageError::Inconsistent {
                        path: path.clone(),
                        message: format!(
                            "record {} has no math-verify verdict although evaluate.grader = \"{}\"; \
                             rerun `evaluate` (it re-grades stored responses without asking the model again)",
                            r.id, out.grader
                        ),
                    });
                };
                m.records += 1;
                reference_right += usize::from(reference.correct);
                if let Some(f) = &reference.failure {
                    m.failures += 1;
                    if m.failed.len() < EXAMPLES {
                        // One line of it: a crash's stderr tail would break the report's list.
                        let line: String = f.split_whitespace().collect::<Vec<_>>().join(" ");
                        m.failed.push(format!(
                            "{b}/{}: {}",
                            r.id,
                            line.chars().take(200).collect::<String>()
                        ));
                    }
                }
                let Some(native) = of("native") else { continue };
                native_right += usize::from(native.correct);
                if native.correct != reference.correct {
                    m.disagreements += 1;
                    if native.correct {
                        m.native_only += 1;
                    } else {
                        m.math_verify_only += 1;
                    }
                    if m.examples.len() < EXAMPLES {
                        m.examples.push(DisagreementExample {
                            benchmark: (*b).to_owned(),
                            id: r.id.clone(),
                            gold: r.gold.clone(),
                            native: native.correct,
                            native_extracted: native.extracted.clone(),
                            math_verify: reference.correct,
                            math_verify_extracted: reference.extracted.clone(),
                        });
                    }
                }
            }
        }
        if m.records == 0 {
            continue;
        }
        let n = m.records as f64;
        m.math_verify_accuracy = Some(reference_right as f64 / n);
        if e.grader == GraderChoice::Both {
            m.native_accuracy = Some(native_right as f64 / n);
            m.disagreement_share = Some(m.disagreements as f64 / n);
        }
        out.models.push(m);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StudentConfig;
    use crate::stages::grading::Grade;

    fn grade(grader: &str, correct: bool, failure: Option<&str>) -> Grade {
        Grade {
            grader: grader.into(),
            version: String::new(),
            correct,
            extracted: Some(format!("{grader}-read")),
            failure: failure.map(str::to_owned),
        }
    }

    fn record(id: &str, native: bool, reference: bool, failure: Option<&str>) -> EvalRecord {
        EvalRecord {
            id: id.into(),
            response: "r".into(),
            extracted: None,
            gold: "1".into(),
            correct: reference,
            prompt_tokens: 1,
            completion_tokens: 1,
            finish: "stop".into(),
            identity: String::new(),
            graded_by: String::new(),
            grades: vec![grade("native", native, None), grade("math_verify", reference, failure)],
        }
    }

    #[test]
    fn counts_disagreements_and_failures_per_model() {
        let tmp = tempfile::tempdir().unwrap();
        let text = "[llm.gen]\nprovider = \"openai\"\nbase_url = \"http://localhost:8000/v1\"\nmodel = \"m\"\napi_key_env = \"K\"\n[generate]\nllm = \"gen\"\nstrategies = [\"direct\"]\n[evaluate]\ngrader = \"both\"\n";
        let mut config = crate::config::load_str(text, Path::new("x.toml"), &[]).unwrap().config;
        config.train.students.insert("tiny".into(), StudentConfig { model_path: "m".into() });
        let dir = tmp.path().join("evaluate/tiny/baseline");
        std::fs::create_dir_all(&dir).unwrap();
        let records = [
            record("a", true, true, None),
            record("b", true, false, None),
            record("c", false, true, None),
            record("d", false, false, Some("timeout")),
        ];
        vs_core::jsonl::write_all(&dir.join("math500.jsonl"), &records).unwrap();
        let g = grading(&config, tmp.path(), &["math500"]).unwrap();
        assert_eq!((g.grader.as_str(), g.headline.as_str()), ("both", "math_verify"));
        let [m] = &g.models[..] else { panic!("{:?}", g.models) };
        assert_eq!((m.records, m.disagreements, m.native_only, m.math_verify_only), (4, 2, 1, 1));
        assert_eq!(
            (m.native_accuracy, m.math_verify_accuracy, m.disagreement_share),
            (Some(0.5), Some(0.5), Some(0.5))
        );
        assert_eq!((m.failures, m.failed.as_slice()), (1, &["math500/d: timeout".to_owned()][..]));
        assert_eq!(m.examples.len(), 2);
        assert_eq!(m.examples[0].native_extracted.as_deref(), Some("native-read"));

        // A record graded without math-verify under a config that asks for it: rerun evaluate.
        vs_core::jsonl::write_all(
            &dir.join("math500.jsonl"),
            &[EvalRecord { grades: vec![], ..records[0].clone() }],
        )
        .unwrap();
        let err = grading(&config, tmp.path(), &["math500"]).unwrap_err().to_string();
        assert!(err.contains("has no math-verify verdict") && err.contains("rerun `evaluate`"), "{err}");

        // Native alone: no section.
        config.evaluate.grader = GraderChoice::Native;
        assert!(grading(&config, tmp.path(), &["math500"]).unwrap().models.is_empty());
    }
}
