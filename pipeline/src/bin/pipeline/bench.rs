//! `pipeline bench`: speed measurements that print a table (and JSON with --json), for the
//! comparisons in `tools/bench/`.

use std::path::PathBuf;
use std::time::Instant;

use clap::{Args, Subcommand};
use trainer::generate::{Padding, Request, generate};
use trainer::{DeviceSpec, Pretrained};

#[derive(Args)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: Bench,
}

#[derive(Subcommand)]
enum Bench {
    /// Greedy generation throughput: batch x new tokens / wall time (prefill included), on
    /// synthetic prompts `tools/bench/decode.py` reproduces token for token.
    Decode(DecodeArgs),
    /// Training throughput: tokens/s of full fine-tuning steps (forward, backward, global-norm
    /// clipping, AdamW) on synthetic sequences `tools/bench/train.py` reproduces.
    Train(TrainArgs),
    /// MinHash-LSH near-duplicate detection on a synthetic corpus with planted near
    /// duplicates: seconds, and recall/precision of the planted pairs. `--write` saves the
    /// corpus for `tools/bench/dedup.py` (datasketch on the same texts).
    Dedup(DedupArgs),
    /// Sentence embeddings/s of the local encoder (all-MiniLM-L6-v2) on synthetic problems;
    /// `--write` saves them for `tools/bench/embed.py` (sentence-transformers on the same texts).
    Embed(EmbedArgs),
    /// Generate-stage dispatch against a mock server with fixed latency (and an optional
    /// latency tail), side by side with a plain client that keeps every slot busy.
    Dispatch(super::bench_dispatch::DispatchArgs),
    /// `pipeline serve` over HTTP next to the same engine in-process, at 1, 8 and 32 clients:
    /// requests/s, tokens/s and the largest batch formed.
    Serve(super::bench_serve::ServeBenchArgs),
    /// Structured-output cost: a token mask (llguidance) plus its application to the logits,
    /// per token, walking a VS-Multi reply under the strategy's JSON schema.
    Grammar(GrammarArgs),
}

#[derive(Args)]
struct GrammarArgs {
    #[arg(long)]
    model: PathBuf,
    /// Passes over the reply (the best is reported).
    #[arg(long, default_value_t = 5)]
    repeats: usize,
}

#[derive(Args)]
struct EmbedArgs {
    #[arg(long, default_value = "models/all-MiniLM-L6-v2")]
    model: PathBuf,
    #[arg(long, default_value_t = 2000)]
    n: usize,
    #[arg(long, default_value_t = 64)]
    batch: usize,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Write the texts (JSONL: text) here.
    #[arg(long)]
    write: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DedupArgs {
    #[arg(long, default_value_t = 100_000)]
    n: usize,
    /// Share of the corpus that is a near copy of another problem.
    #[arg(long, default_value_t = 0.1)]
    planted: f64,
    /// Share of a copy's words edited (substituted, deleted or inserted; at least one).
    #[arg(long, default_value_t = 0.03)]
    edits: f64,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Banding (both or neither); default: `[dedup.minhash]`'s rule (see `--num-perm`).
    #[arg(long)]
    bands: Option<usize>,
    #[arg(long)]
    rows: Option<usize>,
    #[arg(long, default_value_t = 256)]
    num_perm: usize,
    #[arg(long, default_value_t = 0.99)]
    false_negative_weight: f64,
    /// Write the corpus (JSONL: id, text, copy_of) here.
    #[arg(long)]
    write: Option<PathBuf>,
    #[arg(long)]
    json: bool,
}

/// Which model a benchmark runs: real weights, or random ones of a given shape.
#[derive(Args)]
struct ModelArgs {
    /// A GGUF file or an HF folder (with --random-weights, only its tokenizer and config are
    /// read).
    #[arg(long)]
    model: PathBuf,
    /// Seeded random weights instead of the model's (its folder needs no weight files).
    #[arg(long)]
    random_weights: bool,
    /// With --random-weights: this `config.json`'s architecture instead of the model's (e.g.
    /// data/model_configs/Qwen3-1.7B-Base.json).
    #[arg(long, requires = "random_weights")]
    architecture: Option<PathBuf>,
}

impl ModelArgs {
    fn load(&self, device: DeviceSpec, training: bool) -> anyhow::Result<Pretrained> {
        let device = if training { device.training_device() } else { device.device() };
        Ok(if self.random_weights {
            Pretrained::random(&self.model, self.architecture.as_deref(), 0, &device)?
        } else {
            Pretrained::load(&self.model, &device)?
        })
    }
}

#[derive(Args)]
struct TrainArgs {
    #[command(flatten)]
    model: ModelArgs,
    #[arg(long, default_value_t = 256)]
    seq: usize,
    #[arg(long, default_value_t = 4)]
    batch: usize,
    /// Timed steps (after one warm-up step).
    #[arg(long, default_value_t = 5)]
    steps: u64,
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Data parallel over these devices (`cuda:0,cuda:1`; replaces --device): each takes one
    /// micro-batch of --batch rows per step.
    #[arg(long, value_delimiter = ',')]
    devices: Vec<DeviceSpec>,
    /// `f32`, `bf16` or `auto`.
    #[arg(long, default_value = "f32")]
    dtype: trainer::PrecisionChoice,
    /// Recompute each layer's activations in the backward.
    #[arg(long)]
    checkpoint_activations: bool,
    #[arg(long, default_value_t = trainer::sft::train::default_loss_chunk())]
    loss_chunk_tokens: usize,
    /// Print the memory plan too (compare its total with the peak RSS of this process).
    #[arg(long)]
    plan: bool,
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct DecodeArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// `f32`, `bf16` (weights stored in bf16) or `auto`.
    #[arg(long, default_value = "f32")]
    dtype: trainer::PrecisionChoice,
    /// Batch sizes to measure (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,16")]
    batch: Vec<usize>,
    #[arg(long, default_value_t = 64)]
    prompt_tokens: usize,
    #[arg(long, default_value_t = 128)]
    new_tokens: usize,
    /// Timed repetitions per batch size (the best is reported).
    #[arg(long, default_value_t = 2)]
    repeats: usize,
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// Print one JSON object per batch size instead of the table.
    #[arg(long)]
    json: bool,
}

/// Row `r` of the synthetic prompt batch (the same formula as tools/bench/decode.py).
pub fn synthetic_prompt(r: usize, len: usize, vocab: usize) -> Vec<u32> {
    (0..len).map(|i| ((i * 7919 + r * 104_729 + 13) % (vocab - 100) + 100) as u32).collect()
}

pub fn bench(args: &BenchArgs) -> anyhow::Result<()> {
    match &args.what {
        Bench::Decode(a) => decode(a),
        Bench::Train(a) => train(a),
        Bench::Dedup(a) => dedup(a),
        Bench::Embed(a) => embed(a),
        Bench::Grammar(a) => grammar(a),
        Bench::Dispatch(a) => super::bench_dispatch::dispatch(a),
        Bench::Serve(a) => super::bench_serve::serve(a),
    }
}

fn decode(a: &DecodeArgs) -> anyhow::Result<()> {
    let precision = a.dtype.resolve(a.device);
    let model = a.model.load(a.device, false)?.stored_in(precision);
    let vocab = model.model.config.vocab_size;
    let requests = |b: usize, new: usize| -> Vec<Request> {
        (0..b)
            .map(|r| Request {
                ignore_eos: true,
                grammar: None,
                ..Request::greedy(synthetic_prompt(r, a.prompt_tokens, vocab), new)
            })
            .collect()
    };
    // Warm-up: first calls pay for allocator and kernel set-up.
    generate(&model.model, &model.tokenizer, &requests(1, 8), Padding::Left, &mut |_, _| {})?;
    if !a.json {
        println!("| engine | dtype | batch | prompt | new | seconds | tokens/s |");
        println!("|---|---|---:|---:|---:|---:|---:|");
    }
    for &b in &a.batch {
        let reqs = requests(b, a.new_tokens);
        let mut best = f64::INFINITY;
        for _ in 0..a.repeats.max(1) {
            let start = Instant::now();
            let out = generate(&model.model, &model.tokenizer, &reqs, Padding::Left, &mut |_, _| {})?;
            best = best.min(start.elapsed().as_secs_f64());
            anyhow::ensure!(out.iter().all(|g| g.tokens.len() == a.new_tokens), "a row stopped early");
        }
        let tps = (b * a.new_tokens) as f64 / best;
        if a.json {
            println!(
                "{}",
                serde_json::json!({"engine": "ours", "batch": b, "prompt": a.prompt_tokens,
                    "new": a.new_tokens, "dtype": precision.to_string(), "seconds": best, "tokens_per_s": tps,
                    "parameters": model.model.config.num_parameters()})
            );
        } else {
            println!(
                "| ours (burn + libtorch) | {precision} | {b} | {} | {} | {best:.2} | {tps:.1} |",
                a.prompt_tokens, a.new_tokens
            );
        }
    }
    Ok(())
}

fn train(a: &TrainArgs) -> anyhow::Result<()> {
    use trainer::sft::data::Encoded;
    use trainer::sft::schedule::ScheduleKind;
    use trainer::sft::train::TrainOptions;

    let device = a.devices.first().copied().unwrap_or(a.device);
    let workers = a.devices.len().max(1);
    let model = a.model.load(device, true)?;
    let vocab = model.model.config.vocab_size;
    let precision = a.dtype.resolve(device);
    let plan = trainer::sft::memory::MemoryPlan::new(&trainer::sft::memory::PlanInput {
        config: &model.model.config,
        precision,
        batch_size: a.batch,
        seq_len: a.seq,
        checkpoint_activations: a.checkpoint_activations,
        loss_chunk_tokens: a.loss_chunk_tokens,
        grad_accum_steps: 1,
    });
    // Every token but the first is supervised, as a causal-LM loss over the whole sequence.
    let data: Vec<Encoded> = (0..a.batch * workers)
        .map(|r| Encoded { ids: synthetic_prompt(r, a.seq + 1, vocab), prompt_len: 1 })
        .collect();
    let opts = TrainOptions {
        epochs: 1,
        max_steps: Some(a.steps + 1),
        learning_rate: 1e-5,
        schedule: ScheduleKind::Constant,
        warmup_ratio: 0.0,
        weight_decay: 0.0,
        beta1: 0.9,
        beta2: 0.999,
        epsilon: 1e-8,
        batch_size: a.batch,
        grad_accum_steps: workers,
        max_grad_norm: Some(1.0),
        seed: 0,
        log_every: 1,
        checkpoint_every: None,
        packing: None,
        precision,
        checkpoint_activations: a.checkpoint_activations,
        loss_chunk_tokens: a.loss_chunk_tokens,
        devices: a.devices.clone(),
    };
    let scratch = tempfile_dir()?;
    let mut marks = Vec::new();
    let pad = model.tokenizer.pad;
    let parameters = model.model.config.num_parameters();
    let mut losses = Vec::new();
    trainer::sft::train::train(model.model, &data, pad, &opts, &scratch, false, &mut |log| {
        marks.push(log.elapsed_s);
        losses.push(log.loss);
        true
    })?;
    let _ = std::fs::remove_dir_all(&scratch);
    // From the end of the warm-up step to the end of the last one.
    let seconds = marks[marks.len() - 1] - marks[0];
    let tokens = (a.steps as usize * a.batch * workers * a.seq) as f64;
    let tps = tokens / seconds;
    let peak_gb = peak_rss_gb();
    let ckpt = if a.checkpoint_activations { "on" } else { "off" };
    if a.json {
        println!(
            "{}",
            serde_json::json!({"engine": "ours", "seq": a.seq, "batch": a.batch, "devices": workers, "steps": a.steps,
                "dtype": precision.to_string(), "checkpoint_activations": a.checkpoint_activations,
                "seconds": seconds, "tokens_per_s": tps, "peak_rss_gb": peak_gb, "plan_gb": plan.total_gb(),
                "parameters": parameters, "losses": losses})
        );
    } else {
        println!(
            "| engine | dtype | checkpointing | seq | batch | steps | seconds | tokens/s | peak RSS GB | plan GB |"
        );
        println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
        println!(
            "| ours (burn + libtorch) | {precision} | {ckpt} | {} | {} | {} | {seconds:.2} | {tps:.1} | {} | {:.2} |",
            a.seq,
            a.batch,
            a.steps,
            peak_gb.map_or("?".into(), |g| format!("{g:.2}")),
            plan.total_gb()
        );
        if a.plan {
            println!("\nmemory plan:\n{}", plan.table());
        }
    }
    Ok(())
}

/// This process's peak resident memory so far (Linux `VmHWM`), in GB.
fn peak_rss_gb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kb: f64 =
        status.lines().find(|l| l.starts_with("VmHWM:"))?.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024.0 / 1e9)
}

/// A fresh directory for the run's metrics and final checkpoint, removed afterwards.
fn tempfile_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("pipeline-bench-train-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

/// A synthetic competition-style problem from seeded choices.
fn synthetic_problem(rng: &mut u64) -> String {
    let mut next = |n: usize| {
        *rng = vs_core::seeds::mix(*rng, 0x9e37);
        (*rng % n as u64) as usize
    };
    const SUBJECTS: [&str; 8] = [
        "triangle ABC",
        "sequence a_n",
        "polynomial P(x)",
        "set S",
        "integer n",
        "circle O",
        "function f",
        "grid of squares",
    ];
    const CONDS: [&str; 6] =
        ["satisfies", "is divisible by", "has exactly", "is tangent to", "sums to", "is congruent to"];
    const ASKS: [&str; 6] = [
        "Find the smallest possible value of",
        "Compute the number of",
        "Determine the sum of all",
        "What is the largest",
        "How many distinct values of",
        "Find the remainder when",
    ];
    format!(
        "Let the {} be such that it {} {} and {} {}. {} {} modulo {}?",
        SUBJECTS[next(8)],
        CONDS[next(6)],
        next(1000),
        CONDS[next(6)],
        next(100_000),
        ASKS[next(6)],
        SUBJECTS[next(8)],
        next(997) + 3
    )
}

/// A word problem of 40 to 100 words in the register of competition problems, from a
/// vocabulary large enough that unrelated problems share little beyond function words.
fn math_like_problem(rng: &mut u64) -> String {
    let mut next = |n: usize| {
        *rng = vs_core::seeds::mix(*rng, 0x7f4a);
        (*rng % n as u64) as usize
    };
    const NAMES: [&str; 16] = [
        "Alice", "Bob", "Carmen", "Dmitri", "Elena", "Farid", "Grace", "Hiro", "Ines", "Jamal", "Kofi",
        "Lena", "Mateo", "Nadia", "Omar", "Priya",
    ];
    const THINGS: [&str; 16] = [
        "marbles", "coins", "cards", "tiles", "beads", "stamps", "tokens", "pebbles", "chips", "shells",
        "ribbons", "candles", "blocks", "buttons", "keys", "dice",
    ];
    const SHAPES: [&str; 10] = [
        "triangle",
        "square",
        "regular hexagon",
        "circle",
        "trapezoid",
        "rectangle",
        "rhombus",
        "pentagon",
        "parallelogram",
        "kite",
    ];
    const COLORS: [&str; 8] = ["red", "blue", "green", "yellow", "white", "black", "orange", "purple"];
    let mut sentences: Vec<String> = Vec::new();
    let parts = 3 + next(4);
    for _ in 0..parts {
        let (a, b, c) = (next(900) + 2, next(90) + 2, next(50) + 2);
        let sentence = match next(12) {
            0 => format!(
                "{} has {a} {} and gives {b} of them to {}.",
                NAMES[next(16)],
                THINGS[next(16)],
                NAMES[next(16)]
            ),
            1 => format!("A {} has side lengths {a}, {b} and {c}.", SHAPES[next(10)]),
            2 => format!("Let $f(x) = {a}x^2 + {b}x + {c}$ for every real number $x$."),
            3 => format!("The sum of the first {b} terms of an arithmetic sequence is {a}."),
            4 => format!(
                "Each {} costs {c} cents more than each {}.",
                &THINGS[next(16)][..4],
                THINGS[next(16)]
            ),
            5 => format!("Points $P$ and $Q$ lie on the {} so that $PQ = {b}$.", SHAPES[next(10)]),
            6 => format!(
                "A box contains {a} {} {}, {b} {} ones and {c} {} ones.",
                COLORS[next(8)],
                THINGS[next(16)],
                COLORS[next(8)],
                COLORS[next(8)]
            ),
            7 => format!("The polynomial $x^3 - {a}x^2 + {b}x - {c}$ has roots $r$, $s$ and $t$."),
            8 => format!(
                "{} walks {a} meters north, then {b} meters east, then {c} meters south.",
                NAMES[next(16)]
            ),
            9 => format!("A positive integer $n$ leaves remainder {c} when divided by {b}."),
            10 => format!("In a class of {a} students, {b} play chess and {c} play both chess and go."),
            _ => format!("The radius of the {} inscribed in the {} is {c}.", SHAPES[3], SHAPES[next(10)]),
        };
        sentences.push(sentence);
    }
    let (m, k) = (next(997) + 3, next(40) + 2);
    let question = match next(8) {
        0 => format!(
            "What is the probability that {} draws two {} of the same color?",
            NAMES[next(16)],
            THINGS[next(16)]
        ),
        1 => format!("Find the remainder when the answer is divided by {m}."),
        2 => format!("How many ordered pairs $(a, b)$ of positive integers satisfy $a + {k}b \\le {m}$?"),
        3 => format!("Compute the area of the {}.", SHAPES[next(10)]),
        4 => format!("Find the smallest possible value of $r^2 + s^2 + t^2 + {k}$."),
        5 => format!("How many {} does {} have at the end?", THINGS[next(16)], NAMES[next(16)]),
        6 => format!("Determine the largest such $n$ below {m}."),
        _ => format!("Express the distance from the start in simplest radical form, times {k}."),
    };
    sentences.push(question);
    sentences.join(" ")
}

/// A near copy: `share` of the words (at least one) substituted, deleted or inserted.
fn perturb(text: &str, share: f64, rng: &mut u64) -> String {
    const FILLERS: [&str; 12] = [
        "exactly", "then", "also", "all", "distinct", "new", "each", "only", "again", "total", "real",
        "whole",
    ];
    let mut words: Vec<String> = text.split(' ').map(str::to_owned).collect();
    let edits = ((words.len() as f64 * share).round() as usize).max(1);
    for _ in 0..edits {
        *rng = vs_core::seeds::mix(*rng, 0x51);
        let at = (*rng >> 8) as usize % words.len();
        let filler = FILLERS[(*rng >> 40) as usize % FILLERS.len()].to_owned();
        match *rng % 3 {
            0 => words[at] = filler,
            1 if words.len() > 2 => {
                words.remove(at);
            }
            _ => words.insert(at, filler),
        }
    }
    words.join(" ")
}

fn embed(a: &EmbedArgs) -> anyhow::Result<()> {
    let mut rng = a.seed;
    let texts: Vec<String> = (0..a.n).map(|_| synthetic_problem(&mut rng)).collect();
    if let Some(path) = &a.write {
        let lines: String =
            texts.iter().map(|t| serde_json::json!({ "text": t }).to_string() + "\n").collect();
        std::fs::write(path, lines)?;
    }
    let encoder = trainer::embed::SentenceEncoder::load(&a.model, &a.device.device())?;
    // One warm-up batch, then the timed pass over everything.
    encoder.embed(&texts[..a.batch.min(texts.len())], a.batch)?;
    let start = Instant::now();
    let vectors = encoder.embed(&texts, a.batch)?;
    let seconds = start.elapsed().as_secs_f64();
    let rate = vectors.len() as f64 / seconds;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"engine": "ours", "n": a.n, "batch": a.batch, "seconds": seconds, "sentences_per_s": rate})
        );
    } else {
        println!("| engine | sentences | batch | seconds | sentences/s |");
        println!("|---|---:|---:|---:|---:|");
        println!("| ours (burn + libtorch) | {} | {} | {seconds:.2} | {rate:.1} |", a.n, a.batch);
    }
    Ok(())
}

fn grammar(a: &GrammarArgs) -> anyhow::Result<()> {
    use pipeline::strategy::{PromptSpec, Prompting};
    use trainer::generate::Grammar;
    use vs_core::Strategy;

    let model = Pretrained::load(&a.model, &DeviceSpec::Cpu.device())?;
    let generate: pipeline::config::GenerateConfig =
        toml::from_str("llm = \"x\"\nstrategies = [\"vs_multi\"]\nnum_problems = 1")?;
    let spec = PromptSpec::new(Strategy::VsMulti, &generate);
    let format = Strategy::VsMulti.response_schema(&spec).expect("VS-Multi has a schema");
    let grammar = Grammar::from_response_format(&format).map_err(anyhow::Error::msg)?.expect("a schema");
    let reply = r#"{"responses": [{"text": "Question: How many positive divisors does 360 have?\nDifficulty: AMC 10", "confidence": 0.35}, {"text": "Question: Find the remainder when 2^100 is divided by 7.\nDifficulty: AIME", "confidence": 0.25}, {"text": "Question: A circle of radius 2 is inscribed in a square. What is the square's area?\nDifficulty: AMC 8", "confidence": 0.4}]}"#;
    let tokens = model.tokenizer.encode(reply, false)?;
    let vocab = model.model.config.vocab_size;
    let start = Instant::now();
    let grammars = model.tokenizer.grammars(vocab)?;
    let trie = start.elapsed().as_secs_f64();
    let start = Instant::now();
    grammars.start(&grammar)?;
    let compile = start.elapsed().as_secs_f64();
    let mut best = f64::INFINITY;
    for _ in 0..a.repeats.max(1) {
        let mut matcher = grammars.start(&grammar)?;
        let mut logits = vec![0.0f32; vocab];
        let start = Instant::now();
        for &t in &tokens {
            matcher.mask(&mut logits)?;
            anyhow::ensure!(logits[t as usize].is_finite(), "the schema refused token {t} of a valid reply");
            matcher.commit(t)?;
            logits.iter_mut().for_each(|l| *l = 0.0);
        }
        best = best.min(start.elapsed().as_secs_f64());
    }
    let per = best / tokens.len() as f64;
    println!(
        "| grammar | vocabulary | token trie (ms, once) | compile (ms) | reply tokens | per token (us) | masks/s |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| VS-Multi JSON schema | {vocab} | {:.0} | {:.1} | {} | {:.1} | {:.0} |",
        trie * 1e3,
        compile * 1e3,
        tokens.len(),
        per * 1e6,
        1.0 / per
    );
    Ok(())
}

fn dedup(a: &DedupArgs) -> anyhow::Result<()> {
    use curation::dedup::{MinHasher, char_shingles, jaccard, near_duplicates};

    let mut rng = a.seed;
    let mut texts: Vec<String> = Vec::with_capacity(a.n);
    let mut copy_of: Vec<Option<usize>> = Vec::with_capacity(a.n);
    for i in 0..a.n {
        rng = vs_core::seeds::mix(rng, i as u64);
        if i > 0 && vs_core::seeds::unit(rng) < a.planted {
            let source = (rng >> 11) as usize % i;
            // Copy an original, so planted pairs are (original, copy).
            let source = copy_of[source].unwrap_or(source);
            texts.push(perturb(&texts[source], a.edits, &mut rng));
            copy_of.push(Some(source));
        } else {
            texts.push(math_like_problem(&mut rng));
            copy_of.push(None);
        }
    }
    let ids: Vec<String> = (0..a.n).map(|i| format!("p{i:07}")).collect();
    if let Some(path) = &a.write {
        let mut out = String::new();
        for i in 0..a.n {
            out.push_str(
                &serde_json::json!({"id": ids[i], "text": texts[i], "copy_of": copy_of[i].map(|s| &ids[s])})
                    .to_string(),
            );
            out.push('\n');
        }
        std::fs::write(path, out)?;
    }
    let config = pipeline::config::MinHashConfig {
        num_perm: a.num_perm,
        false_negative_weight: a.false_negative_weight,
        bands: a.bands,
        rows: a.rows,
        ..Default::default()
    };
    let (bands, rows) = config.lsh_params();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let text_refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let start = Instant::now();
    let hasher = MinHasher::new(bands, rows, a.seed);
    let dups = near_duplicates(&id_refs, &text_refs, config.ngram, &hasher, config.threshold);
    let seconds = start.elapsed().as_secs_f64();
    // A planted copy is found when it is dropped into its original's cluster.
    let cluster_of: std::collections::HashMap<usize, usize> =
        dups.iter().map(|d| (d.dropped, d.kept)).collect();
    let root = |i: usize| *cluster_of.get(&i).unwrap_or(&i);
    let planted: Vec<(usize, usize)> =
        copy_of.iter().enumerate().filter_map(|(i, c)| c.map(|s| (s, i))).collect();
    let found = planted.iter().filter(|&&(s, c)| root(s) == root(c)).count();
    let true_dropped = dups
        .iter()
        .filter(|d| {
            let (x, k) = (d.dropped, d.kept);
            let origin = |i: usize| copy_of[i].unwrap_or(i);
            origin(x) == origin(k)
        })
        .count();
    let recall = found as f64 / planted.len().max(1) as f64;
    let precision = true_dropped as f64 / dups.len().max(1) as f64;
    // How similar the planted pairs really are (what no LSH setting can beat).
    let mut similarity: Vec<f64> = planted
        .iter()
        .map(|&(s, c)| {
            jaccard(&char_shingles(&texts[s], config.ngram), &char_shingles(&texts[c], config.ngram))
        })
        .collect();
    similarity.sort_by(f64::total_cmp);
    let below = similarity.iter().filter(|&&j| j < config.threshold).count();
    let quantile =
        |q: f64| similarity.get(((similarity.len() as f64 - 1.0) * q) as usize).copied().unwrap_or(0.0);
    let words = texts.iter().map(|t| t.split(' ').count()).sum::<usize>() as f64 / a.n as f64;
    if a.json {
        println!(
            "{}",
            serde_json::json!({"engine": "ours", "n": a.n, "planted": planted.len(), "dropped": dups.len(),
                "seconds": seconds, "recall": recall, "precision": precision, "bands": bands, "rows": rows,
                "threshold": config.threshold, "ngram": config.ngram, "planted_below_threshold": below,
                "planted_jaccard_min": quantile(0.0), "planted_jaccard_median": quantile(0.5),
                "mean_words": words})
        );
    } else {
        println!(
            "{} problems (mean {words:.0} words), {} planted near copies ({:.0}% of words edited): pair Jaccard min {:.3}, median {:.3}, {below} below the threshold {}",
            a.n,
            planted.len(),
            a.edits * 100.0,
            quantile(0.0),
            quantile(0.5),
            config.threshold
        );
        println!("| engine | bands x rows | dropped | seconds | recall | precision |");
        println!("|---|---|---:|---:|---:|---:|");
        println!(
            "| ours (rayon) | {bands} x {rows} | {} | {seconds:.2} | {recall:.4} | {precision:.4} |",
            dups.len()
        );
    }
    Ok(())
}
