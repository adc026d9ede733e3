//! The dedup stage, per strategy over the solved problems: exact duplicates (normalised
//! text), near duplicates (MinHash-LSH, true-Jaccard checked), and benchmark contamination
//! (13-gram word overlap or MinHash similarity to a MATH500/OlympiadBench/Minerva problem).
//! Survivors go to `dedup/<strategy>/kept.jsonl`; every dropped record to `dropped.jsonl` with
//! its reason and what it duplicates. The survivor of a cluster is the smallest id, so the
//! result does not depend on input order.
//!
//! With `dedup.semantic.enabled`, problems whose sentence embedding is closer than
//! `dedup.semantic.threshold` (cosine) to a kept one are dropped too (`semantic`), after the
//! others. Embeddings (`[dedup.embeddings]`: the local all-MiniLM-L6-v2 by default, or an
//! `/embeddings` endpoint) also give each strategy's semantic diversity.
//!
//! Duplicates across strategies are counted (`across_strategies`) but not dropped: each
//! strategy's set is the experiment's unit, and removing B's problem because A also produced
//! it would bias the comparison.

use std::collections::{BTreeMap, HashMap};

use serde_json::json;

use super::solve::SolvedProblem;
use super::{Stage, StageContext, StageError, StageOutput};
use crate::config::{Config, EmbeddingsProvider};
use crate::identity::Identify;
use curation::dedup::{ContaminationIndex, MinHasher, near_duplicates};
use curation::filter::{Dropped, benchmark_index, dedup_texts, drop_semantic, tally};
use vs_core::StageName;
use vs_core::jsonl::{read_jsonl, write_all};

pub struct Dedup;

impl Stage for Dedup {
    fn name(&self) -> StageName {
        StageName::Dedup
    }

    /// 4: one-permutation MinHash with densification, banding derived from the threshold.
    /// 5: diversity resamples whole generation conversations, a random pairwise subset, and
    /// standard errors (kept and dropped items unchanged).
    fn version(&self) -> u32 {
        5
    }

    fn config_slice(&self, id: Identify<'_>) -> Result<serde_json::Value, StageError> {
        let c = id.config;
        let e = &c.dedup.embeddings;
        let embeddings = match e.provider {
            EmbeddingsProvider::None => json!("none"),
            EmbeddingsProvider::Local => json!({ "local_model_sha256": id.model(&e.model_path)? }),
            EmbeddingsProvider::Openai => {
                let name = e.llm.as_deref().unwrap_or_default();
                let llm = id.llm(name)?;
                json!({ "endpoint": llm.endpoint_identity(id.digests).map_err(|err| StageError::config(format!("llm.{name}"), err))? })
            }
        };
        // The report's resampling settings shape the diversity intervals computed here.
        Ok(json!({ "dedup": c.dedup, "seed": c.run.seed, "strategies": crate::stages::arms::origin_names(c),
                   "embeddings": embeddings, "bootstrap_samples": c.report.bootstrap_samples,
                   "confidence": c.report.confidence }))
    }

    fn embedded_inputs(&self, config: &Config) -> Vec<(std::path::PathBuf, &'static [u8])> {
        if !config.dedup.decontaminate.enabled {
            return Vec::new();
        }
        eval::Benchmark::ALL.iter().map(|b| (b.vendored_path(), b.embedded().as_bytes())).collect()
    }

    fn run(&self, ctx: &StageContext<'_>) -> Result<StageOutput, StageError> {
        let d = &ctx.config.dedup;
        let hasher = d.minhash.hasher(ctx.config.run.seed);
        let index = if d.decontaminate.enabled {
            Some(benchmark_index(d, &eval::Benchmark::ALL, ctx.config.run.seed)?)
        } else {
            None
        };
        let embedder = Embedder::new(ctx.config)?;
        let mut output = StageOutput::default();
        let mut kept_sets: Vec<(String, Vec<SolvedProblem>)> = Vec::new();
        for strategy in super::arms::origins(ctx.config) {
            let input = ctx.run_dir.root().join("solve").join(strategy.as_str()).join("solutions.jsonl");
            let records: Vec<SolvedProblem> = read_jsonl(&input)?;
            let (mut kept, mut dropped) = dedup_one(&records, ctx.config, &hasher, index.as_ref());
            // Embeddings of every generated item: diversity is measured on all of them (the
            // paper) and on the kept ones.
            let all_texts: Vec<&str> = records.iter().map(|r| r.question.as_str()).collect();
            let all_embeddings = match &embedder {
                Some(e) => Some(e.embed(&all_texts)?),
                None => None,
            };
            let position: HashMap<&str, usize> =
                records.iter().enumerate().map(|(i, r)| (r.id.as_str(), i)).collect();
            let mut embeddings = all_embeddings
                .as_ref()
                .map(|all| kept.iter().map(|r| all[position[r.id.as_str()]].clone()).collect::<Vec<_>>());
            let mut semantic_seconds = None;
            if let (true, Some(vectors)) = (d.semantic.enabled, embeddings.as_mut()) {
                let started = std::time::Instant::now();
                let ids: Vec<&str> = kept.iter().map(|r| r.id.as_str()).collect();
                let keep = drop_semantic(&ids, vectors, d.semantic.threshold, &mut dropped);
                semantic_seconds = Some(started.elapsed().as_secs_f64());
                *vectors = vectors.iter().zip(&keep).filter(|(_, k)| **k).map(|(v, _)| v.clone()).collect();
                kept = kept.into_iter().zip(&keep).filter(|(_, k)| **k).map(|(r, _)| r).collect();
            }
            let dir = ctx.dir.join(strategy.as_str());
            std::fs::create_dir_all(&dir).map_err(|source| StageError::Io { path: dir.clone(), source })?;
            write_all(&dir.join("kept.jsonl"), &kept)?;
            write_all(&dir.join("dropped.jsonl"), &dropped)?;
            let (by_reason, by_benchmark) = tally(&dropped);
            // Degenerate items among *all* generated ones, whether or not the filter is on:
            // the paper arm keeps them, and their share is a finding about the strategy.
            let mut degenerate: BTreeMap<&str, usize> = BTreeMap::new();
            for r in &records {
                if let Some(kind) = curation::dedup::well_formed::degenerate(&r.question) {
                    *degenerate.entry(kind).or_default() += 1;
                }
            }
            let degenerate_total: usize = degenerate.values().sum();
            output.counts.insert(
                strategy.as_str().to_owned(),
                json!({ "input": records.len(), "kept": kept.len(), "dropped": by_reason,
                        "contaminated_by_benchmark": by_benchmark,
                        "degenerate": { "total": degenerate_total, "by_kind": degenerate,
                                        "share": degenerate_total as f64 / records.len().max(1) as f64 } }),
            );
            if let Some(seconds) = semantic_seconds {
                output
                    .metrics
                    .insert(format!("semantic_dedup_seconds/{}", strategy.as_str()), json!(seconds));
            }
            let kept_texts: Vec<&str> = kept.iter().map(|r| r.question.as_str()).collect();
            let conversations = |rs: &[SolvedProblem]| -> Vec<String> {
                rs.iter().map(|r| super::generate::conversation_key(&r.id).to_owned()).collect()
            };
            let (all_c, kept_c) = (conversations(&records), conversations(&kept));
            let all_c: Vec<&str> = all_c.iter().map(String::as_str).collect();
            let kept_c: Vec<&str> = kept_c.iter().map(String::as_str).collect();
            let resampling = eval::diversity::intervals::Resampling {
                replicates: ctx.config.report.bootstrap_samples,
                confidence: ctx.config.report.confidence,
                seed: vs_core::seeds::mix(ctx.config.run.seed, vs_core::seeds::text_key(strategy.as_str())),
                max_pairwise: PAIRWISE_MAX,
            };
            let all = eval::diversity::intervals::estimate(
                &all_texts,
                &all_c,
                all_embeddings.as_deref(),
                resampling,
            );
            let kept_estimate =
                eval::diversity::intervals::estimate(&kept_texts, &kept_c, embeddings.as_deref(), resampling);
            output.metrics.insert(
                format!("diversity/{}", strategy.as_str()),
                json!({
                    "all": measured(&all, ctx.config.report.confidence),
                    "kept": measured(&kept_estimate, ctx.config.report.confidence),
                    "semantic_source": embedder.as_ref().map(Embedder::describe),
                    "pairwise_cap": PAIRWISE_MAX,
                    "clusters": "generation conversations",
                }),
            );
            kept_sets.push((strategy.as_str().to_owned(), kept));
            output.outputs.push(dir.join("kept.jsonl"));
            output.outputs.push(dir.join("dropped.jsonl"));
        }
        if d.across_strategies && kept_sets.len() > 1 {
            output
                .metrics
                .insert("cross_strategy_duplicates".into(), cross_strategy(&kept_sets, ctx.config, &hasher));
        }
        Ok(output)
    }
}

/// Pairwise measures (ROUGE-L, semantic) are quadratic: measured over a seeded random subset
/// of whole conversations holding at most this many items.
const PAIRWISE_MAX: usize = 400;

fn measured(e: &eval::diversity::intervals::DiversityEstimate, confidence: f64) -> serde_json::Value {
    let mut m = serde_json::Map::new();
    for (name, x) in e.measured(confidence) {
        m.insert(name.to_owned(), json!(x));
    }
    m.insert("pairwise_items".into(), json!(e.pairwise_items));
    serde_json::Value::Object(m)
}

/// Where sentence embeddings come from.
pub enum Embedder {
    Local {
        encoder: Box<trainer::embed::SentenceEncoder>,
        path: std::path::PathBuf,
        batch_size: usize,
    },
    Endpoint {
        name: String,
        model: String,
        client: Box<llm::openai::OpenAiClient>,
        runtime: Box<tokio::runtime::Runtime>,
    },
}

impl Embedder {
    pub fn new(config: &Config) -> Result<Option<Self>, StageError> {
        let e = &config.dedup.embeddings;
        match e.provider {
            EmbeddingsProvider::None => Ok(None),
            EmbeddingsProvider::Local => {
                let device = super::device(&e.device, "dedup.embeddings.device")?;
                let encoder = trainer::embed::SentenceEncoder::load(&e.model_path, &device.device())
                    .map_err(|err| StageError::model("dedup.embeddings.model_path", err))?;
                Ok(Some(Self::Local {
                    encoder: Box::new(encoder),
                    path: e.model_path.clone(),
                    batch_size: e.batch_size,
                }))
            }
            EmbeddingsProvider::Openai => {
                let name = e.llm.as_ref().ok_or_else(|| {
                    StageError::config("dedup.embeddings.llm", "is required with provider = \"openai\"")
                })?;
                let llm =
                    config.resolved_llm(name).map_err(|e| StageError::config(format!("llm.{name}"), e))?;
                let model = match &llm.endpoint {
                    crate::config::Endpoint::Openai { model, .. } => model.clone(),
                    crate::config::Endpoint::Local { .. } => String::new(),
                };
                // Embeddings are not cached (cheap, and the stage itself is skipped when up to date).
                let client = llm::openai::OpenAiClient::new(&llm)
                    .map_err(|err| StageError::llm("dedup.embeddings.llm", err))?;
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|err| StageError::Runtime(format!("cannot start the async runtime: {err}")))?;
                Ok(Some(Self::Endpoint {
                    name: name.clone(),
                    model,
                    client: Box::new(client),
                    runtime: Box::new(runtime),
                }))
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Self::Local { path, .. } => format!("local {}", path.display()),
            Self::Endpoint { name, model, .. } => format!("llm.{name} /embeddings, model {model}"),
        }
    }

    pub fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, StageError> {
        let owned: Vec<String> = texts.iter().map(|t| (*t).to_owned()).collect();
        match self {
            Self::Local { encoder, batch_size, .. } => encoder
                .embed(&owned, *batch_size)
                .map_err(|e| StageError::model("dedup.embeddings (local)", e)),
            Self::Endpoint { model, client, runtime, .. } => {
                let mut out = Vec::with_capacity(texts.len());
                for chunk in owned.chunks(256) {
                    let got = runtime
                        .block_on(client.embeddings(model, chunk))
                        .map_err(|e| StageError::llm("dedup.embeddings (openai)", e))?;
                    out.extend(got);
                }
                Ok(out)
            }
        }
    }
}

impl curation::embed::Embed for Embedder {
    fn embed(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, Box<dyn std::error::Error + Send + Sync>> {
        Embedder::embed(self, texts).map_err(Into::into)
    }
}

/// Exact, then near, then contamination, each over what the previous step kept.
pub fn dedup_one(
    records: &[SolvedProblem],
    config: &Config,
    hasher: &MinHasher,
    index: Option<&ContaminationIndex>,
) -> (Vec<SolvedProblem>, Vec<Dropped>) {
    let items: Vec<(&str, &str)> = records.iter().map(|r| (r.id.as_str(), r.question.as_str())).collect();
    let (kept, dropped) = dedup_texts(&items, &config.dedup, hasher, index);
    (kept.into_iter().map(|i| records[i].clone()).collect(), dropped)
}

/// Near or exact duplicate pairs between the kept sets of two strategies.
fn cross_strategy(
    sets: &[(String, Vec<SolvedProblem>)],
    config: &Config,
    hasher: &MinHasher,
) -> serde_json::Value {
    let mut ids = Vec::new();
    let mut texts = Vec::new();
    let mut owner = Vec::new();
    for (s, (_, records)) in sets.iter().enumerate() {
        for r in records {
            ids.push(r.id.as_str());
            texts.push(r.question.as_str());
            owner.push(s);
        }
    }
    let dups =
        near_duplicates(&ids, &texts, config.dedup.minhash.ngram, hasher, config.dedup.minhash.threshold);
    let mut pairs: BTreeMap<String, usize> = BTreeMap::new();
    for x in dups.iter().filter(|x| owner[x.dropped] != owner[x.kept]) {
        let (a, b) = (&sets[owner[x.kept]].0, &sets[owner[x.dropped]].0);
        let key = if a < b { format!("{a}+{b}") } else { format!("{b}+{a}") };
        *pairs.entry(key).or_default() += 1;
    }
    json!(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semantic_drops_join_the_dropped_list_in_id_order_and_tally_by_reason() {
        let ids = ["b", "a", "c"];
        // b and a nearly the same direction; c orthogonal.
        let vectors = vec![vec![0.995f32, 0.0998], vec![1.0, 0.0], vec![0.0, 1.0]];
        let mut dropped = vec![Dropped::duplicate("z", "exact", "a", 1.0)];
        let keep = drop_semantic(&ids, &vectors, 0.95, &mut dropped);
        assert_eq!(keep, [false, true, true], "a comes first in id order and stays");
        let why: Vec<(&str, &str, Option<&str>)> =
            dropped.iter().map(|d| (d.id.as_str(), d.reason.as_str(), d.duplicate_of.as_deref())).collect();
        assert_eq!(why, [("b", "semantic", Some("a")), ("z", "exact", Some("a"))]);
        let mut contaminated = Dropped::duplicate("y", "contaminated", "-", 0.9);
        contaminated.benchmark = Some("math500/test/1".into());
        dropped.push(contaminated);
        let (by_reason, by_benchmark) = tally(&dropped);
        assert_eq!(
            by_reason.into_iter().collect::<Vec<_>>(),
            [("contaminated".into(), 1), ("exact".into(), 1), ("semantic".into(), 1)]
        );
        assert_eq!(by_benchmark.into_iter().collect::<Vec<_>>(), [("math500".to_owned(), 1)]);
    }
}
