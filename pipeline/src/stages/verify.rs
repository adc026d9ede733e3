//! The verify stage: a majority vote over each problem's solutions using the grader's answer
//! equivalence. Answers are grouped into equivalence classes (`\frac12`, `0.5` and `1/2` are one
//! class); a problem is kept when the largest class holds at least `verify.min_agreement` of its
//! solutions. The training pair is the paper's prompt and the first solution of the winning
//! class: `verify/<strategy>/train.jsonl`, which the train stage reads. Rejections, with
//! reason and vote, go to `rejected.jsonl`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::jsonl::{read_jsonl, write_all};
use super::solve::SolvedProblem;
use super::{Stage, StageContext, StageError, StageName, StageOutput};
use crate::identity::Identify;

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

/// This stage's version: 2 since failed and truncated solutions vote against.
pub const VERSION: u32 = 2;

/// The vote on one problem: the pair to train on, or why not. Every solution asked for
/// counts: one whose call failed, or which the token budget cut off (`finish_reason =
/// "length"`: its "answer" may be a fragment), agrees with nothing.
pub fn vote(problem: &SolvedProblem, min_agreement: f64) -> Result<VerifiedPair, Rejected> {
    let answered: Vec<(usize, &str)> = problem
        .solutions
        .iter()
        .enumerate()
        .filter(|(_, s)| s.finish_reason.as_deref() != Some("length"))
        .filter_map(|(i, s)| s.answer.as_deref().map(|a| (i, a)))
        .collect();
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
    if agreement + 1e-12 < min_agreement {
        return Err(Rejected {
            id: problem.id.clone(),
            reason: "low_agreement".into(),
            agreement,
            classes: summary,
        });
    }
    let winner = answered[top[0]].0;
    Ok(VerifiedPair {
        id: problem.id.clone(),
        prompt: eval::prompt::math_prompt(&problem.question),
        completion: problem.solutions[winner].text.clone(),
        answer: answers[top[0]].to_owned(),
        agreement,
    })
}

impl Stage for Verify {
    fn name(&self) -> StageName {
        StageName::Verify
    }

    fn version(&self) -> u32 {
        VERSION
    }

    fn config_slice(&self, id: Identify<'_>) -> Result<serde_json::Value, StageError> {
        let c = id.config;
        Ok(json!({ "verify": c.verify, "strategies": c.generate.strategies,
                   "grader_version": eval::grader::VERSION, "prompt_version": eval::prompt::VERSION }))
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutput, StageError> {
        let min = ctx.config.verify.min_agreement;
        let mut output = StageOutput::default();
        for &strategy in &ctx.config.generate.strategies {
            let input = ctx.run_dir.root().join("dedup").join(strategy.as_str()).join("kept.jsonl");
            let problems: Vec<SolvedProblem> = read_jsonl(&input)?;
            let (mut kept, mut rejected) = (Vec::new(), Vec::new());
            for p in &problems {
                match vote(p, min) {
                    Ok(pair) => kept.push(pair),
                    Err(r) => rejected.push(r),
                }
            }
            let dir = ctx.dir.join(strategy.as_str());
            std::fs::create_dir_all(&dir).map_err(|source| StageError::Io { path: dir.clone(), source })?;
            write_all(&dir.join("train.jsonl"), &kept)?;
            write_all(&dir.join("rejected.jsonl"), &rejected)?;
            let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
            for r in &rejected {
                *reasons.entry(r.reason.clone()).or_default() += 1;
            }
            let distinct = answer_classes(&kept.iter().map(|k| k.answer.as_str()).collect::<Vec<_>>()).len();
            output.counts.insert(
                strategy.as_str().to_owned(),
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
    use crate::strategy::Strategy;

    fn problem(answers: &[Option<&str>]) -> SolvedProblem {
        SolvedProblem {
            id: "p".into(),
            strategy: Strategy::Direct,
            question: "What is 1/2?".into(),
            solutions: answers
                .iter()
                .enumerate()
                .map(|(i, a)| Solution {
                    text: format!("solution {i}"),
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
        // 2 of 4 agree: kept at 0.5; a failed call makes it 2 of 5.
        let mut p = problem(&[Some("7"), Some("7"), Some("3"), Some("4")]);
        assert_eq!(vote(&p, 0.5).unwrap().agreement, 0.5);
        p.failed_calls.push("HTTP 500".into());
        let r = vote(&p, 0.5).unwrap_err();
        assert_eq!((r.reason.as_str(), r.agreement), ("low_agreement", 0.4));
        // A truncated solution's boxed fragment does not vote.
        let mut p = problem(&[Some("7"), Some("7"), Some("3"), Some("4")]);
        p.solutions[1].finish_reason = Some("length".into());
        assert_eq!(vote(&p, 0.5).unwrap_err().agreement, 0.25);
    }

    #[test]
    fn equivalent_answers_vote_together() {
        let p = problem(&[Some("0.5"), Some("\\frac{1}{2}"), Some("3"), Some("1/2")]);
        let pair = vote(&p, 0.5).unwrap();
        assert_eq!((pair.answer.as_str(), pair.agreement), ("0.5", 0.75));
        assert_eq!(pair.completion, "solution 0");
        assert!(pair.prompt.starts_with("Question: What is 1/2?\nPlease reason step by step"));
    }

    #[test]
    fn split_votes_and_missing_answers_are_rejected() {
        let split = vote(&problem(&[Some("1"), Some("2"), Some("3"), Some("1")]), 0.75).unwrap_err();
        assert_eq!((split.reason.as_str(), split.agreement), ("low_agreement", 0.5));
        assert_eq!(split.classes[0], ("1".to_owned(), 2));
        // Half the solutions agreeing meets the default 0.5; unanswered ones count against.
        assert!(vote(&problem(&[Some("7"), Some("7"), None, None]), 0.5).is_ok());
        assert!(vote(&problem(&[Some("7"), None, None, None]), 0.5).is_err());
        let none = vote(&problem(&[None, None]), 0.5).unwrap_err();
        assert_eq!(none.reason, "no_answer");
    }
}
