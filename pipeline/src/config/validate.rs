//! Checks that serde's types cannot express: ranges, references between sections, keys that only
//! apply to one provider. All problems are collected, not just the first.

use std::collections::BTreeMap;

use trainer::DeviceSpec;

use super::error::KeyPath;
use super::schema::*;

#[derive(Default)]
struct Problems(Vec<(KeyPath, String)>);

impl Problems {
    fn check(&mut self, ok: bool, key: impl FnOnce() -> KeyPath, message: impl Into<String>) {
        if !ok {
            self.0.push((key(), message.into()));
        }
    }

    fn at_least<T: PartialOrd + std::fmt::Display>(&mut self, value: T, min: T, key: KeyPath) {
        if value < min {
            self.0.push((key, format!("must be >= {min}")));
        }
    }

    fn within<T: PartialOrd + std::fmt::Display>(&mut self, value: T, min: T, max: T, key: KeyPath) {
        if value < min || value > max {
            self.0.push((key, format!("must be in [{min}, {max}], got {value}")));
        }
    }

    /// A value written into a generated script: one line, no NUL.
    fn one_line(&mut self, value: &str, key: impl FnOnce() -> KeyPath) {
        self.check(
            !value.contains(['\n', '\r', '\0']),
            key,
            "must be one line (it is written into the job scripts)",
        );
    }

    /// `lo < value <= hi` (open below) or `lo <= value <= hi`.
    fn in_range(&mut self, value: f64, lo: f64, hi: f64, open_lo: bool, key: KeyPath) {
        let ok = value.is_finite() && (if open_lo { value > lo } else { value >= lo }) && value <= hi;
        if !ok {
            let lo_bracket = if open_lo { "(" } else { "[" };
            self.0.push((key, format!("must be in {lo_bracket}{lo}, {hi}], got {value}")));
        }
    }

    fn device(&mut self, value: &str, key: KeyPath) {
        if let Err(e) = value.parse::<DeviceSpec>() {
            self.0.push((key, e.to_string()));
        }
    }

    /// int8 decodes on the CPU only (libtorch's weight-only int8 kernel), and never trains.
    fn int8_on_cpu(&mut self, dtype: DType, device: &str, key: KeyPath) {
        let on_cpu = !matches!(device.parse::<DeviceSpec>(), Ok(DeviceSpec::Cuda(_)));
        self.check(
            dtype != DType::Int8 || on_cpu,
            || key,
            format!(
                "int8 decodes on the CPU only (libtorch's weight-only int8 kernel), not on {device}: use bf16"
            ),
        );
    }

    fn llm_ref(&mut self, name: &str, llms: &BTreeMap<String, LlmConfig>, key: KeyPath) {
        if !llms.contains_key(name) {
            let defined = if llms.is_empty() {
                "no [llm.<name>] section is defined".to_owned()
            } else {
                format!("defined: {}", llms.keys().map(String::as_str).collect::<Vec<_>>().join(", "))
            };
            self.0.push((key, format!("no [llm.{name}] section ({defined})")));
        }
    }

    fn name(&mut self, name: &str, key: impl FnOnce() -> KeyPath) {
        let ok = !name.is_empty()
            && name != "."
            && name != ".."
            && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
        self.check(
            ok,
            key,
            format!(
                "`{name}` must be a non-empty name of letters, digits, `_`, `-` or `.` (it names a folder)"
            ),
        );
    }

    fn duplicates<T: PartialEq + std::fmt::Debug>(&mut self, items: &[T], key: &KeyPath) {
        for (i, item) in items.iter().enumerate() {
            if items[..i].contains(item) {
                self.0.push((key.clone().index(i), "listed twice".to_owned()));
            }
        }
    }
}

fn k(path: &str) -> KeyPath {
    KeyPath::parse(path)
}

pub(super) fn validate(c: &Config) -> Vec<(KeyPath, String)> {
    let mut p = Problems::default();
    run(&mut p, &c.run);
    for (name, llm) in &c.llm {
        p.name(name, || k("llm").key(name));
        llm_section(&mut p, llm, KeyPath::new().key("llm").key(name));
    }
    generate(&mut p, &c.generate, &c.llm);
    solve(&mut p, &c.solve, &c.llm);
    dedup(&mut p, &c.dedup);
    embeddings(&mut p, &c.dedup, &c.llm);
    p.in_range(c.verify.min_agreement, 0.0, 1.0, true, k("verify.min_agreement"));
    p.check(
        !c.verify.curation.is_empty(),
        || k("verify.curation"),
        "must name at least one of \"paper\", \"curated\"",
    );
    let mut curations = c.verify.curation.clone();
    curations.sort();
    curations.dedup();
    p.check(curations.len() == c.verify.curation.len(), || k("verify.curation"), "lists a curation twice");
    let mut seeds = c.train.seeds.clone();
    seeds.sort_unstable();
    seeds.dedup();
    p.check(seeds.len() == c.train.seeds.len(), || k("train.seeds"), "lists a seed twice");
    if let crate::config::ExamplesPerArm::Count(n) = c.train.examples_per_arm {
        p.check(n > 0, || k("train.examples_per_arm"), "must be \"min\", \"all\" or a positive number");
    }
    train(&mut p, &c.train);
    evaluate(&mut p, &c.evaluate, &c.llm);
    if c.train.budget == BudgetUnit::Tokens {
        p.check(
            c.train.examples_per_arm == ExamplesPerArm::Keyword(BudgetKeyword::Min),
            || k("train.budget"),
            "\"tokens\" matches every arm of a curation to the smallest one's supervised tokens: it needs \
             train.examples_per_arm = \"min\"",
        );
    }
    report(&mut p, c);
    slurm(&mut p, &c.slurm);
    let gpus = c.train.devices.iter().filter(|d| d.starts_with("cuda")).count();
    if let Some(asked) = c.slurm.stages.get("train").and_then(|s| s.gpus) {
        p.check(
            asked as usize >= gpus,
            || k("slurm.stages.train.gpus"),
            format!("asks for {asked} GPUs but train.devices lists {gpus}: leave it out to request those"),
        );
    }
    p.0
}

fn embeddings(p: &mut Problems, d: &crate::config::DedupConfig, llms: &BTreeMap<String, LlmConfig>) {
    use crate::config::EmbeddingsProvider;
    let e = &d.embeddings;
    match (e.provider, &e.llm) {
        (EmbeddingsProvider::Openai, None) => p.0.push((
            k("dedup.embeddings.llm"),
            "required for provider = \"openai\" (the [llm.<name>] with an /embeddings endpoint)".into(),
        )),
        (EmbeddingsProvider::Openai, Some(name)) => {
            p.llm_ref(name, llms, k("dedup.embeddings.llm"));
            if llms.get(name).is_some_and(|l| l.provider != Provider::Openai) {
                p.0.push((
                    k("dedup.embeddings.llm"),
                    format!("[llm.{name}] must be provider = \"openai\" (an /embeddings endpoint)"),
                ));
            }
        }
        (_, Some(_)) => p.0.push((k("dedup.embeddings.llm"), "only for provider = \"openai\"".into())),
        (_, None) => {}
    }
    if e.provider == EmbeddingsProvider::Local {
        p.device(&e.device, k("dedup.embeddings.device"));
        p.within(e.batch_size, 1, 4096, k("dedup.embeddings.batch_size"));
    }
    if d.semantic.enabled {
        p.check(
            e.provider != EmbeddingsProvider::None,
            || k("dedup.semantic.enabled"),
            "needs embeddings: set dedup.embeddings.provider to \"local\" or \"openai\"",
        );
        p.in_range(d.semantic.threshold, 0.0, 1.0, true, k("dedup.semantic.threshold"));
    }
}

fn slurm(p: &mut Problems, s: &crate::config::SlurmConfig) {
    let time_ok = |t: &str| {
        let (days, hms) = t.split_once('-').unwrap_or(("0", t));
        days.parse::<u32>().is_ok()
            && (1..=3).contains(&hms.split(':').count())
            && hms.split(':').all(|x| !x.is_empty() && x.parse::<u32>().is_ok())
    };
    let time_msg = "must be a Slurm time: MM, HH:MM:SS or D-HH:MM:SS";
    p.check(time_ok(&s.time), || k("slurm.time"), time_msg);
    p.at_least(s.shards.generate, 1, k("slurm.shards.generate"));
    p.at_least(s.shards.solve, 1, k("slurm.shards.solve"));
    p.at_least(s.shards.evaluate, 1, k("slurm.shards.evaluate"));
    for (name, stage) in &s.stages {
        let key = || k("slurm.stages").key(name);
        p.check(
            name.parse::<vs_core::StageName>().is_ok(),
            key,
            "is not a stage (generate, solve, dedup, verify, train, evaluate, report)",
        );
        if let Some(t) = &stage.time {
            p.check(time_ok(t), || key().key("time"), time_msg);
        }
    }
    for (name, value) in
        [("partition", &s.partition), ("account", &s.account), ("qos", &s.qos), ("mem", &s.mem)]
    {
        if let Some(v) = value {
            p.one_line(v, || k("slurm").key(name));
        }
    }
    for (name, list) in [("modules", &s.modules), ("extra", &s.extra), ("setup", &s.setup)] {
        for (i, v) in list.iter().enumerate() {
            p.one_line(v, || k("slurm").key(name).index(i));
        }
    }
    for (var, v) in &s.env {
        p.one_line(v, || k("slurm.env").key(var));
    }
    for (name, stage) in &s.stages {
        for (field, value) in [("mem", &stage.mem), ("partition", &stage.partition)] {
            if let Some(v) = value {
                p.one_line(v, || k("slurm.stages").key(name).key(field));
            }
        }
    }
    p.one_line(&s.template.to_string_lossy(), || k("slurm.template"));
    for var in s.env.keys() {
        let ok = !var.is_empty()
            && !var.starts_with(|c: char| c.is_ascii_digit())
            && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        p.check(ok, || k("slurm.env").key(var), "is not a shell variable name");
    }
}

fn serve_section(p: &mut Problems, s: &ServeConfig, l: &LlmConfig, at: KeyPath) {
    let key = |name: &str| at.clone().key(name);
    p.check(
        s.model.is_some() || l.model.is_some(),
        || key("model"),
        "required (a path or hub name to serve) when the section has no `model`",
    );
    p.at_least(s.tensor_parallel, 1, key("tensor_parallel"));
    p.check(
        s.startup_timeout_s.is_finite() && s.startup_timeout_s > 0.0,
        || key("startup_timeout_s"),
        "must be > 0",
    );
    match (s.engine, &s.command) {
        (ServeEngine::Command, None) => {
            p.0.push((key("command"), "required for engine = \"command\" (with {port} and {model})".into()))
        }
        (ServeEngine::Command, Some(c)) => {
            p.check(
                c.contains("{port}"),
                || key("command"),
                "must contain {port} (where the server listens)",
            );
            if let Err(why) = llm::server::check_template(c) {
                p.0.push((key("command"), why));
            }
        }
        (_, Some(_)) => p.0.push((key("command"), "only applies to engine = \"command\"".into())),
        _ => {}
    }
    if l.base_url.is_some() {
        p.0.push((
            at.clone(),
            "a served LLM's base_url is derived from its port: leave llm.<name>.base_url out".into(),
        ));
    }
}

fn run(p: &mut Problems, r: &RunConfig) {
    p.name(&r.name, || k("run.name"));
    p.check(!r.out_dir.as_os_str().is_empty(), || k("run.out_dir"), "must not be empty");
    p.in_range(r.max_failed_fraction, 0.0, 1.0, false, k("run.max_failed_fraction"));
}

fn llm_section(p: &mut Problems, l: &LlmConfig, at: KeyPath) {
    let key = |name: &str| at.clone().key(name);
    let only_for = |p: &mut Problems, set: bool, name: &str, provider: &str| {
        p.check(!set, || key(name), format!("only applies to provider = \"{provider}\""));
    };
    if let Some(serve) = &l.serve {
        serve_section(p, serve, l, at.clone().key("serve"));
    }
    match l.provider {
        Provider::Openai => {
            match &l.base_url {
                None if l.serve.is_some() => {}
                None => p.0.push((
                    key("base_url"),
                    "required for provider = \"openai\" (or a [serve] section that starts the server)".into(),
                )),
                Some(url) => {
                    let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
                    match rest {
                        None => p.0.push((key("base_url"), "must start with http:// or https://".into())),
                        Some(rest) => p.check(
                            !rest.split('/').next().unwrap_or("").contains('@'),
                            || key("base_url"),
                            "must not carry credentials: put the key in an environment variable named by `api_key_env`",
                        ),
                    }
                }
            }
            p.check(
                l.model.as_deref().is_some_and(|m| !m.trim().is_empty())
                    || l.serve.as_ref().is_some_and(|s| s.model.is_some()),
                || key("model"),
                "required for provider = \"openai\" (the model name sent with each request)",
            );
            if let Some(var) = &l.api_key_env
                && looks_like_secret(var)
            {
                // Never echo the value: it is probably the key.
                p.0.push((
                    key("api_key_env"),
                    "looks like an API key, not the NAME of the environment variable holding one: put the key in a variable (e.g. `export OPENAI_API_KEY=...`) and write api_key_env = \"OPENAI_API_KEY\"; if that was a real key, revoke it".into(),
                ));
            } else if let Some(var) = &l.api_key_env {
                let is_name = var.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                // Never echo the value: it may be the secret itself, pasted in by mistake.
                p.check(
                    is_name,
                    || key("api_key_env"),
                    "must be the NAME of the environment variable holding the key (e.g. OPENAI_API_KEY), not the key itself",
                );
            }
            only_for(p, l.model_path.is_some(), "model_path", "local");
            only_for(p, l.device.is_some(), "device", "local");
        }
        Provider::Local => {
            match &l.model_path {
                None => p.0.push((
                    key("model_path"),
                    "required for provider = \"local\" (a GGUF file or a Hugging Face folder)".into(),
                )),
                Some(path) => {
                    p.check(!path.as_os_str().is_empty(), || key("model_path"), "must not be empty")
                }
            }
            if let Some(device) = &l.device {
                p.device(device, key("device"));
            }
            if let Some(dtype) = l.dtype {
                p.int8_on_cpu(dtype, l.device.as_deref().unwrap_or("cpu"), key("dtype"));
            }
            only_for(p, l.base_url.is_some(), "base_url", "openai");
            only_for(p, l.model.is_some(), "model", "openai");
            only_for(p, l.api_key_env.is_some(), "api_key_env", "openai");
            only_for(p, l.requests_per_minute.is_some(), "requests_per_minute", "openai");
            only_for(p, l.structured_output.is_some(), "structured_output", "openai");
            only_for(p, l.serve.is_some(), "serve", "openai");
        }
    }
    p.within(l.max_concurrency, 1, 4096, key("max_concurrency"));
    if let Some(rpm) = l.requests_per_minute {
        p.within(rpm, 1, 1_000_000, key("requests_per_minute"));
    }
    p.within(l.max_retries, 0, 100, key("max_retries"));
    // A day at most: past that a "timeout" is a hang, and Duration would overflow long before
    // a value like 1e20.
    p.in_range(l.timeout_s, 0.0, 86_400.0, true, key("timeout_s"));
    p.in_range(l.deadline_s, 0.0, 7.0 * 86_400.0, true, key("deadline_s"));
    p.check(
        l.deadline_s >= l.timeout_s || !l.deadline_s.is_finite() || !l.timeout_s.is_finite(),
        || key("deadline_s"),
        format!("must be >= timeout_s ({}): it bounds a whole call, retries included", l.timeout_s),
    );
    p.in_range(l.temperature, 0.0, 2.0, false, key("temperature"));
    p.in_range(l.top_p, 0.0, 1.0, true, key("top_p"));
    p.within(l.max_tokens, 1, 10_000_000, key("max_tokens"));
}

/// Prefixes of API keys as providers issue them (OpenAI, Hugging Face, Groq, xAI, Google, ...).
const KEY_PREFIXES: [&str; 9] = ["sk-", "sk_", "hf_", "gsk_", "xai-", "pk-", "AIza", "ghp_", "nvapi-"];

/// Whether an `api_key_env` value looks like a key rather than a variable's name: a known key
/// prefix, or long and mixing lower case, upper case and digits the way random tokens do
/// (variable names are conventionally UPPER_SNAKE_CASE).
pub(crate) fn looks_like_secret(value: &str) -> bool {
    // Issued keys are long; a short `hf_token` is a variable's name (`sk-...` never is one).
    if KEY_PREFIXES.iter().any(|p| value.starts_with(p) && (p.ends_with('-') || value.len() >= 20)) {
        return true;
    }
    let lower = value.chars().any(|c| c.is_ascii_lowercase());
    let upper = value.chars().any(|c| c.is_ascii_uppercase());
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let mut counts = std::collections::HashMap::new();
    for c in value.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
    }
    let n = value.chars().count() as f64;
    let entropy: f64 = counts.values().map(|&k| -(k as f64 / n) * (k as f64 / n).log2()).sum();
    value.len() >= 20 && ((lower && upper && digits >= 2) || (entropy >= 4.2 && digits >= 3))
}

fn generate(p: &mut Problems, g: &GenerateConfig, llms: &BTreeMap<String, LlmConfig>) {
    p.llm_ref(&g.llm, llms, k("generate.llm"));
    p.check(
        !g.strategies.is_empty() || !g.import.is_empty(),
        || k("generate.strategies"),
        "list at least one strategy (or import a problem set: [generate.import.<name>])",
    );
    for (name, import) in &g.import {
        let key = || k(&format!("generate.import.{name}"));
        p.check(
            !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            key,
            // Problem ids are `<name>-<identity>-<row>`: a `-` in the name would blur them.
            "the name is a folder, a report row and the head of problem ids: letters, digits or `_`",
        );
        p.check(
            !vs_core::Strategy::ALL.iter().any(|s| s.as_str() == name),
            key,
            "is a strategy's name: an imported set needs a name of its own",
        );
        let path_key = || k(&format!("generate.import.{name}.path"));
        p.check(
            import.path.is_file(),
            path_key,
            format!(
                "{} is not a file (a relative path is relative to the config file)",
                import.path.display()
            ),
        );
        if let Err(e) = curation::import::Format::of(&import.path) {
            p.check(false, path_key, e.to_string());
        }
        if let Some(limit) = import.limit {
            p.at_least(limit, 1, k(&format!("generate.import.{name}.limit")));
        }
    }
    p.duplicates(&g.strategies, &k("generate.strategies"));
    if let crate::strategy::TaskSource::File(path) = crate::strategy::TaskSource::of(&g.task) {
        let builtin: Vec<&str> = crate::strategy::BUILTIN_TASKS.iter().map(|(name, _)| *name).collect();
        p.check(path.is_file(), || k("generate.task"), format!(
            "`{}` is neither a built-in task ({}) nor a file (a relative path is relative to the config file)",
            path.display(),
            builtin.join(", ")
        ));
    }
    p.within(g.num_problems, 1, 10_000_000, k("generate.num_problems"));
    p.at_least(g.k, 1, k("generate.k"));
    p.at_least(g.target_words, 1, k("generate.target_words"));
    p.at_least(g.samples_per_turn, 1, k("generate.samples_per_turn"));
    // A call's key packs the turn and the parse attempt in a byte each.
    p.within(g.max_parse_retries, 0, 100, k("generate.max_parse_retries"));
    p.check(
        g.k == 0 || g.samples_per_turn <= g.k,
        || k("generate.samples_per_turn"),
        format!("must be <= generate.k ({})", g.k),
    );
    if let Some(t) = g.probability_tuning {
        p.in_range(t, 0.0, 1.0, true, k("generate.probability_tuning"));
    }
    let s = &g.selection;
    match (s.mode, s.tau) {
        (SelectionMode::All, Some(_)) => p.0.push((
            k("generate.selection.tau"),
            "only applies with mode = \"keep_at_least\" or \"keep_below\"".into(),
        )),
        (SelectionMode::KeepAtLeast | SelectionMode::KeepBelow, None) => {
            p.0.push((k("generate.selection.tau"), "required when mode filters by probability".into()))
        }
        (_, Some(tau)) => p.in_range(tau, 0.0, 1.0, true, k("generate.selection.tau")),
        (SelectionMode::All, None) => {}
    }
    if s.mode != SelectionMode::All
        && let Some(plain) = g.strategies.iter().find(|st| !st.is_verbalized())
    {
        p.0.push((
            k("generate.selection.mode"),
            format!("filters by verbalized probability, which `{plain}` does not give; use mode = \"all\" or only vs_* strategies"),
        ));
    }
}

fn solve(p: &mut Problems, s: &SolveConfig, llms: &BTreeMap<String, LlmConfig>) {
    if let Some(llm) = &s.llm {
        p.llm_ref(llm, llms, k("solve.llm"));
    }
    p.within(s.num_solutions, 1, 1000, k("solve.num_solutions"));
    p.in_range(s.temperature, 0.0, 2.0, false, k("solve.temperature"));
    p.in_range(s.top_p, 0.0, 1.0, true, k("solve.top_p"));
    if let Some(m) = s.max_tokens {
        p.at_least(m, 1, k("solve.max_tokens"));
    }
}

fn dedup(p: &mut Problems, d: &DedupConfig) {
    p.within(d.minhash.ngram, 1, 1000, k("dedup.minhash.ngram"));
    p.within(d.minhash.num_perm, 1, 4096, k("dedup.minhash.num_perm"));
    p.check(
        d.minhash.false_negative_weight > 0.0 && d.minhash.false_negative_weight < 1.0,
        || k("dedup.minhash.false_negative_weight"),
        "must be between 0 and 1 (exclusive)",
    );
    match (d.minhash.bands, d.minhash.rows) {
        (Some(b), Some(r)) => {
            p.within(b, 1, 1024, k("dedup.minhash.bands"));
            p.within(r, 1, 1024, k("dedup.minhash.rows"));
        }
        (None, None) => {}
        (Some(_), None) => p.check(false, || k("dedup.minhash.rows"), "set with `bands` (both or neither)"),
        (None, Some(_)) => p.check(false, || k("dedup.minhash.bands"), "set with `rows` (both or neither)"),
    }
    p.in_range(d.minhash.threshold, 0.0, 1.0, true, k("dedup.minhash.threshold"));
    p.within(d.decontaminate.ngram, 1, 1000, k("dedup.decontaminate.ngram"));
    p.in_range(d.decontaminate.minhash_threshold, 0.0, 1.0, true, k("dedup.decontaminate.minhash_threshold"));
    p.in_range(d.semantic.threshold, 0.0, 1.0, true, k("dedup.semantic.threshold"));
}

fn train(p: &mut Problems, t: &TrainConfig) {
    for (name, student) in &t.students {
        p.name(name, || k("train.students").key(name));
        p.check(
            !student.model_path.as_os_str().is_empty(),
            || k("train.students").key(name).key("model_path"),
            "must not be empty",
        );
    }
    if let Some(data) = &t.data {
        p.check(!data.as_os_str().is_empty(), || k("train.data"), "must not be empty");
    }
    p.device(&t.device, k("train.device"));
    p.check(
        t.dtype != DType::Int8,
        || k("train.dtype"),
        "int8 is for decoding only (llm.<name>.dtype, evaluate.dtype): train in f32, bf16 or auto",
    );
    train_devices(p, t);
    p.at_least(t.epochs, 1, k("train.epochs"));
    if let Some(m) = t.max_steps {
        p.at_least(m, 1, k("train.max_steps"));
    }
    p.check(t.learning_rate.is_finite() && t.learning_rate > 0.0, || k("train.learning_rate"), "must be > 0");
    p.check(
        (0.0..1.0).contains(&t.warmup_ratio),
        || k("train.warmup_ratio"),
        format!("must be in [0, 1), got {}", t.warmup_ratio),
    );
    p.check(t.weight_decay.is_finite() && t.weight_decay >= 0.0, || k("train.weight_decay"), "must be >= 0");
    for (name, beta) in [("train.adam_beta1", t.adam_beta1), ("train.adam_beta2", t.adam_beta2)] {
        p.check((0.0..1.0).contains(&beta), || k(name), format!("must be in [0, 1), got {beta}"));
    }
    p.check(t.adam_epsilon.is_finite() && t.adam_epsilon > 0.0, || k("train.adam_epsilon"), "must be > 0");
    p.within(t.batch_size, 1, 1 << 16, k("train.batch_size"));
    p.within(t.grad_accum_steps, 1, 1 << 16, k("train.grad_accum_steps"));
    if let Some(n) = t.max_grad_norm {
        p.check(
            n.is_finite() && n > 0.0,
            || k("train.max_grad_norm"),
            "must be > 0 (leave it out to disable clipping)",
        );
    }
    p.within(t.max_seq_len, 2, 1 << 20, k("train.max_seq_len"));
    p.at_least(t.log_every, 1, k("train.log_every"));
    if let Some(n) = t.checkpoint_every {
        p.at_least(n, 1, k("train.checkpoint_every"));
    }
}

fn train_devices(p: &mut Problems, t: &TrainConfig) {
    if t.devices.is_empty() {
        return;
    }
    let same = |a: &str, b: &str| a.parse::<DeviceSpec>().ok().is_some_and(|a| b.parse().ok() == Some(a));
    p.check(
        t.device == TrainConfig::default().device || same(&t.device, &t.devices[0]),
        || k("train.device"),
        "set train.devices alone for data parallel training (it replaces train.device)",
    );
    let specs: Vec<DeviceSpec> = t
        .devices
        .iter()
        .enumerate()
        .filter_map(|(i, d)| match d.parse::<DeviceSpec>() {
            Ok(spec) => Some(spec),
            Err(e) => {
                p.0.push((k("train.devices").index(i), e.to_string()));
                None
            }
        })
        .collect();
    let cpu = specs.iter().filter(|d| **d == DeviceSpec::Cpu).count();
    p.check(
        cpu == 0 || cpu == specs.len(),
        || k("train.devices"),
        "mixes `cpu` with GPUs: every worker must be of one kind",
    );
    for (i, d) in specs.iter().enumerate() {
        p.check(
            *d == DeviceSpec::Cpu || !specs[..i].contains(d),
            || k("train.devices").index(i),
            "listed twice",
        );
    }
    let n = t.devices.len();
    p.check(
        t.grad_accum_steps.is_multiple_of(n),
        || k("train.grad_accum_steps"),
        format!(
            "must be a multiple of the number of train.devices ({n}), got {}: the devices share each \
             step's micro-batches (the effective batch is batch_size x grad_accum_steps on any number \
             of devices)",
            t.grad_accum_steps
        ),
    );
}

fn evaluate(p: &mut Problems, e: &EvaluateConfig, llms: &BTreeMap<String, LlmConfig>) {
    p.check(!e.benchmarks.is_empty(), || k("evaluate.benchmarks"), "list at least one benchmark");
    p.duplicates(&e.benchmarks, &k("evaluate.benchmarks"));
    if let Some(n) = e.subset {
        p.at_least(n, 1, k("evaluate.subset"));
    }
    p.within(e.max_new_tokens, 1, 1 << 20, k("evaluate.max_new_tokens"));
    p.within(e.batch_size, 1, 4096, k("evaluate.batch_size"));
    p.device(&e.device, k("evaluate.device"));
    p.int8_on_cpu(e.dtype, &e.device, k("evaluate.dtype"));
    if let Some(serve) = &e.serve {
        p.check(
            e.llm.is_none(),
            || k("evaluate.serve"),
            "set evaluate.llm (a running server) or evaluate.serve (one started per target), not both",
        );
        p.check(
            serve.model.is_none(),
            || k("evaluate.serve.model"),
            "must be left out: each target is served in turn",
        );
        p.at_least(serve.tensor_parallel, 1, k("evaluate.serve.tensor_parallel"));
        p.check(
            serve.engine != ServeEngine::Command
                || serve.command.as_deref().is_some_and(|c| c.contains("{port}")),
            || k("evaluate.serve.command"),
            "engine = \"command\" needs a command with {port} and {model}",
        );
        if let Some(Err(why)) = serve.command.as_deref().map(llm::server::check_template) {
            p.0.push((k("evaluate.serve.command"), why));
        }
    }
    if let Some(m) = &e.math_verify {
        p.check(
            m.timeout_s.is_finite() && m.timeout_s > 0.0 && m.timeout_s <= 86_400.0,
            || k("evaluate.math_verify.timeout_s"),
            "must be a number of seconds above 0, at most a day",
        );
    }
    if let Some(llm) = &e.llm {
        p.llm_ref(llm, llms, k("evaluate.llm"));
        if llms.get(llm).is_some_and(|l| l.provider != Provider::Openai) {
            p.0.push((
                k("evaluate.llm"),
                format!("[llm.{llm}] must be provider = \"openai\" (a server such as vLLM serving the models); leave evaluate.llm out to use the local engine"),
            ));
        }
    }
}

/// The arms a config trains (`<origin>/<curation>`, or `custom`), as the stages label them.
fn arm_labels(c: &Config) -> Vec<String> {
    crate::stages::arms::sources(c).iter().map(crate::stages::arms::Source::label).collect()
}

fn report(p: &mut Problems, c: &Config) {
    let r = &c.report;
    p.within(r.bootstrap_samples, 1, 1_000_000, k("report.bootstrap_samples"));
    p.check(
        r.confidence > 0.0 && r.confidence < 1.0,
        || k("report.confidence"),
        format!("must be strictly between 0 and 1, got {}", r.confidence),
    );
    let w = &r.power;
    p.check(
        w.power > 0.5 && w.power < 1.0,
        || k("report.power.power"),
        format!("must be in (0.5, 1), got {}", w.power),
    );
    p.in_range(w.discordance, 0.0, 1.0, true, k("report.power.discordance"));
    p.check(
        w.seed_sd_points.is_finite() && w.seed_sd_points >= 0.0,
        || k("report.power.seed_sd_points"),
        "must be >= 0 (points of accuracy)",
    );
    if let Some(t) = w.target_points {
        p.in_range(t, 0.0, 100.0, true, k("report.power.target_points"));
    }
    let arms = arm_labels(c);
    let listed = || arms.join(", ");
    let benchmarks: Vec<&str> = c.evaluate.benchmarks.iter().map(|b| b.as_str()).collect();
    for (i, entry) in r.primary.iter().enumerate() {
        let key = |field: &str| k("report.primary").index(i).key(field);
        p.check(
            arms.contains(&entry.arm),
            || key("arm"),
            format!("`{}` is not an arm of this run (arms: {})", entry.arm, listed()),
        );
        match entry.against.as_deref() {
            Some("baseline") => {
                p.check(c.evaluate.baseline, || key("against"), "\"baseline\" needs evaluate.baseline = true")
            }
            Some(other) => {
                p.check(
                    arms.iter().any(|a| a == other),
                    || key("against"),
                    format!("`{other}` is not an arm of this run (arms: {}, or \"baseline\")", listed()),
                );
                p.check(other != entry.arm, || key("against"), "compares the arm with itself");
            }
            None => {
                let direct = entry.against_or_direct();
                p.check(
                    direct.as_ref().is_some_and(|d| arms.contains(d) && *d != entry.arm),
                    || key("against"),
                    format!(
                        "left out means Direct of the arm's curation, which this run does not train against `{}`: \
                         name `against` (\"baseline\" or an arm)",
                        entry.arm
                    ),
                );
            }
        }
        p.check(
            entry.benchmark == PrimaryComparison::AVERAGE || benchmarks.contains(&entry.benchmark.as_str()),
            || key("benchmark"),
            format!(
                "`{}` is not among evaluate.benchmarks ({}) or \"average\"",
                entry.benchmark,
                benchmarks.join(", ")
            ),
        );
        if let Some(student) = &entry.student {
            p.check(
                c.train.students.contains_key(student),
                || key("student"),
                format!("no [train.students.{student}]"),
            );
        }
    }
    let mut seen = Vec::new();
    for (i, entry) in r.primary.iter().enumerate() {
        let id = (&entry.arm, &entry.against, &entry.benchmark, &entry.student);
        p.check(!seen.contains(&id), || k("report.primary").index(i), "listed twice");
        seen.push(id);
    }
}
