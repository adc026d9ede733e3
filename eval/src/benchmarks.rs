//! The three evaluation benchmarks, vendored unchanged in `data/eval/` (see its `SOURCES.md`).
//! Loading checks each file against its pinned sha256 and turns every row into a [`Problem`]
//! with the gold answer the paper's protocol grades against.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::grader::extract::last_boxed;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Benchmark {
    Math500,
    Olympiadbench,
    MinervaMath,
}

impl Benchmark {
    pub const ALL: [Benchmark; 3] = [Benchmark::Math500, Benchmark::Olympiadbench, Benchmark::MinervaMath];

    pub fn as_str(self) -> &'static str {
        match self {
            Benchmark::Math500 => "math500",
            Benchmark::Olympiadbench => "olympiadbench",
            Benchmark::MinervaMath => "minerva_math",
        }
    }

    pub fn file_name(self) -> String {
        format!("{}.jsonl", self.as_str())
    }

    /// sha256 of the vendored file (`data/eval/SOURCES.md`).
    pub fn sha256(self) -> &'static str {
        match self {
            Benchmark::Math500 => "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132",
            Benchmark::Olympiadbench => "bb8c1e38a16ea9eacb77530315a674d883f267fbff79183effc53681b4fcc416",
            Benchmark::MinervaMath => "0e656b430d3a0a1dab6aa853f453ba3805e28e2cabe4fc72486a897cc09d8ba2",
        }
    }

    /// The vendored file as built into the binary, so that a run finds its benchmarks from
    /// any working directory.
    pub fn embedded(self) -> &'static str {
        match self {
            Benchmark::Math500 => include_str!("../../data/eval/math500.jsonl"),
            Benchmark::Olympiadbench => include_str!("../../data/eval/olympiadbench.jsonl"),
            Benchmark::MinervaMath => include_str!("../../data/eval/minerva_math.jsonl"),
        }
    }

    /// Where the vendored file sits in the source tree (`data/eval/<name>.jsonl`): the name
    /// errors and manifests give the embedded copy.
    pub fn vendored_path(self) -> PathBuf {
        Path::new("data/eval").join(self.file_name())
    }

    /// The built-in copy (checked against its sha256 like a file: a build from a changed
    /// checkout is refused, not silently graded against other answers).
    pub fn load_embedded(self) -> Result<Vec<Problem>, BenchmarkError> {
        let path = self.vendored_path();
        let text = self.embedded();
        let got = vs_core::digest::sha256_hex(text.as_bytes());
        if got != self.sha256() {
            return Err(BenchmarkError::Checksum { path, expected: self.sha256(), got });
        }
        self.parse(text, &path)
    }

    /// Loads `<dir>/<name>.jsonl` after checking its sha256.
    pub fn load(self, dir: &Path) -> Result<Vec<Problem>, BenchmarkError> {
        let path = dir.join(self.file_name());
        let bytes =
            std::fs::read(&path).map_err(|source| BenchmarkError::Io { path: path.clone(), source })?;
        let got = vs_core::digest::sha256_hex(&bytes);
        if got != self.sha256() {
            return Err(BenchmarkError::Checksum { path, expected: self.sha256(), got });
        }
        let text = std::str::from_utf8(&bytes).map_err(|e| BenchmarkError::Line {
            path: path.clone(),
            line: 0,
            message: format!("not UTF-8: {e}"),
        })?;
        self.parse(text, &path)
    }

    /// Parses JSONL text in this benchmark's format; `path` is only used in errors.
    pub fn parse(self, text: &str, path: &Path) -> Result<Vec<Problem>, BenchmarkError> {
        let mut out = Vec::new();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let err = |message: String| BenchmarkError::Line { path: path.to_owned(), line: i + 1, message };
            let problem = match self {
                Benchmark::Math500 => {
                    let r: Math500Row = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
                    Problem { id: r.unique_id, problem: r.problem, gold: r.answer, unit: None }
                }
                Benchmark::Olympiadbench => {
                    let r: OlympiadRow = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
                    let gold = r
                        .final_answer
                        .into_iter()
                        .next()
                        .ok_or_else(|| err("`final_answer` is empty".into()))?;
                    Problem { id: r.id.to_string(), problem: r.question, gold, unit: r.unit }
                }
                Benchmark::MinervaMath => {
                    let r: MinervaRow = serde_json::from_str(line).map_err(|e| err(e.to_string()))?;
                    let gold = last_boxed(&r.solution)
                        .ok_or_else(|| err("`solution` has no \\boxed{} answer".into()))?
                        .to_owned();
                    Problem { id: r.idx.to_string(), problem: r.problem, gold, unit: None }
                }
            };
            out.push(problem);
        }
        Ok(out)
    }
}

impl fmt::Display for Benchmark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown benchmark `{0}`; expected math500, olympiadbench or minerva_math")]
pub struct UnknownBenchmark(String);

impl FromStr for Benchmark {
    type Err = UnknownBenchmark;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|b| b.as_str() == s.trim()).ok_or_else(|| UnknownBenchmark(s.to_owned()))
    }
}

/// One benchmark problem.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// The upstream id: MATH500 `unique_id`, OlympiadBench `id`, Minerva `idx`.
    pub id: String,
    pub problem: String,
    /// MATH500 `answer`; OlympiadBench `final_answer[0]` (may list several answers, in `$...$`);
    /// Minerva: the last `\boxed{}` of `solution`.
    pub gold: String,
    /// OlympiadBench's `unit`, when the answer has one.
    pub unit: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum BenchmarkError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: sha256 is {got}, expected {expected}: the file is not the vendored copy (see data/eval/SOURCES.md)", path.display())]
    Checksum { path: PathBuf, expected: &'static str, got: String },
    #[error("{}:{line}: {message}", path.display())]
    Line { path: PathBuf, line: usize, message: String },
}

#[derive(Deserialize)]
struct Math500Row {
    problem: String,
    answer: String,
    unique_id: String,
}

#[derive(Deserialize)]
struct OlympiadRow {
    id: u64,
    question: String,
    final_answer: Vec<String>,
    unit: Option<String>,
}

#[derive(Deserialize)]
struct MinervaRow {
    problem: String,
    solution: String,
    idx: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/eval")
    }

    #[test]
    fn vendored_files_load_in_full() {
        let dir = data_dir();
        let math = Benchmark::Math500.load(&dir).unwrap();
        let olympiad = Benchmark::Olympiadbench.load(&dir).unwrap();
        let minerva = Benchmark::MinervaMath.load(&dir).unwrap();
        assert_eq!((math.len(), olympiad.len(), minerva.len()), (500, 675, 272));
        assert_eq!(math[0].id, "test/precalculus/807.json");
        assert_eq!(math[0].gold, "\\left( 3, \\frac{\\pi}{2} \\right)");
        assert_eq!((olympiad[0].id.as_str(), olympiad[0].gold.as_str()), ("1606", "2"));
        assert_eq!(olympiad[1].gold, "$\\frac{1}{2 n+2}$");
        assert_eq!(olympiad.iter().filter(|p| p.unit.is_some()).count(), 8);
        assert_eq!((minerva[0].id.as_str(), minerva[0].gold.as_str()), ("0", "1.6"));
        for set in [&math, &olympiad, &minerva] {
            assert!(set.iter().all(|p| !p.gold.trim().is_empty() && !p.problem.trim().is_empty()));
            let mut ids: Vec<&str> = set.iter().map(|p| p.id.as_str()).collect();
            ids.sort_unstable();
            ids.dedup();
            assert_eq!(ids.len(), set.len(), "ids are unique");
        }
    }

    #[test]
    fn boxed_extraction_recovers_every_math500_answer_from_its_solution() {
        // MATH500's `answer` is the content of the last \boxed{} of `solution` in all 500 rows
        // (SOURCES.md), which makes the rows a test of brace matching on real LaTeX.
        let text = std::fs::read_to_string(data_dir().join("math500.jsonl")).unwrap();
        for (i, line) in text.lines().enumerate() {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            let solution = row["solution"].as_str().unwrap();
            let answer = row["answer"].as_str().unwrap();
            assert_eq!(last_boxed(solution), Some(answer.trim()), "math500.jsonl line {}", i + 1);
        }
    }

    #[test]
    fn the_embedded_copies_are_the_vendored_files() {
        for b in Benchmark::ALL {
            assert_eq!(b.load_embedded().unwrap(), b.load(&data_dir()).unwrap(), "{b}");
            assert_eq!(b.vendored_path(), Path::new("data/eval").join(b.file_name()));
        }
    }

    #[test]
    fn a_changed_file_is_refused_by_checksum() {
        let tmp = tempfile::tempdir().unwrap();
        let original = std::fs::read_to_string(data_dir().join("math500.jsonl")).unwrap();
        std::fs::write(tmp.path().join("math500.jsonl"), original.replacen("polar", "Polar", 1)).unwrap();
        let err = Benchmark::Math500.load(tmp.path()).unwrap_err().to_string();
        assert!(err.contains("math500.jsonl: sha256 is") && err.contains("not the vendored copy"), "{err}");
        let err = Benchmark::Math500.load(Path::new("/nonexistent")).unwrap_err().to_string();
        assert!(err.starts_with("/nonexistent/math500.jsonl: "), "{err}");
    }

    #[test]
    fn malformed_rows_name_file_and_line() {
        let p = Path::new("x.jsonl");
        let ok = r#"{"problem": "p", "answer": "1", "unique_id": "a"}"#;
        let err =
            Benchmark::Math500.parse(&format!("{ok}\n{{\"problem\": 3}}\n"), p).unwrap_err().to_string();
        assert!(err.starts_with("x.jsonl:2: invalid type"), "{err}");
        let row = r#"{"problem": "p", "solution": "no box here", "idx": 1}"#;
        let err = Benchmark::MinervaMath.parse(row, p).unwrap_err().to_string();
        assert_eq!(err, "x.jsonl:1: `solution` has no \\boxed{} answer");
        let row = r#"{"id": 1, "question": "q", "final_answer": [], "unit": null}"#;
        let err = Benchmark::Olympiadbench.parse(row, p).unwrap_err().to_string();
        assert_eq!(err, "x.jsonl:1: `final_answer` is empty");
    }

    #[test]
    fn names_round_trip() {
        for b in Benchmark::ALL {
            assert_eq!(b.as_str().parse::<Benchmark>().unwrap(), b);
            assert_eq!(serde_json::to_string(&b).unwrap(), format!("\"{b}\""));
        }
        assert!("math".parse::<Benchmark>().is_err());
    }
}
