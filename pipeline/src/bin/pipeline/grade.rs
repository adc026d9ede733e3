//! `pipeline grade`: answers graded as the evaluate stage grades them, from a JSONL file or one
//! --gold/--pred pair.

use std::path::PathBuf;

use clap::Args;

#[derive(Args)]
pub struct GradeArgs {
    /// JSONL with string fields `gold` and `pred` (and optionally `problem`; `-` reads standard
    /// input); writes each record with `equal`, `extracted` and `extraction` added.
    #[arg(long, conflicts_with_all = ["gold", "pred"], required_unless_present = "gold")]
    input: Option<PathBuf>,
    /// The gold answer (with --pred).
    #[arg(long, requires = "pred")]
    gold: Option<String>,
    /// A bare answer or a whole response; the answer is extracted first.
    #[arg(long, requires = "gold")]
    pred: Option<String>,
    /// The problem text (with --pred): an answer that merely restates one of its expressions is
    /// no answer, as in the evaluate stage. In a file, a record's `problem` field.
    #[arg(long, requires = "pred")]
    problem: Option<String>,
    /// How the answer is read from the response, as `evaluate.extraction`: `math_verify` (the
    /// paper's grader's extraction, the evaluate stage's default) or `strict` (boxed answers and
    /// "final answer is" phrases only).
    #[arg(long, default_value = "math_verify", value_parser = parse_extraction)]
    extraction: eval::grader::Extraction,
}

fn parse_extraction(s: &str) -> Result<eval::grader::Extraction, String> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| format!("`{s}`: expected `math_verify` or `strict`"))
}

pub fn grade(args: &GradeArgs) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let written = match (&args.input, &args.gold, &args.pred) {
        (Some(path), _, _) => {
            let lines = pipeline::grade_file::grade_file(path, args.extraction)?;
            lines.iter().try_for_each(|l| writeln!(out, "{l}"))
        }
        (None, Some(gold), Some(pred)) => {
            // The evaluate stage's own entry point and extraction option.
            let g = eval::grader::grade_response(gold, pred, args.problem.as_deref(), args.extraction);
            let json = serde_json::json!({ "equal": g.verdict.equal, "extracted": g.extracted,
                                           "reason": g.verdict.reason, "extraction": args.extraction });
            writeln!(out, "{json}")
        }
        _ => unreachable!("clap requires --input or both --gold and --pred"),
    };
    match written {
        // `pipeline grade ... | head` is not an error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
