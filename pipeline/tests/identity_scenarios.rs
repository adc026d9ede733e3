//! What reruns when: a run of every stage against the mock server, then for each config change
//! (and each throughput-only change) a copy of that run rerun with the change. Each case
//! asserts exactly which stages ran, which calls were sent, and that no output record carries
//! an old identity; an unchanged rerun after it runs nothing and sends nothing. The first run
//! also checks the stages' golden outputs against their versions.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use common::mock::{self, Calls, Mock};
use pipeline::config;
use pipeline::progress::Silent;
use pipeline::run_dir::RunDir;
use pipeline::runner::{Outcome, RunOptions, Runner};
use pipeline::stages;
use serde_json::Value;
use trainer::model::config::Family;
use vs_core::StageName;
use vs_core::digest::sha256_hex;

const CONFIG: &str = r#"
[run]
name = "base"
out_dir = "@RUNS@"
[llm.gen]
provider = "openai"
base_url = "@URL@"
model = "gen-model"
max_concurrency = 8
[llm.solver]
provider = "openai"
base_url = "@URL@"
model = "solver-model"
[llm.solver2]
provider = "openai"
base_url = "@URL@"
model = "solver-2"
[llm.judge]
provider = "openai"
base_url = "@URL@"
model = "judge"
[generate]
llm = "gen"
strategies = ["direct", "multi_turn"]
num_problems = 4
k = 3
[solve]
llm = "solver"
num_solutions = 2
[dedup.decontaminate]
enabled = false
[dedup.embeddings]
provider = "none"
[train.students.tiny]
model_path = "@STUDENT@"
[train]
epochs = 1
max_steps = 2
batch_size = 4
learning_rate = 0.01
max_seq_len = 96
[evaluate]
llm = "judge"
benchmarks = ["math500"]
# Every target is asked for by the same name: the identical requests must still each be sent.
endpoint_model = "configured"
subset = 2
max_new_tokens = 4
[report]
bootstrap_samples = 50
plots = false
"#;

struct Env {
    tmp: tempfile::TempDir,
    url: String,
    mock: std::sync::Arc<Mock>,
    _runtime: tokio::runtime::Runtime,
}

impl Env {
    fn new() -> Self {
        // Stages read data/ relative to the working directory, as `just run-pipeline` does.
        std::env::set_current_dir(common::root()).unwrap();
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let (mock, url) = runtime.block_on(mock::serve());
        let tmp = tempfile::tempdir().unwrap();
        common::tiny_student(&tmp.path().join("student"), Family::Llama, 3);
        Self { tmp, url, mock, _runtime: runtime }
    }

    fn runs(&self) -> PathBuf {
        self.tmp.path().join("runs")
    }

    fn student(&self) -> PathBuf {
        self.tmp.path().join("student")
    }

    fn config(&self, name: &str, overrides: &[String]) -> config::Config {
        let text = CONFIG
            .replace("@RUNS@", &self.runs().display().to_string())
            .replace("@URL@", &self.url)
            .replace("@STUDENT@", &self.student().display().to_string());
        let mut all = vec![format!("run.name={name}")];
        all.extend(overrides.iter().cloned());
        config::load_str(&text, Path::new("scenario.toml"), &all).unwrap().config
    }

    /// Runs every stage of run `name`: the stages that ran, and the calls the mock answered.
    fn run(&self, name: &str, overrides: &[String], options: &RunOptions) -> (BTreeSet<StageName>, Calls) {
        let cfg = self.config(name, overrides);
        let before = self.mock.calls();
        let dir = RunDir::open(&cfg).unwrap();
        let outcomes = Runner::new(&cfg, &dir, stages::implemented(), &Silent)
            .run(options)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let ran =
            outcomes.into_iter().filter(|(_, o)| matches!(o, Outcome::Ran(_))).map(|(s, _)| s).collect();
        (ran, self.mock.since(before))
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        if name.to_string_lossy().starts_with(".lock") {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

fn records(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn manifest(run: &Path, stage: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(run.join(stage).join("manifest.json")).unwrap()).unwrap()
}

/// Every record of generate, solve and evaluate carries the identity its stage runs under
/// now, and what dedup and verify kept are current problems (for the strategies and targets
/// the config names; folders of ones it no longer names are not read by anything).
fn assert_no_stale_record(run: &Path, case: &str) -> BTreeSet<String> {
    let mut ids = BTreeSet::new();
    let strategies: Vec<String> =
        manifest(run, "generate")["config"]["units"].as_object().unwrap().keys().cloned().collect();
    for (stage, file) in [("generate", "problems.jsonl"), ("solve", "solutions.jsonl")] {
        let m = manifest(run, stage);
        for (strategy, unit) in m["config"]["units"].as_object().unwrap() {
            let identity = pipeline::identity::short(unit);
            let rows = records(&run.join(stage).join(strategy).join(file));
            assert!(!rows.is_empty(), "{case}: {stage}/{strategy} is empty");
            for r in &rows {
                assert_eq!(
                    r["identity"],
                    identity.as_str(),
                    "{case}: stale record in {stage}/{strategy}: {r}"
                );
                if stage == "generate" {
                    ids.insert(r["id"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    for (stage, file) in [("dedup", "kept.jsonl"), ("verify", "curated/train.jsonl")] {
        for strategy in &strategies {
            let path = run.join(stage).join(strategy).join(file);
            for r in records(&path) {
                assert!(
                    ids.contains(r["id"].as_str().unwrap()),
                    "{case}: {} holds a stale problem {r}",
                    path.display()
                );
            }
        }
    }
    let targets: BTreeSet<String> = manifest(run, "evaluate")["counts"]
        .as_object()
        .unwrap()
        .keys()
        .map(|k| k.rsplit_once('/').unwrap().0.to_owned())
        .collect();
    assert_eq!(targets.len(), strategies.len() + 1, "{case}: {targets:?}");
    for target in &targets {
        let target = run.join("evaluate").join(target);
        let about: Value =
            serde_json::from_str(&std::fs::read_to_string(target.join("identity.json")).unwrap()).unwrap();
        for file in std::fs::read_dir(&target).unwrap() {
            let file = file.unwrap().path();
            if file.extension().is_some_and(|e| e == "jsonl") {
                for r in records(&file) {
                    assert_eq!(
                        r["identity"],
                        about["identity"],
                        "{case}: stale record in {}",
                        file.display()
                    );
                }
            }
        }
    }
    ids
}

/// The stages' golden outputs, with the fields that embed identities (which hold the mock's
/// port) left out: a change of output without a change of the stage's version fails.
fn check_golden(run: &Path) {
    let strip = |mut v: Value| {
        for key in ["id", "call_id", "identity", "duplicate_of"] {
            v.as_object_mut().unwrap().remove(key);
        }
        v
    };
    let stages = stages::implemented();
    let version = |name: StageName| stages.iter().find(|s| s.name() == name).unwrap().version();
    let mut current = serde_json::Map::new();
    for (stage, files) in [
        (StageName::Generate, &["problems.jsonl"][..]),
        (StageName::Solve, &["solutions.jsonl"][..]),
        (StageName::Dedup, &["kept.jsonl", "dropped.jsonl"][..]),
        (StageName::Verify, &["curated/train.jsonl", "curated/rejected.jsonl"][..]),
    ] {
        let mut text = String::new();
        for strategy in ["direct", "multi_turn"] {
            for file in files {
                let path = run.join(stage.as_str()).join(strategy).join(file);
                assert!(path.exists(), "{} is missing", path.display());
                for r in records(&path) {
                    text.push_str(&strip(r).to_string());
                    text.push('\n');
                }
            }
        }
        current.insert(
            stage.as_str().to_owned(),
            serde_json::json!({ "version": version(stage), "sha256": sha256_hex(text.as_bytes()) }),
        );
    }
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/stage_outputs.json");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, serde_json::to_string_pretty(&current).unwrap() + "\n").unwrap();
    }
    let golden: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for (stage, now) in &current {
        let then = &golden[stage];
        if then["version"] == now["version"] {
            assert_eq!(
                then["sha256"],
                now["sha256"],
                "stage `{stage}`: its output changed but its version ({}) did not: bump the stage's version, then refresh {} with UPDATE_GOLDEN=1",
                now["version"],
                path.display()
            );
        } else {
            panic!(
                "stage `{stage}`: version {} now, {} in {}: refresh it with UPDATE_GOLDEN=1",
                now["version"],
                then["version"],
                path.display()
            );
        }
    }
}

/// Which kinds of calls a case must send (`Some(n)`: exactly n; `Some(usize::MAX)`: some;
/// `None`: not asserted).
#[derive(Clone, Copy)]
struct Sent {
    generate: Option<usize>,
    solve: Option<usize>,
    evaluate: Option<usize>,
}

const SOME: Option<usize> = Some(usize::MAX);
const NONE_SENT: Sent = Sent { generate: Some(0), solve: Some(0), evaluate: Some(0) };

fn check_sent(case: &str, expected: Sent, got: Calls) {
    for (kind, want, n) in [
        ("generate", expected.generate, got.generate),
        ("solve", expected.solve, got.solve),
        ("evaluate", expected.evaluate, got.evaluate),
    ] {
        match want {
            Some(usize::MAX) => assert!(n > 0, "{case}: expected {kind} calls, got none"),
            Some(w) => assert_eq!(n, w, "{case}: {kind} calls"),
            None => {}
        }
    }
}

/// A change to a copy of the first run: its name, `--set` overrides, what it does to the files
/// the config names, the stages that must run and the calls that must be sent.
type Case = (&'static str, Vec<String>, Option<Box<dyn Fn()>>, Vec<StageName>, Sent);

use StageName::{Dedup as D, Evaluate as E, Generate as G, Report as R, Solve as S, Train as T, Verify as V};

#[test]
fn each_change_reruns_exactly_what_it_affects_and_no_record_is_stale() {
    let env = Env::new();
    let all = RunOptions::default();

    let (ran, calls) = env.run("base", &[], &all);
    assert_eq!(ran.len(), 7, "{ran:?}");
    let base = env.runs().join("base");
    let base_ids = assert_no_stale_record(&base, "base");
    check_golden(&base);
    // Direct and Multi-turn send the very same first request: each arm still gets its own
    // sample, so no Multi-turn problem is a copy of a Direct one.
    let questions = |s: &str| -> BTreeSet<String> {
        records(&base.join(format!("generate/{s}/problems.jsonl")))
            .iter()
            .map(|r| r["question"].as_str().unwrap().to_owned())
            .collect()
    };
    assert!(questions("direct").is_disjoint(&questions("multi_turn")), "Multi-turn reused Direct's replies");
    assert!(calls.generate >= 4 + 4, "{calls:?}");
    // The baseline and both fine-tuned students send byte-identical requests (one served
    // name): each is still asked, none answered from another's cached replies.
    assert_eq!(calls.evaluate, 3 * 2, "{calls:?}");
    // Unchanged: nothing runs, nothing is sent.
    let (ran, calls) = env.run("base", &[], &all);
    assert!(ran.is_empty(), "unchanged rerun ran {ran:?}");
    assert_eq!(calls.total(), 0);

    let student_weights = env.student().join("model.safetensors");
    let student_config = env.student().join("config.json");
    let original_weights = std::fs::read(&student_weights).unwrap();
    let original_config = std::fs::read(&student_config).unwrap();
    let localhost = env.url.replace("127.0.0.1", "localhost");
    let everything = [G, S, D, V, T, E, R];
    let evaluation = [E, R];
    let targets = 3; // baseline + 2 strategies

    let cases: Vec<Case> = vec![
        (
            "generator model",
            vec!["llm.gen.model=\"gen-model-2\"".into()],
            None,
            everything.to_vec(),
            Sent { generate: SOME, solve: SOME, evaluate: SOME },
        ),
        // The mock writes the same problems for these: solving them again replays the cache.
        (
            "generator base URL",
            vec![format!("llm.gen.base_url=\"{localhost}\"")],
            None,
            everything.to_vec(),
            Sent { generate: SOME, solve: None, evaluate: None },
        ),
        (
            "generator temperature",
            vec!["llm.gen.temperature=0.9".into()],
            None,
            everything.to_vec(),
            Sent { generate: SOME, solve: None, evaluate: None },
        ),
        (
            "k",
            vec!["generate.k=4".into()],
            None,
            everything.to_vec(),
            Sent { generate: SOME, solve: None, evaluate: None },
        ),
        // No other strategy's data is generated or solved again; with the budget matched to
        // the smallest arm, the remaining arm may train on more examples and be evaluated anew.
        (
            "strategies",
            vec!["generate.strategies=[\"direct\"]".into()],
            None,
            everything.to_vec(),
            Sent { generate: Some(0), solve: Some(0), evaluate: None },
        ),
        (
            "num_solutions",
            vec!["solve.num_solutions=3".into()],
            None,
            vec![S, D, V, T, E, R],
            Sent { generate: Some(0), solve: SOME, evaluate: None },
        ),
        // The mock's second solver answers like the first: new solve records (another
        // identity), the same training pairs, so nothing is retrained or re-evaluated.
        (
            "solver",
            vec!["solve.llm=\"solver2\"".into()],
            None,
            vec![S, D, V, R],
            Sent { generate: Some(0), solve: SOME, evaluate: Some(0) },
        ),
        (
            "student weights file contents",
            vec![],
            Some(Box::new({
                let (w, seed) = (student_weights.clone(), env.tmp.path().join("other"));
                move || {
                    common::tiny_student(&seed, Family::Llama, 99);
                    std::fs::copy(seed.join("model.safetensors"), &w).unwrap();
                }
            })),
            vec![T, E, R],
            Sent { generate: Some(0), solve: Some(0), evaluate: SOME },
        ),
        (
            "HF folder contents",
            vec![],
            Some(Box::new({
                let (c, original) = (student_config.clone(), original_config.clone());
                move || {
                    let mut bytes = original.clone();
                    bytes.extend_from_slice(b"\n");
                    std::fs::write(&c, bytes).unwrap();
                }
            })),
            vec![T, E, R],
            Sent { generate: Some(0), solve: Some(0), evaluate: SOME },
        ),
        (
            "subset",
            vec!["evaluate.subset=3".into()],
            None,
            evaluation.to_vec(),
            Sent { generate: Some(0), solve: Some(0), evaluate: Some(targets) },
        ),
        (
            "seed",
            vec!["run.seed=7".into()],
            None,
            everything.to_vec(),
            Sent { generate: SOME, solve: SOME, evaluate: SOME },
        ),
        (
            "benchmarks",
            vec!["evaluate.benchmarks=[\"math500\", \"minerva_math\"]".into()],
            None,
            evaluation.to_vec(),
            Sent { generate: Some(0), solve: Some(0), evaluate: Some(targets * 2) },
        ),
        (
            "max_new_tokens",
            vec!["evaluate.max_new_tokens=8".into()],
            None,
            evaluation.to_vec(),
            Sent { generate: Some(0), solve: Some(0), evaluate: Some(targets * 2) },
        ),
        (
            "each target served by its path",
            vec!["evaluate.endpoint_model=\"path\"".into()],
            None,
            evaluation.to_vec(),
            Sent { generate: Some(0), solve: Some(0), evaluate: Some(targets * 2) },
        ),
        (
            // A new extraction re-grades the stored responses: the model is not asked again.
            "extraction",
            vec!["evaluate.extraction=\"strict\"".into()],
            None,
            evaluation.to_vec(),
            Sent { generate: Some(0), solve: Some(0), evaluate: Some(0) },
        ),
        (
            "concurrency",
            vec![
                "llm.gen.max_concurrency=2".into(),
                "llm.solver.max_concurrency=3".into(),
                "llm.judge.max_concurrency=1".into(),
            ],
            None,
            vec![],
            NONE_SENT,
        ),
        (
            "timeouts",
            vec!["llm.gen.timeout_s=30".into(), "llm.solver.deadline_s=300".into()],
            None,
            vec![],
            NONE_SENT,
        ),
        (
            "retries",
            vec!["llm.gen.max_retries=1".into(), "llm.judge.max_retries=0".into()],
            None,
            vec![],
            NONE_SENT,
        ),
        (
            "batch size and logging",
            vec![
                "evaluate.batch_size=3".into(),
                "train.log_every=1".into(),
                "train.checkpoint_every=1".into(),
            ],
            None,
            vec![],
            NONE_SENT,
        ),
    ];
    // math-verify itself (the venv `just test` makes): grading with it re-grades the stored
    // responses, and the model is not asked again.
    let mut cases = cases;
    match common::math_verify_python() {
        Some(python) => cases.push((
            "grader both",
            vec![
                "evaluate.grader=\"both\"".into(),
                format!("evaluate.math_verify.python={:?}", python.display().to_string()),
            ],
            None,
            evaluation.to_vec(),
            Sent { generate: Some(0), solve: Some(0), evaluate: Some(0) },
        )),
        None => eprintln!("NOT RUN: the `grader both` case needs .venv-grader (just grader-venv)"),
    }

    for (i, (case, overrides, setup, expected, sent)) in cases.into_iter().enumerate() {
        let name = format!("case{i:02}");
        copy_dir(&base, &env.runs().join(&name));
        if let Some(setup) = &setup {
            setup();
        }
        let (ran, calls) = env.run(&name, &overrides, &all);
        let expected: BTreeSet<StageName> = expected.into_iter().collect();
        assert_eq!(ran, expected, "{case}: stages that ran");
        check_sent(case, sent, calls);
        let run = env.runs().join(&name);
        if case == "grader both" {
            let report = std::fs::read_to_string(run.join("report/report.md")).unwrap();
            assert!(report.contains("## Graders: `grader-"), "{report}");
            assert!(report.contains("+math-verify-0.9.0`"), "{report}");
            assert!(report.contains("graded differently"), "{report}");
            let records = std::fs::read_to_string(run.join("evaluate/tiny/baseline/math500.jsonl")).unwrap();
            assert!(records.contains("\"grader\":\"math_verify\""), "{records}");
        }
        let ids = assert_no_stale_record(&run, case);
        let generated = ran.contains(&G);
        if generated
            && manifest(&run, "generate")["config"]["units"]["direct"]
                != manifest(&base, "generate")["config"]["units"]["direct"]
        {
            assert!(ids.is_disjoint(&base_ids), "{case}: problem ids reused across identities");
        } else {
            assert!(ids.is_subset(&base_ids), "{case}: problem ids changed under the same identity");
        }
        let (again, calls) = env.run(&name, &overrides, &all);
        assert!(again.is_empty(), "{case}: an unchanged rerun ran {again:?}");
        assert_eq!(calls.total(), 0, "{case}: an unchanged rerun sent calls");
        if setup.is_some() {
            std::fs::write(&student_weights, &original_weights).unwrap();
            std::fs::write(&student_config, &original_config).unwrap();
        }
        // Each case holds two trained arms with their optimizer state (~100 MB): keeping all
        // of them filled CI's disk.
        std::fs::remove_dir_all(&run).unwrap();
    }

    // --force replays the cache (free, identical); --refresh-cache asks again.
    let records_of = |run: &str| {
        std::fs::read_to_string(
            env.runs().join(run).join("evaluate/tiny/direct/curated/seed-42/math500.jsonl"),
        )
        .unwrap()
    };
    let before = records_of("base");
    let force = RunOptions { force: BTreeSet::from([E]), ..RunOptions::default() };
    let (ran, calls) = env.run("base", &[], &force);
    assert_eq!(ran, BTreeSet::from([E]), "an identical evaluation leaves the report up to date");
    assert_eq!(calls.total(), 0, "--force evaluate sent calls");
    assert_eq!(records_of("base"), before);
    let refresh = RunOptions { refresh_cache: BTreeSet::from([E]), ..RunOptions::default() };
    let (ran, calls) = env.run("base", &[], &refresh);
    assert!(ran.contains(&E));
    assert_eq!(calls.evaluate, targets * 2, "--refresh-cache evaluate asks every call again");
}
