//! The verify stage: the training data of every arm (strategy × curation),
//! `verify/<strategy>/<curation>/train.jsonl`, which the train stage reads.
//!
//! `curated` (ours) reads what dedup kept and votes: answers are grouped into equivalence
//! classes by the grader (`\frac12`, `0.5` and `1/2` are one class); a problem is kept when the
//! largest class holds more than `verify.min_agreement` of the solutions asked for and more
//! than any other class (a tie is no majority). The training pair is the paper's prompt and
//! the first solution of the winning class that stopped on its own (`finish_reason = "stop"`).
//! Rejections, with reason and vote, go to `rejected.jsonl`.
//!
//! `paper` is the paper's protocol exactly (§2 of the reference: "no filtering, deduplication,
//! answer verification or decontamination"): every generated problem whose solver reply has an
//! answer, paired with the first such solution. Only problems without any answer are left out,
//! listed in `rejected.jsonl` as `no_answer`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::solve::SolvedProblem;
use super::{Stage, StageContext, StageError, StageOutput};
use crate::config::{Config, Curation};
use crate::identity::Identify;
use vs_core::StageName;
use vs_core::jsonl::{read_jsonl, write_all};

pub struct Verify;

/// A line of `train.jsonl`: an SFT pair plus where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VerifiedPair {
    pub id: String,
    pub prompt: String,
    pub completion: String,
    pub answer: String,
    /// Share of the solutions in the winning answer class.
    pub agreement: f64,
}

/// A line of `rejected.jsonl`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rejected {
    pub id: String,
    /// `no_answer` (no solution committed to one) or `low_agreement`.
    pub reason: String,
    pub agreement: f64,
    /// Each class's representative answer and size, largest first.
    pub classes: Vec<(String, usize)>,
}

/// Equivalence classes of the answers (indices into `answers`), largest first; ties keep the
/// class formed first.
pub fn answer_classes(answers: &[&str]) -> Vec<Vec<usize>> {
    let mut classes: Vec<Vec<usize>> = Vec::new();
    for (i, a) in answers.iter().enumerate() {
        match classes.iter_mut().find(|c| eval::grader::answers_equal(answers[c[0]], a).equal) {
            Some(c) => c.push(i),
            None => classes.push(vec![i]),
        }
    }
    classes.sort_by_key(|c| std::cmp::Reverse(c.len()));
    classes
}

/// This stage's version: 3 since ties do not pass, the pair's solution stopped on its own, and
/// the arms are strategy × curation.
pub const VERSION: u32 = 3;

/// The vote on one problem: the pair to train on, or why not. Every solution asked for
/// counts: one whose call failed, or which the token budget cut off (`finish_reason =
/// "length"`: its "answer" may be a fragment), agrees with nothing.
pub fn vote(
    problem: &SolvedProblem,
    min_agreement: f64,
    extraction: eval::grader::Extraction,
) -> Result<VerifiedPair, Rejected> {
    let read: Vec<(usize, std::borrow::Cow<'_, str>)> = problem
        .solutions
        .iter()
        .enumerate()
        .filter(|(_, s)| s.finish_reason.as_deref() != Some("length"))
        .filter_map(|(i, s)| eval::grader::extract_answer(&s.text, extraction).map(|a| (i, a)))
        .collect();
    let answered: Vec<(usize, &str)> = read.iter().map(|(i, a)| (*i, a.as_ref())).collect();
    let answers: Vec<&str> = answered.iter().map(|&(_, a)| a).collect();
    let classes = answer_classes(&answers);
    let total = (problem.solutions.len() + problem.failed_calls.len()).max(1);
    let summary: Vec<(String, usize)> = classes.iter().map(|c| (answers[c[0]].to_owned(), c.len())).collect();
    let Some(top) = classes.first() else {
        return Err(Rejected {
            id: problem.id.clone(),
            reason: "no_answer".into(),
            agreement: 0.0,
            classes: summary,
        });
    };
    let agreement = top.len() as f64 / total as f64;
    let tied = classes.get(1).is_some_and(|second| second.len() == top.len());
    if agreement <= min_agreement + 1e-12 || tied {
        return Err(Rejected {
            id: problem.id.clone(),
            reason: if tied { "tie" } else { "low_agreement" }.into(),
            agreement,
            classes: summary,
        });
    }
    let Some(winner) = top
        .iter()
        .map(|&k| answered[k].0)
        .find(|&i| problem.solutions[i].finish_reason.as_deref() == Some("stop"))
    else {
        return Err(Rejected {
            id: problem.id.clone(),
            reason: "no_stopped_solution".into(),
            agreement,
            classes: summary,
        });
    };
    Ok(VerifiedPair {
        id: problem.id.clone(),
        prompt: eval::prompt::math_prompt(&problem.question),
        completion: problem.solutions[winner].text.clone(),
        answer: answers[top[0]].to_owned(),
        agreement,
    })
}

/// The paper's pair for a problem: its first solution with an answer, whatever the others say.
pub fn paper_pair(
    problem: &SolvedProblem,
    extraction: eval::grader::Extraction,
) -> Result<VerifiedPair, Rejected> {
    let total = (problem.solutions.len() + problem.failed_calls.len()).max(1);
    let read: Vec<(&super::solve::Solution, std::borrow::Cow<'_, str>)> = problem
        .solutions
        .iter()
        .filter_map(|s| eval::grader::extract_answer(&s.text, extraction).map(|a| (s, a)))
        .collect();
    let answered = read.len();
    match read.first() {
        Some((s, answer)) => Ok(VerifiedPair {
            id: problem.id.clone(),
            prompt: eval::prompt::math_prompt(&problem.question),
            completion: s.text.clone(),
            answer: answer.to_string(),
            agreement: answered as f64 / total as f64,
        }),
        None => Err(Rejected {
            id: problem.id.clone(),
            reason: "no_answer".into(),
            agreement: 0.0,
            classes: Vec::new(),
        }),
    }
}

impl Stage for Verify {
    fn name(&self) -> StageName {
        StageName::Verify
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn upstream(&self, _config: &Config) -> Vec<StageName> {
        // The paper arm reads the solver's output directly, the curated one dedup's.
        vec![StageName::Solve, StageName::Dedup]
    }

    fn config_slice(&self, id: Identify<'_>) -> Result<serde_json::Value, StageError> {
        let c = id.config;
        Ok(json!({ "verify": c.verify, "strategies": crate::stages::arms::origin_names(c),
                   "grader_version": eval::grader::VERSION, "prompt_version": eval::prompt::VERSION }))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutput, StageError> {
        let min = ctx.config.verify.min_agreement;
        let extraction = ctx.config.verify.extraction;
        let mut output = StageOutput::default();
        for arm in super::arms::arms(ctx.config) {
            let (strategy, curation) = (&arm.origin, arm.curation);
            let input = match curation {
                Curation::Curated => {
                    ctx.run_dir.root().join("dedup").join(strategy.as_str()).join("kept.jsonl")
                }
                Curation::Paper => {
                    ctx.run_dir.root().join("solve").join(strategy.as_str()).join("solutions.jsonl")
                }
            };
            let problems: Vec<SolvedProblem> = read_jsonl(&input)?;
            let (mut kept, mut rejected) = (Vec::new(), Vec::new());
            for p in &problems {
                let verdict = match curation {
                    Curation::Curated => vote(p, min, extraction),
                    Curation::Paper => paper_pair(p, extraction),
                };
                match verdict {
                    Ok(pair) => kept.push(pair),
                    Err(r) => rejected.push(r),
                }
            }
            let dir = ctx.dir.join(arm.path());
            std::fs::create_dir_all(&dir).map_err(|source| StageError::Io { path: dir.clone(), source })?;
            write_all(&dir.join("train.jsonl"), &kept)?;
            write_all(&dir.join("rejected.jsonl"), &rejected)?;
            let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
            for r in &rejected {
                *reasons.entry(r.reason.clone()).or_default() += 1;
            }
            let distinct = answer_classes(&kept.iter().map(|k| k.answer.as_str()).collect::<Vec<_>>()).len();
            output.counts.insert(
                arm.label(),
                json!({ "input": problems.len(), "kept": kept.len(), "rejected": reasons,
                        "distinct_answers": distinct }),
            );
            output.outputs.push(dir.join("train.jsonl"));
            output.outputs.push(dir.join("rejected.jsonl"));
        }
        Ok(output)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stages::solve::Solution;

    const STRICT: eval::grader::Extraction = eval::grader::Extraction::Strict;

    fn problem(answers: &[Option<&str>]) -> SolvedProblem {
        SolvedProblem {
            id: "p".into(),
            strategy: "direct".into(),
            question: "What is 1/2?".into(),
            solutions: answers
                .iter()
                .enumerate()
                .map(|(i, a)| Solution {
                    text: match a {
                        Some(a) => format!("solution {i}: \\boxed{{{a}}}"),
                        None => format!("solution {i}"),
                    },
                    answer: a.map(str::to_owned),
                    completion_tokens: 1,
                    finish_reason: Some("stop".into()),
                })
                .collect(),
            failed_calls: vec![],
            identity: String::new(),
        }
    }

    #[test]
    fn failed_and_truncated_solutions_agree_with_nothing() {
        // 3 of 4 agree: kept at 0.5; a failed call and a truncated one make it 2 of 5.
        let mut p = problem(&[Some("7"), Some("7"), Some("7"), Some("4")]);
        assert_eq!(vote(&p, 0.5, STRICT).unwrap().agreement, 0.75);
        p.failed_calls.push("HTTP 500".into());
        p.solutions[1].finish_reason = Some("length".into());
        let r = vote(&p, 0.5, STRICT).unwrap_err();
        assert_eq!((r.reason.as_str(), r.agreement), ("low_agreement", 0.4));
    }

    #[test]
    fn equivalent_answers_vote_together() {
        let p = problem(&[Some("0.5"), Some("\\frac{1}{2}"), Some("3"), Some("1/2")]);
        let pair = vote(&p, 0.5, STRICT).unwrap();
        assert_eq!((pair.answer.as_str(), pair.agreement), ("0.5", 0.75));
        assert_eq!(pair.completion, "solution 0: \\boxed{0.5}");
        assert!(pair.prompt.starts_with("Question: What is 1/2?\nPlease reason step by step"));
    }

    #[test]
    fn ties_and_exactly_the_threshold_do_not_pass() {
        // Half agreeing is not more than half.
        let half = vote(&problem(&[Some("7"), Some("7"), None, None]), 0.5, STRICT).unwrap_err();
        assert_eq!((half.reason.as_str(), half.agreement), ("low_agreement", 0.5));
        // Two classes of two: no majority, even under a threshold they clear.
        let tie = vote(&problem(&[Some("1"), Some("2"), Some("2"), Some("1")]), 0.25, STRICT).unwrap_err();
        assert_eq!((tie.reason.as_str(), tie.classes[0].1), ("tie", 2));
        // With two solutions, both must agree.
        assert!(vote(&problem(&[Some("7"), Some("8")]), 0.5, STRICT).is_err());
        assert!(vote(&problem(&[Some("7"), Some("7")]), 0.5, STRICT).is_ok());
        assert_eq!(vote(&problem(&[None, None]), 0.5, STRICT).unwrap_err().reason, "no_answer");
    }

    #[test]
    fn the_pair_is_a_solution_that_stopped_on_its_own() {
        let mut p = problem(&[Some("7"), Some("7"), Some("7")]);
        p.solutions[0].finish_reason = Some("content_filter".into());
        assert_eq!(vote(&p, 0.5, STRICT).unwrap().completion, "solution 1: \\boxed{7}");
        for s in &mut p.solutions {
            s.finish_reason = None;
        }
        assert_eq!(vote(&p, 0.5, STRICT).unwrap_err().reason, "no_stopped_solution");
    }

    #[test]
    fn the_paper_keeps_every_answered_problem_unverified() {
        // A split vote the curated arm rejects is kept, with the first answered solution.
        let p = problem(&[None, Some("1"), Some("2")]);
        let pair = paper_pair(&p, STRICT).unwrap();
        assert_eq!((pair.completion.as_str(), pair.answer.as_str()), ("solution 1: \\boxed{1}", "1"));
        assert!(vote(&p, 0.5, STRICT).is_err());
        assert_eq!(paper_pair(&problem(&[None, None]), STRICT).unwrap_err().reason, "no_answer");
    }

    #[test]
    fn the_vote_reads_answers_with_the_configured_extraction() {
        let mut p = problem(&[None, None, None]);
        for (s, text) in p.solutions.iter_mut().zip(["So x = 7.", "This gives 7", "We get $7$."]) {
            s.text = text.into();
        }
        // Nothing boxed: no answer to vote with under the strict reading.
        assert_eq!(vote(&p, 0.5, STRICT).unwrap_err().reason, "no_answer");
        let pair = vote(&p, 0.5, eval::grader::Extraction::MathVerify).unwrap();
        assert_eq!((pair.answer.as_str(), pair.agreement), ("7", 1.0));
        assert_eq!(paper_pair(&p, eval::grader::Extraction::MathVerify).unwrap().answer, "7");
    }
}
