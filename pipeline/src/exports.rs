//! The verified data of a run in the formats trainers read: LLaMA-Factory's `alpaca` and
//! `sharegpt` JSON with their `dataset_info.json` entries (the paper fine-tuned with
//! LLaMA-Factory), and one Hugging Face `datasets` folder per arm (`data/train.jsonl` and a
//! dataset card saying how it was made: generator, origin, the funnel, diversity,
//! decontamination). `pipeline export-data` writes them from a run's `verify/` outputs and
//! manifests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::config::Config;
use crate::manifest::Manifest;
use crate::stages::StageError;
use crate::stages::arms::Arm;
use crate::stages::verify::VerifiedPair;
use vs_core::fs::write_atomic;

/// A row of the Hugging Face export (`data/train.jsonl`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetRow {
    pub id: String,
    pub problem: String,
    pub solution: String,
    pub answer: String,
    /// Share of the solver's samples that agree with `answer`.
    pub agreement: f64,
    /// The strategy or imported set the problem comes from.
    pub origin: String,
    pub curation: String,
}

/// An `alpaca` record, LLaMA-Factory's default column names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alpaca {
    pub instruction: String,
    pub input: String,
    pub output: String,
}

/// A `sharegpt` turn, LLaMA-Factory's default tags.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Turn {
    pub from: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sharegpt {
    pub conversations: Vec<Turn>,
}

/// What was written.
#[derive(Debug, Default)]
pub struct Written {
    pub files: Vec<PathBuf>,
    /// Rows per arm label.
    pub rows: BTreeMap<String, usize>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> StageError + '_ {
    move |source| StageError::Io { path: path.to_owned(), source }
}

fn json_bytes(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_string_pretty(value).expect("exports serialize").into_bytes()
}

/// `vs_multi/curated` as a file or dataset name: `vs_multi-curated`.
pub fn slug(arm: &Arm) -> String {
    format!("{}-{}", arm.origin.as_str(), arm.curation.as_str())
}

fn inconsistent(path: &Path, message: String) -> StageError {
    StageError::Inconsistent { path: path.to_owned(), message }
}

/// Writes every arm's verified pairs under `out`: `llamafactory/` and `hf/<arm>/`.
///
/// Nothing is written until every arm has been read and checked, and every file is written to
/// a temporary file and renamed over its name (`dataset_info.json` last): an export that fails
/// leaves the previous one whole. `dataset_info.json` is merged: the entries of other runs and
/// the user's stay, ours are replaced. Refused before anything is written: an `out` that is,
/// holds or lies inside what the export reads, and a file of ours that another entry of
/// `dataset_info.json` (or another run's dataset card) already claims.
pub fn export_run(config: &Config, run_root: &Path, out: &Path) -> Result<Written, StageError> {
    let inputs = [
        run_root.join("verify"),
        run_root.join("generate/manifest.json"),
        run_root.join("dedup/manifest.json"),
    ];
    if let Some(input) = inputs.iter().find(|input| vs_core::fs::overlaps(out, input)) {
        return Err(inconsistent(
            out,
            format!(
                "is, holds or lies inside {}, which the export reads: choose another --out; nothing was written",
                input.display()
            ),
        ));
    }
    let verify = Manifest::read(&run_root.join("verify/manifest.json"))?.ok_or_else(|| StageError::Inconsistent {
        path: run_root.to_owned(),
        message: "no verify manifest: run the stages up to verify first (`pipeline run --stages generate,solve,dedup,verify`)"
            .to_owned(),
    })?;
    let manifest = |stage: &str| Manifest::read(&run_root.join(stage).join("manifest.json")).ok().flatten();
    let (generate, dedup) = (manifest("generate"), manifest("dedup"));
    let mut written = Written::default();
    let factory = out.join("llamafactory");
    // Every file's path and bytes, written only once all are made.
    let mut files: Vec<(PathBuf, Vec<u8>)> = Vec::new();
    let mut info = serde_json::Map::new();
    let run = &config.run.name;
    for arm in crate::stages::arms::arms(config) {
        let path = run_root.join("verify").join(arm.path()).join("train.jsonl");
        let pairs: Vec<VerifiedPair> = vs_core::jsonl::read_jsonl(&path)?;
        // Export only what the last verify run vouches for: a file it did not write (the config's
        // arms changed since) or that changed after it would be data no manifest describes.
        let label = path.strip_prefix(run_root).unwrap_or(&path).to_string_lossy().into_owned();
        let vouched =
            verify.outputs.iter().find(|o| o.path == label).ok_or_else(|| StageError::Inconsistent {
                path: PathBuf::from(&label),
                message:
                    "not written by the last verify run (the config's arms changed since?): run verify first"
                        .to_owned(),
            })?;
        let (sha256, _) = vs_core::digest::sha256_file(&path).map_err(io(&path))?;
        if sha256 != vouched.sha256 {
            return Err(StageError::Inconsistent {
                path: PathBuf::from(&label),
                message: format!(
                    "changed since verify wrote it (sha256 {sha256}, manifest {}): rerun verify",
                    vouched.sha256
                ),
            });
        }
        let name = slug(&arm);
        let alpaca: Vec<Alpaca> = pairs
            .iter()
            .map(|p| Alpaca {
                instruction: p.prompt.clone(),
                input: String::new(),
                output: p.completion.clone(),
            })
            .collect();
        let sharegpt: Vec<Sharegpt> = pairs
            .iter()
            .map(|p| Sharegpt {
                conversations: vec![
                    Turn { from: "human".into(), value: p.prompt.clone() },
                    Turn { from: "gpt".into(), value: p.completion.clone() },
                ],
            })
            .collect();
        files.push((factory.join(format!("{name}.alpaca.json")), json_bytes(&alpaca)));
        files.push((factory.join(format!("{name}.sharegpt.json")), json_bytes(&sharegpt)));
        info.insert(format!("{run}_{name}_alpaca"), json!({ "file_name": format!("{name}.alpaca.json") }));
        info.insert(
            format!("{run}_{name}_sharegpt"),
            json!({ "file_name": format!("{name}.sharegpt.json"), "formatting": "sharegpt",
                    "columns": { "messages": "conversations" },
                    "tags": { "role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt" } }),
        );

        let folder = out.join("hf").join(&name);
        let rows: Vec<DatasetRow> = pairs
            .iter()
            .map(|p| DatasetRow {
                id: p.id.clone(),
                problem: p.prompt.clone(),
                solution: p.completion.clone(),
                answer: p.answer.clone(),
                agreement: p.agreement,
                origin: arm.origin.as_str().to_owned(),
                curation: arm.curation.as_str().to_owned(),
            })
            .collect();
        // As `vs_core::jsonl::write_all` writes it.
        let jsonl: String =
            rows.iter().map(|r| serde_json::to_string(r).expect("exports serialize") + "\n").collect();
        let card = dataset_card(
            config,
            &arm,
            (rows.len(), jsonl.len() as u64),
            generate.as_ref(),
            dedup.as_ref(),
            &verify,
        );
        let readme = folder.join("README.md");
        refuse_another_card(&readme, &card)?;
        files.push((folder.join("data").join("train.jsonl"), jsonl.into_bytes()));
        files.push((readme, card.into_bytes()));
        written.rows.insert(arm.label(), rows.len());
    }
    let info_path = factory.join("dataset_info.json");
    let info = merged_info(&info_path, info)?;
    files.push((info_path, json_bytes(&Value::Object(info))));
    for (path, bytes) in files {
        write_atomic(&path, &bytes).map_err(io(&path))?;
        written.files.push(path);
    }
    Ok(written)
}

/// The `dataset_info.json` at `path` (a user's, another run's) with our `entries` set in it:
/// other entries stay. An entry of another name that points at one of our files would then
/// name data it did not describe: refused.
fn merged_info(
    path: &Path,
    entries: serde_json::Map<String, Value>,
) -> Result<serde_json::Map<String, Value>, StageError> {
    let mut info = match std::fs::read(path) {
        Ok(bytes) => match serde_json::from_slice::<Value>(strip_bom(&bytes)) {
            Ok(Value::Object(info)) => info,
            Ok(_) => {
                return Err(inconsistent(
                    path,
                    "is not a JSON object: fix or remove it; nothing was written".into(),
                ));
            }
            Err(e) => {
                return Err(inconsistent(
                    path,
                    format!("is not JSON ({e}): fix or remove it; nothing was written"),
                ));
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::Map::new(),
        Err(e) => return Err(io(path)(e)),
    };
    let file_of = |entry: &Value| entry.get("file_name").and_then(Value::as_str).map(str::to_owned);
    for (key, entry) in &entries {
        let ours = file_of(entry);
        if let Some((other, _)) =
            info.iter().find(|(k, e)| !entries.contains_key(*k) && ours.is_some() && file_of(e) == ours)
        {
            return Err(inconsistent(
                path,
                format!(
                    "entry `{other}` already names {} (another run's export?), which `{key}` would replace: choose another --out, or remove that entry; nothing was written",
                    ours.unwrap_or_default()
                ),
            ));
        }
    }
    info.extend(entries);
    Ok(info)
}

/// A dataset card at `path` whose title is not `card`'s is another run's (or a user's) folder.
fn refuse_another_card(path: &Path, card: &str) -> Result<(), StageError> {
    let title = |text: &str| text.lines().find(|l| l.starts_with("# ")).map(str::to_owned);
    match std::fs::read_to_string(path) {
        Ok(old) if title(&old) != title(card) => Err(inconsistent(
            path,
            format!(
                "is the card of {}, not of this run's arm: choose another --out; nothing was written",
                title(&old).map_or_else(|| "another dataset".to_owned(), |t| format!("`{}`", &t[2..]))
            ),
        )),
        _ => Ok(()),
    }
}

/// `bytes` without a leading UTF-8 byte order mark (an editor's).
fn strip_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// The card: YAML front matter `datasets` reads (the data files, the features), then how the
/// set was made, from the run's config and manifests.
fn dataset_card(
    config: &Config,
    arm: &Arm,
    (rows, bytes): (usize, u64),
    generate: Option<&Manifest>,
    dedup: Option<&Manifest>,
    verify: &Manifest,
) -> String {
    let origin = arm.origin.as_str();
    let count = |m: Option<&Manifest>, key: &str, what: &str| -> Value {
        m.and_then(|m| m.counts.get(key)).and_then(|c| c.get(what)).cloned().unwrap_or(Value::Null)
    };
    let mut md = String::new();
    let _ = writeln!(md, "---");
    let _ = writeln!(
        md,
        "configs:\n- config_name: default\n  data_files:\n  - split: train\n    path: data/train.jsonl"
    );
    let _ = writeln!(md, "dataset_info:\n  features:");
    for (name, dtype) in [
        ("id", "string"),
        ("problem", "string"),
        ("solution", "string"),
        ("answer", "string"),
        ("agreement", "float64"),
        ("origin", "string"),
        ("curation", "string"),
    ] {
        let _ = writeln!(md, "  - name: {name}\n    dtype: {dtype}");
    }
    let _ = writeln!(md, "  splits:\n  - name: train\n    num_bytes: {bytes}\n    num_examples: {rows}");
    let _ = writeln!(
        md,
        "task_categories:\n- text-generation\ntags:\n- math\n- synthetic\n- verbalized-sampling"
    );
    let _ = writeln!(md, "---\n");
    let _ = writeln!(md, "# {} / {}\n", config.run.name, arm.label());
    let _ = writeln!(
        md,
        "{rows} competition-style math problems with a verified solution each, made by the VS pipeline \
         (run `{}`, arm `{}`).\n",
        config.run.name,
        arm.label()
    );
    let _ = writeln!(md, "## How it was made\n");
    match &arm.origin {
        vs_core::Origin::Strategy(s) => {
            let model = model_of(config, &config.generate.llm);
            let _ = writeln!(
                md,
                "- **Problems**: generated by `{model}` with the `{s}` prompting strategy (k = {}, task `{}`).",
                config.generate.k,
                Path::new(&config.generate.task)
                    .file_name()
                    .map_or(config.generate.task.clone(), |n| n.to_string_lossy().into_owned())
            );
        }
        vs_core::Origin::Import(name) => {
            let import = &config.generate.import[name];
            let _ = writeln!(
                md,
                "- **Problems**: imported from `{}` (field `{}`).",
                import.path.file_name().map_or(String::new(), |n| n.to_string_lossy().into_owned()),
                import.question
            );
        }
    }
    let solver = config.solve.llm.clone().unwrap_or_else(|| config.generate.llm.clone());
    let solver = model_of(config, &solver);
    let _ = writeln!(
        md,
        "- **Solutions**: `{solver}`, {} samples per problem, the paper's prompt (\"Please reason step by step, and put your final answer within \\boxed{{}}\").",
        config.solve.num_solutions
    );
    match arm.curation {
        crate::config::Curation::Curated => {
            let _ = writeln!(
                md,
                "- **Curation**: degenerate items, exact and near duplicates (MinHash-LSH, Jaccard >= {}) and \
                 benchmark-contaminated problems dropped; kept when more than {:.0}% of the samples agree on the \
                 final answer (answer equivalence), with a solution that stopped on its own.",
                config.dedup.minhash.threshold,
                config.verify.min_agreement * 100.0
            );
        }
        crate::config::Curation::Paper => {
            let _ = writeln!(
                md,
                "- **Curation**: none beyond an answered solution (the paper's setting: every generated problem kept)."
            );
        }
    }
    let _ = writeln!(md, "\n## Funnel\n\n| step | problems |\n|---|---:|");
    let _ = writeln!(md, "| generated / imported | {} |", count(generate, origin, "kept"));
    if let Some(d) = dedup.and_then(|m| m.counts.get(origin)) {
        for (key, label) in [
            ("degenerate", "degenerate"),
            ("exact", "exact duplicates"),
            ("near", "near duplicates"),
            ("contaminated", "contaminated"),
            ("semantic", "semantic duplicates"),
        ] {
            if let Some(n) = d.get("dropped").and_then(|x| x.get(key)) {
                let _ = writeln!(md, "| dropped: {label} | {n} |");
            }
        }
        if let Some(kept) = d.get("kept") {
            let _ = writeln!(md, "| after dedup and decontamination | {kept} |");
        }
    }
    let _ = writeln!(md, "| verified (this set) | {} |", count(Some(verify), &arm.label(), "kept"));
    if let Some(by) =
        dedup.and_then(|m| m.counts.get(origin)).and_then(|d| d.get("contaminated_by_benchmark"))
    {
        let _ = writeln!(
            md,
            "\nDecontaminated against MATH500, OlympiadBench and Minerva Math (13-gram overlap or MinHash Jaccard >= {}): {by}",
            config.dedup.decontaminate.minhash_threshold
        );
    }
    if let Some(div) = dedup.and_then(|m| m.metrics.get(&format!("diversity/{origin}"))) {
        let _ = writeln!(
            md,
            "\n## Diversity (all generated items, then the kept ones)\n\n```json\n{}\n```",
            serde_json::to_string_pretty(div).unwrap_or_default()
        );
    }
    let _ = writeln!(
        md,
        "\nStage versions and every setting are in the run's manifests (`runs/{}/*/manifest.json`).",
        config.run.name
    );
    md
}

/// The model behind `[llm.<name>]`: the served model's name, or the local file's.
fn model_of(config: &Config, name: &str) -> String {
    match config.resolved_llm(name).map(|l| l.endpoint) {
        Ok(crate::config::Endpoint::Openai { model, .. }) => model,
        Ok(crate::config::Endpoint::Local { model_path, .. }) => {
            model_path.file_name().map_or_else(|| name.to_owned(), |n| n.to_string_lossy().into_owned())
        }
        Err(_) => name.to_owned(),
    }
}
