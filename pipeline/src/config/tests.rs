use std::path::Path;

use super::*;
use vs_core::Strategy;

const MINIMAL: &str = r#"
[llm.gen]
provider = "openai"
base_url = "http://localhost:8000/v1"
model = "gpt-4.1"
api_key_env = "OPENAI_API_KEY"

[generate]
llm = "gen"
strategies = ["vs_multi", "direct"]
"#;

fn load_text(text: &str, overrides: &[&str]) -> Result<Config, String> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    load_str(text, Path::new("configs/x.toml"), &overrides).map(|l| l.config).map_err(|e| e.to_string())
}

fn err(text: &str, overrides: &[&str]) -> String {
    load_text(text, overrides).expect_err("config should be rejected")
}

#[test]
fn minimal_config_gets_the_papers_defaults() {
    let c = load_text(MINIMAL, &[]).unwrap();
    assert_eq!(c.run.name, "default");
    assert_eq!(c.run.seed, 42);
    assert_eq!(c.generate.strategies, vec![Strategy::VsMulti, Strategy::Direct]);
    assert_eq!((c.generate.num_problems, c.generate.k, c.generate.target_words), (1000, 5, 80));
    assert_eq!(c.generate.samples_per_turn, 3);
    assert_eq!(c.generate.selection.mode, SelectionMode::All);
    assert_eq!((c.solve.num_solutions, c.solve.temperature, c.solve.top_p), (4, 0.6, 0.95));
    // solve.llm falls back to generate.llm, resolved at load time.
    assert_eq!(c.solve.llm.as_deref(), Some("gen"));
    assert_eq!((c.train.epochs, c.train.learning_rate), (5, 5e-6));
    assert_eq!(c.train.lr_schedule, LrSchedule::Cosine);
    assert_eq!(c.dedup.minhash, MinHashConfig::default());
    assert_eq!(
        c.dedup.minhash.lsh_params(),
        (28, 9),
        "datasketch's rule at 0.8, 256 values, weights 0.01/0.99"
    );
    assert_eq!(c.evaluate.benchmarks.len(), 3);
    assert_eq!(c.llm["gen"].temperature, 0.7);
}

#[test]
fn unknown_key_names_file_line_key_and_a_suggestion() {
    let text = MINIMAL.replace("strategies = [", "num_problem = 3\nstrategies = [");
    let e = err(&text, &[]);
    assert!(e.starts_with("configs/x.toml:10: generate.num_problem: unknown key"), "{e}");
    assert!(e.contains("did you mean `num_problems`?"), "{e}");
}

#[test]
fn unknown_key_in_nested_and_named_tables() {
    let e = err(&format!("{MINIMAL}\n[dedup.minhash]\nbandz = 4\n"), &[]);
    assert!(e.starts_with("configs/x.toml:13: dedup.minhash.bandz: unknown key"), "{e}");
    assert!(e.contains("did you mean `bands`?"), "{e}");
    let e = err(&MINIMAL.replace("model = ", "modle = "), &[]);
    assert!(e.starts_with("configs/x.toml:5: llm.gen.modle: unknown key"), "{e}");
    let e = err(&format!("{MINIMAL}\n[evaluation]\nsubset = 3\n"), &[]);
    assert!(e.starts_with("configs/x.toml:12: evaluation: unknown key"), "{e}");
    assert!(e.contains("did you mean `evaluate`?"), "{e}");
}

#[test]
fn a_pasted_api_key_is_refused_and_not_echoed() {
    let e = err(&MINIMAL.replace("api_key_env = \"OPENAI_API_KEY\"", "api_key = \"sk-live-123\""), &[]);
    assert!(e.contains("llm.gen.api_key: unknown key"), "{e}");
    assert!(e.contains("environment variable"), "{e}");
    assert!(!e.contains("sk-live-123"), "{e}");
    let e = err(&MINIMAL.replace("\"OPENAI_API_KEY\"", "\"sk-live-123\""), &[]);
    assert!(e.contains("configs/x.toml:6: llm.gen.api_key_env: looks like an API key, not the NAME"), "{e}");
    assert!(!e.contains("sk-live-123"), "{e}");
    // Keys that are valid variable names are caught too: a provider prefix, or a random token.
    for key in ["hf_AbCdEfGhIjKlMnOpQrStUv", "gsk_live1234567890abcdefgh", "Ab3dE5gH7jK9mN1pQ3sT5vW7yZ"] {
        let e = err(&MINIMAL.replace("\"OPENAI_API_KEY\"", &format!("\"{key}\"")), &[]);
        assert!(e.contains("looks like an API key"), "{key}: {e}");
        assert!(!e.contains(key), "{e}");
    }
    // Real variable names pass.
    for name in ["OPENAI_API_KEY", "TOGETHER_API_KEY", "MY_LAB_VLLM_TOKEN_2", "hf_token"] {
        assert!(!super::validate::looks_like_secret(name), "{name}");
    }
    let e = err(&MINIMAL.replace("http://localhost", "http://user:sk-live-123@localhost"), &[]);
    assert!(e.contains("llm.gen.base_url: must not carry credentials"), "{e}");
    assert!(!e.contains("sk-live-123"), "{e}");
}

#[test]
fn missing_required_key_points_at_its_table() {
    let e = err(&MINIMAL.replace("llm = \"gen\"\n", ""), &[]);
    assert_eq!(e, "configs/x.toml:8: generate.llm: required key is missing");
    let e = err("[run]\nname = \"x\"\n", &[]);
    assert_eq!(e, "configs/x.toml: generate: required key is missing");
}

#[test]
fn wrong_types_and_unknown_enum_values_are_named() {
    let e = err(&MINIMAL.replace("strategies = [", "k = \"five\"\nstrategies = ["), &[]);
    assert!(e.starts_with("configs/x.toml:10: generate.k: invalid type: string \"five\""), "{e}");
    let e = err(&MINIMAL.replace("\"direct\"", "\"vs_mult\""), &[]);
    assert!(e.starts_with("configs/x.toml:10: generate.strategies[1]: unknown value `vs_mult`"), "{e}");
    assert!(e.contains("did you mean `vs_multi`?"), "{e}");
}

#[test]
fn range_problems_are_all_reported_with_lines() {
    let text = MINIMAL.replace("strategies = [", "k = 0\nstrategies = [")
        + "\n[verify]\nmin_agreement = 1.5\n[train]\nwarmup_ratio = 1.0\ndevice = \"gpu\"\n";
    let e = err(&text, &[]);
    let lines: Vec<&str> = e.lines().collect();
    assert!(lines.contains(&"configs/x.toml:10: generate.k: must be >= 1"), "{e}");
    assert!(lines.contains(&"configs/x.toml:14: verify.min_agreement: must be in (0, 1], got 1.5"), "{e}");
    assert!(lines.contains(&"configs/x.toml:16: train.warmup_ratio: must be in [0, 1), got 1"), "{e}");
    assert!(
        lines.contains(
            &"configs/x.toml:17: train.device: unknown device `gpu`: expected `cpu`, `cuda` or `cuda:N`"
        ),
        "{e}"
    );
}

#[test]
fn references_to_undefined_llms_list_the_defined_ones() {
    let e = err(&format!("{MINIMAL}\n[solve]\nllm = \"solver\"\n"), &[]);
    assert_eq!(e, "configs/x.toml:13: solve.llm: no [llm.solver] section (defined: gen)");
    let e = err("[generate]\nllm = \"gen\"\nstrategies = [\"direct\"]\n", &[]);
    assert!(e.contains("generate.llm: no [llm.gen] section (no [llm.<name>] section is defined)"), "{e}");
}

#[test]
fn provider_specific_keys_are_checked() {
    let local = "[llm.m]\nprovider = \"local\"\nbase_url = \"http://x\"\n[generate]\nllm = \"m\"\nstrategies = [\"direct\"]\n";
    let e = err(local, &[]);
    assert!(e.contains("configs/x.toml:1: llm.m.model_path: required for provider = \"local\""), "{e}");
    assert!(e.contains("configs/x.toml:3: llm.m.base_url: only applies to provider = \"openai\""), "{e}");
    let e = err(&MINIMAL.replace("model = \"gpt-4.1\"\n", "model_path = \"m.gguf\"\n"), &[]);
    assert!(e.contains("llm.gen.model: required for provider = \"openai\""), "{e}");
    assert!(e.contains("llm.gen.model_path: only applies to provider = \"local\""), "{e}");
}

#[test]
fn selection_tau_goes_with_a_filtering_mode() {
    let e = err(&format!("{MINIMAL}\n[generate.selection]\nmode = \"keep_below\"\n"), &[]);
    assert!(e.contains("generate.selection.tau: required when mode filters by probability"), "{e}");
    let e = err(&format!("{MINIMAL}\n[generate.selection]\ntau = 0.1\n"), &[]);
    assert!(e.contains("generate.selection.tau: only applies with mode"), "{e}");
    let e = err(&format!("{MINIMAL}\n[generate.selection]\nmode = \"keep_below\"\ntau = 0.1\n"), &[]);
    assert!(
        e.contains(
            "generate.selection.mode: filters by verbalized probability, which `direct` does not give"
        ),
        "{e}"
    );
    let vs_only = MINIMAL.replace("[\"vs_multi\", \"direct\"]", "[\"vs_multi\"]");
    let c = load_text(&format!("{vs_only}\n[generate.selection]\nmode = \"keep_below\"\ntau = 0.1\n"), &[])
        .unwrap();
    assert_eq!((c.generate.selection.mode, c.generate.selection.tau), (SelectionMode::KeepBelow, Some(0.1)));
}

#[test]
fn duplicates_in_lists_are_named_by_index() {
    let e = err(&MINIMAL.replace("[\"vs_multi\", \"direct\"]", "[\"direct\", \"vs_cot\", \"direct\"]"), &[]);
    assert_eq!(e, "configs/x.toml:10: generate.strategies[2]: listed twice");
}

#[test]
fn overrides_set_any_key_and_win_over_the_file() {
    let c = load_text(
        MINIMAL,
        &[
            "generate.k=3",
            "generate.strategies=[\"vs_cot\"]",
            "run.name=exp-1",
            "train.students.qwen.model_path=/models/qwen3",
            "generate.selection.mode=keep_at_least",
            "generate.selection.tau=0.12",
            "llm.gen.temperature = 1.0",
        ],
    )
    .unwrap();
    assert_eq!(c.generate.k, 3);
    assert_eq!(c.generate.strategies, vec![Strategy::VsCot]);
    assert_eq!(c.run.name, "exp-1");
    assert_eq!(c.train.students["qwen"].model_path, Path::new("/models/qwen3"));
    assert_eq!(c.generate.selection.tau, Some(0.12));
    assert_eq!(c.llm["gen"].temperature, 1.0);
}

#[test]
fn override_errors_name_the_set_argument() {
    assert_eq!(err(MINIMAL, &["generate.k=0"]), "--set generate.k: generate.k: must be >= 1");
    let e = err(MINIMAL, &["generate.kk=3"]);
    assert!(e.starts_with("--set generate.kk: generate.kk: unknown key"), "{e}");
    assert!(e.contains("did you mean `k`?"), "{e}");
    assert_eq!(err(MINIMAL, &["generate.k"]), "--set generate.k: expected `key.path=value`");
    assert_eq!(
        err(MINIMAL, &["generate.llm.x=1"]),
        "--set generate.llm.x: `generate.llm` is a value, not a table"
    );
    // Not in the file: the override made `run.name` a table, and is blamed for it.
    assert_eq!(
        err(MINIMAL, &["run.name.x=1"]),
        "--set run.name.x: run.name: invalid type: map, expected a string"
    );
    assert!(
        err(MINIMAL, &["generate.strategies.0=direct"]).contains("array elements cannot be set one by one")
    );
    assert!(err(MINIMAL, &["a..b=1"]).contains("empty segment"));
    // A problem with a key the override did not touch still points at the file.
    assert_eq!(
        err(&MINIMAL.replace("strategies = [", "k = 0\nstrategies = ["), &["generate.num_problems=5"]),
        "configs/x.toml:10: generate.k: must be >= 1"
    );
}

#[test]
fn syntax_errors_give_the_line() {
    let e = err("[run]\nname = \"x\"\nseed = = 4\n", &[]);
    assert!(e.starts_with("configs/x.toml:3: invalid TOML"), "{e}");
}

#[test]
fn config_round_trips_through_toml() {
    let c = load_text(MINIMAL, &[]).unwrap();
    let again = load_text(&c.to_toml(), &[]).unwrap();
    assert_eq!(c, again);
}

#[test]
fn shipped_configs_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            load(&path, &[]).unwrap_or_else(|e| panic!("{e}"));
            n += 1;
        }
    }
    assert!(n >= 1, "no configs found in {}", dir.display());
}

#[test]
fn embeddings_providers_are_checked() {
    // Local by default; openai needs an openai section.
    assert!(load_text(MINIMAL, &[]).is_ok());
    let openai = ["dedup.embeddings.provider=\"openai\""];
    let e = err(MINIMAL, &openai);
    assert!(e.contains("dedup.embeddings.llm: required for provider"), "{e}");
    assert!(load_text(MINIMAL, &[openai[0], "dedup.embeddings.llm=gen"]).is_ok());
    let e = err(MINIMAL, &[openai[0], "dedup.embeddings.llm=nope"]);
    assert!(e.contains("dedup.embeddings.llm: no [llm.nope] section"), "{e}");
    let local = format!("{MINIMAL}\n[llm.mini]\nprovider = \"local\"\nmodel_path = \"m.gguf\"\n");
    let e = err(&local, &[openai[0], "dedup.embeddings.llm=mini"]);
    assert!(e.contains("must be provider = \"openai\""), "{e}");
    let e = err(MINIMAL, &["dedup.embeddings.llm=gen"]);
    assert!(e.contains("only for provider = \"openai\""), "{e}");
    let e = err(MINIMAL, &["dedup.embeddings.provider=\"none\"", "dedup.semantic.enabled=true"]);
    assert!(e.contains("dedup.semantic.enabled: needs embeddings"), "{e}");
}

#[test]
fn out_of_range_numbers_and_multi_line_script_values_are_config_errors() {
    let e = err(
        &format!(
            "{MINIMAL}\n[slurm]\npartition = \"gpu\\n#SBATCH --mem=1T\"\nmodules = [\"cuda\", \"x\\nrm -rf /\"]\n[slurm.env]\nA = \"1\\n2\"\n"
        ),
        &["llm.gen.timeout_s=1e20", "llm.gen.max_concurrency=0", "run.max_failed_fraction=2"],
    );
    for needle in [
        "llm.gen.timeout_s: must be in (0, 86400], got 100000000000000000000",
        "llm.gen.max_concurrency: must be in [1, 4096], got 0",
        "run.max_failed_fraction: must be in [0, 1], got 2",
        "slurm.partition: must be one line",
        "slurm.modules[1]: must be one line",
        "slurm.env.A: must be one line",
    ] {
        assert!(e.contains(needle), "{needle}: {e}");
    }
    let e = err(MINIMAL, &["llm.gen.deadline_s=10", "llm.gen.timeout_s=60"]);
    assert!(e.contains("llm.gen.deadline_s: must be >= timeout_s (60)"), "{e}");
}

/// Every shipped config loads; the paper's is LIMO's SFT setting with both curations, and its
/// six Table 4 settings are files over it that change only generator, student and run name.
#[test]
fn shipped_configs_load_and_the_paper_settings_extend_the_paper() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs");
    let load_file =
        |p: &Path| crate::config::load(p, &[]).map(|l| l.config).unwrap_or_else(|e| panic!("{e}"));
    for name in ["default.toml", "openai.toml", "paper.toml"] {
        load_file(&root.join(name));
    }
    let paper = load_file(&root.join("paper.toml"));
    assert_eq!((paper.train.batch_size, paper.train.grad_accum_steps, paper.train.epochs), (1, 1, 5));
    assert_eq!(paper.train.learning_rate, 5e-6);
    // The paper's precision (LLaMA-Factory bf16) with what makes 16k tokens fit.
    assert_eq!(paper.train.dtype, crate::config::DType::Bf16);
    assert!(paper.train.checkpoint_activations);
    assert_eq!(paper.train.memory_limit_gb, Some(80.0));
    assert_eq!(paper.verify.curation, vec![crate::config::Curation::Paper, crate::config::Curation::Curated]);
    let mut settings: Vec<_> =
        std::fs::read_dir(root.join("paper")).unwrap().map(|e| e.unwrap().path()).collect();
    settings.sort();
    assert_eq!(settings.len(), 6);
    let mut names = std::collections::BTreeSet::new();
    for path in &settings {
        let c = load_file(path);
        assert!(names.insert(c.run.name.clone()), "{}: run name reused", path.display());
        // Only the student, and the memory a larger student is allowed (see each file).
        assert_eq!(
            c.train,
            crate::config::TrainConfig {
                students: c.train.students.clone(),
                memory_limit_gb: c.train.memory_limit_gb,
                ..paper.train.clone()
            }
        );
        assert_eq!((&c.generate, &c.evaluate, &c.verify), (&paper.generate, &paper.evaluate, &paper.verify));
        assert_eq!(c.train.students.len(), 1, "{}", path.display());
        let gemini = path.file_name().unwrap().to_string_lossy().starts_with("gemini");
        assert_eq!(
            c.llm["generator"].model.as_deref() == Some("gemini-2.5-flash"),
            gemini,
            "{}",
            path.display()
        );
    }
}

#[test]
fn extends_merges_tables_and_names_a_missing_base() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("base.toml"), "[run]\nname = \"b\"\nseed = 3\n[llm.g]\nprovider = \"openai\"\nbase_url = \"http://x/v1\"\nmodel = \"m\"\n[generate]\nllm = \"g\"\nstrategies = [\"direct\"]\ntask = \"competition_math\"\nnum_problems = 2\n").unwrap();
    std::fs::write(tmp.path().join("over.toml"), "extends = \"base.toml\"\n[run]\nname = \"o\"\n").unwrap();
    let c = crate::config::load(&tmp.path().join("over.toml"), &[]).unwrap().config;
    assert_eq!((c.run.name.as_str(), c.run.seed), ("o", 3));
    std::fs::write(tmp.path().join("bad.toml"), "extends = \"nowhere.toml\"\n").unwrap();
    let e = crate::config::load(&tmp.path().join("bad.toml"), &[]).unwrap_err().to_string();
    assert!(e.contains("extends = \"nowhere.toml\": cannot read"), "{e}");
}

#[test]
fn data_parallel_devices_are_checked() {
    let with = |train: &str| err(&format!("{MINIMAL}\n[train]\n{train}\n"), &[]);
    let e = with("devices = [\"cuda:0\", \"cpu\", \"cuda:0\", \"tpu\"]\ngrad_accum_steps = 6");
    let lines: Vec<&str> = e.lines().collect();
    assert!(lines.iter().any(|l| l.contains("train.devices[3]: unknown device `tpu`")), "{e}");
    assert!(lines.iter().any(|l| l.contains("train.devices: mixes `cpu` with GPUs")), "{e}");
    assert!(lines.iter().any(|l| l.contains("train.devices[2]: listed twice")), "{e}");
    assert!(
        lines.iter().any(|l| l.contains(
            "train.grad_accum_steps: must be a multiple of the number of train.devices (4), got 6"
        )),
        "{e}"
    );
    let e = with("device = \"cuda:1\"\ndevices = [\"cuda:0\", \"cuda:1\"]\ngrad_accum_steps = 2");
    assert!(e.contains("train.device: set train.devices alone"), "{e}");
    // Workers sharing the CPU are allowed (the machinery's test); the config round-trips.
    let text = format!("{MINIMAL}\n[train]\ndevices = [\"cpu\", \"cpu\"]\ngrad_accum_steps = 2\n");
    let config = load_str(&text, Path::new("configs/x.toml"), &[]).unwrap().config;
    assert_eq!(config.train.devices, ["cpu", "cpu"]);
    let toml = config.to_toml();
    assert!(toml.contains("devices = [\n    \"cpu\",\n    \"cpu\",\n]"), "{toml}");
    // One device writes no `devices` key: single-device configs keep their identities.
    let plain = load_str(MINIMAL, Path::new("configs/x.toml"), &[]).unwrap().config;
    assert!(!plain.to_toml().contains("devices"));
}

#[test]
fn structured_output_dialects_are_for_servers_and_imply_schemas() {
    let local = "[llm.m]\nprovider = \"local\"\nmodel_path = \"m.gguf\"\nstructured_output = \"json_object\"\n[generate]\nllm = \"m\"\nstrategies = [\"direct\"]\n";
    let e = err(local, &[]);
    assert!(e.contains("llm.m.structured_output: only applies to provider = \"openai\""), "{e}");
    let e = err(&MINIMAL.replace("[generate]", "structured_output = \"xml\"\n[generate]"), &[]);
    assert!(e.contains("structured_output") && e.contains("json_object"), "{e}");
    let with = |extra: &str| {
        let text = MINIMAL.replace("[generate]", &format!("{extra}\n[generate]"));
        let config = load_str(&text, Path::new("configs/x.toml"), &[]).unwrap().config;
        config.resolved_llm("gen").unwrap().sampling
    };
    let s = with("json_schema = true");
    assert!(s.json_schema && s.structured_output == StructuredOutput::JsonSchema);
    let s = with("structured_output = \"guided_json\"");
    assert!(s.json_schema && s.structured_output == StructuredOutput::GuidedJson);
    let s = with("json_schema = true\nstructured_output = \"none\"");
    assert!(!s.json_schema);
    assert!(!with("").json_schema);
    // The call cache is keyed by the endpoint identity: another dialect must not replay the
    // default one's replies, and the default keeps the identity it had.
    let endpoint = |extra: &str| {
        let text = MINIMAL.replace("[generate]", &format!("{extra}\n[generate]"));
        let config = load_str(&text, Path::new("configs/x.toml"), &[]).unwrap().config;
        let digests = vs_core::DigestCache::in_memory();
        config.resolved_llm("gen").unwrap().endpoint_identity(&digests).unwrap()
    };
    assert_eq!(endpoint("json_schema = true"), endpoint(""));
    assert_ne!(endpoint("structured_output = \"json_object\""), endpoint("json_schema = true"));
}

#[test]
fn serve_sections_are_checked_and_derive_the_base_url() {
    let served = "[llm.s]\nprovider = \"openai\"\nmodel = \"Qwen/Qwen3-32B\"\n[llm.s.serve]\nengine = \"vllm\"\ntensor_parallel = 2\nport = 8123\n[generate]\nllm = \"s\"\nstrategies = [\"direct\"]\n";
    let config = load_str(served, Path::new("configs/x.toml"), &[]).unwrap().config;
    let llm = config.resolved_llm("s").unwrap();
    assert!(
        matches!(&llm.endpoint, Endpoint::Openai { base_url, .. } if base_url == "http://127.0.0.1:8123/v1")
    );
    assert_eq!(llm.serve.as_ref().unwrap().gpus(), 2);
    let e = err(&served.replace("engine = \"vllm\"", "engine = \"command\""), &[]);
    assert!(e.contains("llm.s.serve.command: required for engine = \"command\""), "{e}");
    let e = err(&served.replace("engine = \"vllm\"", "engine = \"command\"\ncommand = \"srv\""), &[]);
    assert!(e.contains("llm.s.serve.command: must contain {port}"), "{e}");
    // It runs without a shell: shell syntax is named before any stage starts.
    let e = err(
        &served.replace("engine = \"vllm\"", "engine = \"command\"\ncommand = \"srv --port {port} > log\""),
        &[],
    );
    assert!(e.contains("llm.s.serve.command: `>` is shell syntax"), "{e}");
    let e = err(&served.replace("model = \"Qwen/Qwen3-32B\"\n", "base_url = \"http://x/v1\"\n"), &[]);
    assert!(e.contains("llm.s.serve.model: required"), "{e}");
    assert!(e.contains("base_url is derived from its port"), "{e}");
    let e = err(&served.replace("engine = \"vllm\"", "engine = \"tgi\""), &[]);
    assert!(e.contains("llm.s.serve.engine") && e.contains("vllm"), "{e}");
}

#[test]
fn imported_sets_are_checked_and_found_next_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("mine.jsonl"), "{\"question\": \"q\"}\n").unwrap();
    let path = dir.path().join("c.toml");
    let with = |import: &str| format!("{MINIMAL}\n{import}");
    let load = |text: String| {
        crate::config::load_str(&text, &path, &[]).map(|l| l.config).map_err(|e| e.to_string())
    };
    let c = load(with("[generate.import.mine]\npath = \"mine.jsonl\"\nlimit = 5\n")).unwrap();
    assert_eq!(c.generate.import["mine"].path, dir.path().join("mine.jsonl"), "relative to the config file");
    assert_eq!(c.generate.import["mine"].question, "question");
    let e = load(with("[generate.import.direct]\npath = \"mine.jsonl\"\n")).unwrap_err();
    assert!(e.contains("generate.import.direct: is a strategy's name"), "{e}");
    let e = load(with("[generate.import.my-set]\npath = \"mine.jsonl\"\n")).unwrap_err();
    assert!(e.contains("generate.import.my-set: the name is a folder"), "{e}");
    let e = load(with("[generate.import.x]\npath = \"nope.csv\"\nlimit = 0\n")).unwrap_err();
    assert!(e.contains("generate.import.x.path: ") && e.contains("nope.csv is not a file"), "{e}");
    assert!(e.contains("unknown format: expected a .jsonl, .json or .parquet file"), "{e}");
    assert!(e.contains("generate.import.x.limit: must be >= 1"), "{e}");
    let e = load(with("[generate.import.x]\npath = \"mine.jsonl\"\nquestoin = \"p\"\n")).unwrap_err();
    assert!(e.contains("generate.import.x.questoin: unknown key"), "{e}");
}

#[test]
fn primary_comparisons_name_arms_benchmarks_and_students_of_the_run() {
    let student = "\n[train.students.s]\nmodel_path = \"m\"\n";
    let ok = format!(
        "{MINIMAL}{student}\n[[report.primary]]\narm = \"vs_multi/curated\"\n[[report.primary]]\narm = \"vs_multi/curated\"\nagainst = \"baseline\"\nbenchmark = \"math500\"\nstudent = \"s\"\n"
    );
    let c = load_text(&ok, &[]).unwrap();
    assert_eq!(c.report.primary.len(), 2);
    assert_eq!(c.report.primary[0].benchmark, "average");
    assert_eq!(c.report.alpha(), 0.05);
    let e = err(&format!("{MINIMAL}{student}\n[[report.primary]]\narm = \"vs_mult/curated\"\n"), &[]);
    assert!(e.contains("report.primary[0].arm: `vs_mult/curated` is not an arm of this run (arms: vs_multi/curated, direct/curated)"), "{e}");
    let e = err(
        &format!(
            "{MINIMAL}{student}\n[[report.primary]]\narm = \"vs_multi/curated\"\nbenchmark = \"gsm8k\"\n"
        ),
        &[],
    );
    assert!(e.contains("report.primary[0].benchmark: `gsm8k` is not among evaluate.benchmarks"), "{e}");
    let e = err(
        &format!("{MINIMAL}{student}\n[[report.primary]]\narm = \"vs_multi/curated\"\nstudent = \"t\"\n"),
        &[],
    );
    assert!(e.contains("report.primary[0].student: no [train.students.t]"), "{e}");
    // Left out, `against` is Direct of the arm's curation, which Direct itself cannot use.
    let e = err(&format!("{MINIMAL}{student}\n[[report.primary]]\narm = \"direct/curated\"\n"), &[]);
    assert!(e.contains("report.primary[0].against: left out means Direct"), "{e}");
    let e = err(&format!("{MINIMAL}\n[report.power]\ndiscordance = 0\npower = 0.3\n"), &[]);
    assert!(
        e.contains("report.power.discordance: must be in (0, 1]") && e.contains("report.power.power"),
        "{e}"
    );
}

#[test]
fn a_token_budget_needs_the_smallest_arm_rule() {
    let e = err(&format!("{MINIMAL}\n[train]\nbudget = \"tokens\"\nexamples_per_arm = 100\n"), &[]);
    assert!(e.contains("train.budget: \"tokens\" matches every arm"), "{e}");
    let c = load_text(&format!("{MINIMAL}\n[train]\nbudget = \"tokens\"\n"), &[]).unwrap();
    assert_eq!(c.train.budget, BudgetUnit::Tokens);
    // The default is left out of the serialized config (identities made before stay).
    let c = load_text(MINIMAL, &[]).unwrap();
    assert!(serde_json::to_value(&c.train).unwrap().get("budget").is_none());
}

/// int8 decodes on the CPU (the local engine, evaluate) and nowhere else: training and a CUDA
/// device are refused, naming the key.
#[test]
fn int8_is_for_decoding_on_the_cpu() {
    let local = format!("{MINIMAL}\n[llm.mini]\nprovider = \"local\"\nmodel_path = \"m.gguf\"\n");
    load_text(&local, &["llm.mini.dtype=\"int8\"", "evaluate.dtype=\"int8\""]).unwrap();
    let e = err(&local, &["train.dtype=\"int8\""]);
    assert!(e.contains("train.dtype: int8 is for decoding only"), "{e}");
    let e = err(&local, &["llm.mini.dtype=\"int8\"", "llm.mini.device=\"cuda\""]);
    assert!(e.contains("llm.mini.dtype: int8 decodes on the CPU only"), "{e}");
    let e = err(&local, &["evaluate.dtype=\"int8\"", "evaluate.device=\"cuda:0\""]);
    assert!(e.contains("evaluate.dtype: int8 decodes on the CPU only"), "{e}");
}
