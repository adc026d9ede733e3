//! The stage runner's skip/rerun rules, driven by test stages that write real files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use pipeline::config::{self, Config};
use pipeline::identity::Identify;
use pipeline::manifest::Manifest;
use pipeline::progress::Silent;
use pipeline::run_dir::{RunDir, RunDirError};
use pipeline::runner::{Outcome, RunError, RunOptions, Runner};
use pipeline::stages::{Stage, StageContext, StageError, StageOutput};
use vs_core::StageName;
use vs_core::digest::sha256_file;

/// Writes `<stage>.txt` holding its config value and its upstream output, counting runs.
struct Echo {
    name: StageName,
    version: u32,
    runs: Arc<AtomicUsize>,
    external: Option<PathBuf>,
    fail: bool,
    escape: bool,
}

impl Echo {
    fn new(name: StageName) -> (Self, Arc<AtomicUsize>) {
        let runs = Arc::new(AtomicUsize::new(0));
        (Self { name, version: 1, runs: runs.clone(), external: None, fail: false, escape: false }, runs)
    }
}

impl Stage for Echo {
    fn name(&self) -> StageName {
        self.name
    }

    fn version(&self) -> u32 {
        self.version
    }

    fn config_slice(&self, id: Identify<'_>) -> Result<serde_json::Value, StageError> {
        Ok(match self.name {
            StageName::Generate => serde_json::json!({ "k": id.config.generate.k }),
            _ => serde_json::json!({ "m": id.config.solve.num_solutions }),
        })
    }

    fn external_inputs(&self, _config: &Config) -> Vec<PathBuf> {
        self.external.iter().cloned().collect()
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutput, StageError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        if self.fail {
            return Err(StageError::Runtime("the test stage was told to fail".into()));
        }
        let upstream = match self.name.previous() {
            Some(prev) => std::fs::read_to_string(ctx.run_dir.stage_dir(prev).join(format!("{prev}.txt")))
                .unwrap_or_default(),
            None => String::new(),
        };
        let slice = self.config_slice(ctx.identify()).unwrap();
        let out = if self.escape {
            ctx.run_dir.root().join("stray.txt")
        } else {
            ctx.dir.join(format!("{}.txt", self.name))
        };
        std::fs::write(&out, format!("{slice} <- {upstream}")).unwrap();
        let bar = ctx.reporter.bar("items", 3);
        bar.inc(3);
        bar.finish();
        Ok(StageOutput {
            outputs: vec![out],
            counts: BTreeMap::from([("kept".to_owned(), serde_json::json!(3))]),
            metrics: BTreeMap::new(),
        })
    }
}

const CONFIG: &str = r#"
[llm]
m = { provider = "openai", base_url = "http://127.0.0.1:9/v1", model = "m", api_key_env = "VSDATA_TEST_SECRET_KEY" }
[generate]
llm = "m"
strategies = ["vs_multi"]
"#;

fn config(out: &Path, overrides: &[&str]) -> Config {
    let mut all = vec![format!("run.out_dir={}", out.display())];
    all.extend(overrides.iter().map(|s| s.to_string()));
    config::load_str(CONFIG, Path::new("test.toml"), &all).unwrap().config
}

fn run(
    cfg: &Config,
    stages: Vec<Box<dyn Stage>>,
    options: &RunOptions,
) -> Result<Vec<(StageName, Outcome)>, RunError> {
    let dir = RunDir::open(cfg).unwrap();
    Runner::new(cfg, &dir, stages, &Silent).run(options)
}

fn kinds(outcomes: &[(StageName, Outcome)]) -> Vec<(StageName, &'static str)> {
    outcomes.iter().map(|(n, o)| (*n, if matches!(o, Outcome::Ran(_)) { "ran" } else { "skipped" })).collect()
}

fn two_stages() -> (Vec<Box<dyn Stage>>, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let (g, gr) = Echo::new(StageName::Generate);
    let (s, sr) = Echo::new(StageName::Solve);
    (vec![Box::new(g), Box::new(s)], gr, sr)
}

fn only(stages: &[StageName]) -> RunOptions {
    RunOptions {
        stages: Some(stages.to_vec()),
        force: BTreeSet::new(),
        refresh_cache: BTreeSet::new(),
        shard: None,
    }
}

const BOTH: [StageName; 2] = [StageName::Generate, StageName::Solve];

#[test]
fn first_run_writes_manifests_with_output_hashes_and_rerun_skips() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &[]);
    let (stages, gr, sr) = two_stages();
    let out = run(&cfg, stages, &only(&BOTH)).unwrap();
    assert_eq!(kinds(&out), vec![(StageName::Generate, "ran"), (StageName::Solve, "ran")]);

    let root = tmp.path().join("default");
    let m = Manifest::read(&root.join("solve/manifest.json")).unwrap().unwrap();
    let (sha, bytes) = sha256_file(&root.join("solve/solve.txt")).unwrap();
    assert_eq!(m.outputs.len(), 1);
    assert_eq!(
        (m.outputs[0].path.as_str(), m.outputs[0].sha256.as_str(), m.outputs[0].bytes),
        ("solve/solve.txt", sha.as_str(), bytes)
    );
    // Solve's inputs are generate's outputs.
    let g = Manifest::read(&root.join("generate/manifest.json")).unwrap().unwrap();
    assert_eq!(m.inputs, g.outputs);
    assert_eq!(m.config, serde_json::json!({ "m": 4 }));
    assert_eq!(m.counts["kept"], serde_json::json!(3));
    assert!(root.join("config.toml").exists());

    let (stages, gr2, sr2) = two_stages();
    let out = run(&cfg, stages, &only(&BOTH)).unwrap();
    assert_eq!(kinds(&out), vec![(StageName::Generate, "skipped"), (StageName::Solve, "skipped")]);
    assert_eq!((gr.load(Ordering::SeqCst), sr.load(Ordering::SeqCst)), (1, 1));
    assert_eq!((gr2.load(Ordering::SeqCst), sr2.load(Ordering::SeqCst)), (0, 0));
}

#[test]
fn a_config_change_reruns_the_stage_and_downstream_follows_its_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    let (stages, ..) = two_stages();
    run(&config(tmp.path(), &[]), stages, &only(&BOTH)).unwrap();

    // Outside every slice: nothing reruns.
    let (stages, ..) = two_stages();
    let out = run(&config(tmp.path(), &["llm.m.max_concurrency=64"]), stages, &only(&BOTH)).unwrap();
    assert_eq!(kinds(&out), vec![(StageName::Generate, "skipped"), (StageName::Solve, "skipped")]);

    // In generate's slice: generate reruns with new output, so solve's inputs changed too.
    let (stages, ..) = two_stages();
    let out = run(&config(tmp.path(), &["generate.k=3"]), stages, &only(&BOTH)).unwrap();
    assert_eq!(kinds(&out), vec![(StageName::Generate, "ran"), (StageName::Solve, "ran")]);

    // In solve's slice only.
    let (stages, ..) = two_stages();
    let out =
        run(&config(tmp.path(), &["generate.k=3", "solve.num_solutions=2"]), stages, &only(&BOTH)).unwrap();
    assert_eq!(kinds(&out), vec![(StageName::Generate, "skipped"), (StageName::Solve, "ran")]);
}

#[test]
fn force_reruns_only_the_named_stage_when_its_output_is_unchanged() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &[]);
    let (stages, ..) = two_stages();
    run(&cfg, stages, &only(&BOTH)).unwrap();
    let (stages, gr, sr) = two_stages();
    let options = RunOptions {
        stages: Some(BOTH.to_vec()),
        force: BTreeSet::from([StageName::Generate]),
        refresh_cache: BTreeSet::new(),
        shard: None,
    };
    let out = run(&cfg, stages, &options).unwrap();
    // Same bytes again, so solve's inputs still match.
    assert_eq!(kinds(&out), vec![(StageName::Generate, "ran"), (StageName::Solve, "skipped")]);
    assert_eq!((gr.load(Ordering::SeqCst), sr.load(Ordering::SeqCst)), (1, 0));
}

#[test]
fn a_changed_or_missing_output_is_noticed() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &[]);
    let (stages, ..) = two_stages();
    run(&cfg, stages, &only(&BOTH)).unwrap();
    let out_file = tmp.path().join("default/solve/solve.txt");
    std::fs::write(&out_file, "edited by hand").unwrap();
    let (stages, ..) = two_stages();
    let out = run(&cfg, stages, &only(&BOTH)).unwrap();
    assert_eq!(kinds(&out), vec![(StageName::Generate, "skipped"), (StageName::Solve, "ran")]);
    assert_ne!(std::fs::read_to_string(&out_file).unwrap(), "edited by hand");

    std::fs::remove_file(tmp.path().join("default/generate/generate.txt")).unwrap();
    let (stages, ..) = two_stages();
    let out = run(&cfg, stages, &only(&BOTH)).unwrap();
    assert_eq!(kinds(&out)[0], (StageName::Generate, "ran"));
}

#[test]
fn a_stage_version_bump_or_external_input_change_reruns() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &[]);
    let weights = tmp.path().join("weights.bin");
    std::fs::write(&weights, "v1").unwrap();
    let stage = |version: u32| {
        let (mut g, runs) = Echo::new(StageName::Generate);
        g.version = version;
        g.external = Some(weights.clone());
        (vec![Box::new(g) as Box<dyn Stage>], runs)
    };
    let gen_only = only(&[StageName::Generate]);
    run(&cfg, stage(1).0, &gen_only).unwrap();
    let (s, runs) = stage(1);
    run(&cfg, s, &gen_only).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 0);

    let (s, runs) = stage(2);
    run(&cfg, s, &gen_only).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    std::fs::write(&weights, "v2").unwrap();
    let (s, runs) = stage(2);
    run(&cfg, s, &gen_only).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let m = Manifest::read(&tmp.path().join("default/generate/manifest.json")).unwrap().unwrap();
    assert_eq!(m.inputs[0].path, weights.to_string_lossy());

    std::fs::remove_file(&weights).unwrap();
    let err = run(&cfg, stage(2).0, &gen_only).unwrap_err().to_string();
    assert!(err.contains("weights.bin"), "{err}");
}

#[test]
fn stops_at_the_first_unimplemented_stage_keeping_finished_ones() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &[]);
    let (g, _) = Echo::new(StageName::Generate);
    let err = run(&cfg, vec![Box::new(g)], &RunOptions::default()).unwrap_err();
    assert!(matches!(err, RunError::NotImplemented(StageName::Solve)), "{err}");
    assert!(err.to_string().contains("stage `solve` is not implemented yet"));
    assert!(tmp.path().join("default/generate/manifest.json").exists());
}

#[test]
fn a_stage_whose_upstream_has_not_run_says_which() {
    let tmp = tempfile::tempdir().unwrap();
    let (stages, _, sr) = two_stages();
    let err = run(&config(tmp.path(), &[]), stages, &only(&[StageName::Solve])).unwrap_err().to_string();
    assert!(err.contains("stage `solve` needs the output of stage `generate`"), "{err}");
    assert!(err.contains("generate/manifest.json"), "{err}");
    assert_eq!(sr.load(Ordering::SeqCst), 0);
}

#[test]
fn a_failed_stage_leaves_no_manifest_and_reruns_next_time() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &[]);
    let gen_only = only(&[StageName::Generate]);
    let (g, _) = Echo::new(StageName::Generate);
    run(&cfg, vec![Box::new(g)], &gen_only).unwrap();
    let (mut g, _) = Echo::new(StageName::Generate);
    g.fail = true;
    let options = RunOptions {
        stages: Some(vec![StageName::Generate]),
        force: BTreeSet::from([StageName::Generate]),
        refresh_cache: BTreeSet::new(),
        shard: None,
    };
    let err = run(&cfg, vec![Box::new(g)], &options).unwrap_err().to_string();
    assert_eq!(err, "stage `generate` failed: the test stage was told to fail\n(a rerun may succeed as is)");
    assert!(!tmp.path().join("default/generate/manifest.json").exists());
    let (g, runs) = Echo::new(StageName::Generate);
    run(&cfg, vec![Box::new(g)], &gen_only).unwrap();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn outputs_must_stay_inside_the_stage_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let (mut g, _) = Echo::new(StageName::Generate);
    g.escape = true;
    let err = run(&config(tmp.path(), &[]), vec![Box::new(g)], &only(&[StageName::Generate]))
        .unwrap_err()
        .to_string();
    assert!(err.contains("outside its folder"), "{err}");
}

#[test]
fn a_second_process_on_the_same_run_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = config(tmp.path(), &[]);
    let _held = RunDir::open(&cfg).unwrap();
    let err = RunDir::open(&cfg).unwrap_err();
    assert!(matches!(err, RunDirError::Busy { .. }), "{err}");
    assert!(err.to_string().contains("run `default` is in use"), "{err}");
}

#[test]
fn secrets_from_the_environment_never_reach_the_run_folder() {
    // The config names the variable; its value must not be written anywhere.
    // SAFETY: no other test reads or writes this variable.
    unsafe { std::env::set_var("VSDATA_TEST_SECRET_KEY", "sk-test-secret-value") };
    let tmp = tempfile::tempdir().unwrap();
    let (stages, ..) = two_stages();
    run(&config(tmp.path(), &[]), stages, &only(&BOTH)).unwrap();
    let mut files = 0;
    for entry in walk(tmp.path()) {
        let text = std::fs::read_to_string(&entry).unwrap_or_default();
        assert!(!text.contains("sk-test-secret-value"), "{} holds the secret", entry.display());
        files += 1;
    }
    assert!(files >= 5);
    let cfg_text = std::fs::read_to_string(tmp.path().join("default/config.toml")).unwrap();
    assert!(cfg_text.contains("api_key_env = \"VSDATA_TEST_SECRET_KEY\""));
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}
