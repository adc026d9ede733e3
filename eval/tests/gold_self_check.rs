//! Every benchmark's gold answer must grade as equal to its own solution (MATH500, Minerva) or
//! to itself in a box (OlympiadBench). The second half checks how many gold answers the parser
//! understands structurally (not just as text), and that each parsed one equals itself.

use std::path::Path;

use eval::Benchmark;
use eval::grader::{self, parse::parse_answer};

fn data_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/eval"))
}

fn solutions(benchmark: Benchmark) -> Vec<String> {
    let text = std::fs::read_to_string(data_dir().join(benchmark.file_name())).unwrap();
    text.lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["solution"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[test]
fn math500_and_minerva_solutions_grade_equal_to_their_gold() {
    for b in [Benchmark::Math500, Benchmark::MinervaMath] {
        let problems = b.load(data_dir()).unwrap();
        let sols = solutions(b);
        let failures: Vec<_> = problems
            .iter()
            .zip(&sols)
            .filter(|(p, s)| !grader::grade(&p.gold, s).equal)
            .map(|(p, _)| (p.id.clone(), p.gold.clone()))
            .collect();
        assert!(failures.is_empty(), "{b}: {} solutions not equal to gold: {failures:?}", failures.len());
    }
}

#[test]
fn olympiadbench_gold_equals_itself_boxed() {
    let problems = Benchmark::Olympiadbench.load(data_dir()).unwrap();
    for p in &problems {
        let v = grader::grade(&p.gold, &format!("The answer is \\boxed{{{}}}.", p.gold));
        assert!(v.equal, "olympiadbench {}: `{}` ({})", p.id, p.gold, v.reason);
    }
}

#[test]
fn parsed_gold_answers_equal_themselves_structurally() {
    let mut unparsed = Vec::new();
    let mut total = 0;
    for b in Benchmark::ALL {
        for p in b.load(data_dir()).unwrap() {
            total += 1;
            match parse_answer(&p.gold) {
                Ok(tree) => {
                    assert!(grader::trees_equal(&tree, &tree), "{b} {}: `{}` != itself", p.id, p.gold)
                }
                Err(e) => unparsed.push(format!("{b} {}: `{}`: {e}", p.id, p.gold)),
            }
        }
    }
    eprintln!(
        "{} of {total} gold answers parsed; not parsed:\n{}",
        total - unparsed.len(),
        unparsed.join("\n")
    );
    // Text comparison still grades the rest; this floor catches parser regressions.
    assert!(unparsed.len() * 10 < total, "{} of {total} gold answers failed to parse", unparsed.len());
}
