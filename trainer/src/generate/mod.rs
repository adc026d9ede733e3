//! Batched generation with a KV cache. Prompts are padded (left by default, or right) into one
//! prefill; every row keeps its own positions, sampling settings, seed, stop strings and token
//! budget; rows that finish leave the batch (their cache rows are dropped), so a long reply
//! does not make the short ones pay. A request's own fault (an invalid prompt, grammar or
//! sampling setting, a grammar that fails mid-reply) and a cancelled request end that row
//! alone ([`generate_each`]); only a failure of the model itself fails the batch.

pub mod constraint;
pub mod sampling;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use burn::tensor::{Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;

pub use constraint::Grammar;
pub use sampling::Sampling;

use crate::error::ModelError;
use crate::model::{CausalLm, Inputs};
use crate::text::Tokenizer;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Padding {
    #[default]
    Left,
    Right,
}

#[derive(Debug, Clone)]
pub struct Request {
    pub prompt: Vec<u32>,
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    /// Generation ends when the decoded reply contains one; the reply stops before it.
    pub stop: Vec<String>,
    pub seed: u64,
    /// Keep going past end-of-sequence tokens (benchmarks, as vLLM's `ignore_eos`).
    pub ignore_eos: bool,
    /// What the reply must match (structured output); decoding masks everything else.
    pub grammar: Option<Grammar>,
    /// Set by the caller when nobody waits for the reply any more (a client that hung up):
    /// the row leaves the batch at the next step with [`ModelError::Cancelled`].
    pub cancel: Option<Arc<AtomicBool>>,
}

impl Request {
    pub fn greedy(prompt: Vec<u32>, max_new_tokens: usize) -> Self {
        Self {
            prompt,
            max_new_tokens,
            sampling: Sampling::greedy(),
            stop: Vec::new(),
            seed: 0,
            ignore_eos: false,
            grammar: None,
            cancel: None,
        }
    }

    fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }

    /// What is wrong with this request on its own (before any decoding), if anything.
    fn check(&self, model: &CausalLm) -> Result<(), ModelError> {
        let max_ctx = model.config.max_position_embeddings;
        if self.prompt.is_empty() {
            return Err(ModelError::Generation("empty prompt".into()));
        }
        if self.prompt.len() >= max_ctx {
            return Err(ModelError::Generation(format!(
                "prompt of {} tokens does not fit the model's context of {max_ctx}",
                self.prompt.len()
            )));
        }
        if let Some(&bad) = self.prompt.iter().find(|&&t| t as usize >= model.config.vocab_size) {
            return Err(ModelError::Generation(format!("token id {bad} is outside the vocabulary")));
        }
        self.sampling.check().map_err(ModelError::Generation)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Finish {
    /// An end-of-sequence token or a stop string.
    Stop,
    /// `max_new_tokens` (or the model's context) ran out.
    Length,
}

impl Finish {
    /// `stop` or `length`, as OpenAI's `finish_reason` says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Finish::Stop => "stop",
            Finish::Length => "length",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Generation {
    /// The generated ids, without the stop token.
    pub tokens: Vec<u32>,
    /// The reply: special tokens skipped, cut before a stop string.
    pub text: String,
    pub finish: Finish,
    pub prompt_tokens: usize,
    /// From the end of its batch's prefill to this row's last token.
    pub decode_time: Duration,
    /// This row's share of that time spent computing its grammar's token masks.
    pub mask_time: Duration,
}

/// Where one call of [`generate_each`] spent its time: what a profile of the engine needs to
/// tell a small batch from a slow step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct BatchProfile {
    /// Rows that ran (requests refused before decoding are not counted).
    pub rows: usize,
    /// The padded prompt forward pass.
    pub prefill: Duration,
    /// Decoding forward passes (one per step, over the rows still running).
    pub forward: Duration,
    /// Grammar masks, all rows.
    pub mask: Duration,
    /// Decoding steps, and the rows summed over steps (their ratio is the mean live batch).
    pub steps: u64,
    pub row_steps: u64,
}

struct Row {
    request: usize,
    out: Vec<u32>,
    rng: StdRng,
    /// Key validity over everything cached for this row.
    valid: Vec<bool>,
    next_position: i64,
    matcher: Option<constraint::Matcher>,
    mask_time: Duration,
}

/// Generates replies for `requests`; `on_token(request, token)` sees every sampled token as
/// it comes (the CLI streams with it). The first request that fails fails the call, named by
/// its index (callers for whom any failure is fatal; a server uses [`generate_each`]).
pub fn generate(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    requests: &[Request],
    padding: Padding,
    on_token: &mut dyn FnMut(usize, u32),
) -> Result<Vec<Generation>, ModelError> {
    generate_each(model, tokenizer, requests, padding, on_token, &mut BatchProfile::default())?
        .into_iter()
        .enumerate()
        .map(|(i, g)| g.map_err(|e| e.for_request(i)))
        .collect()
}

/// Generates replies for `requests`, one result per request: a request that cannot run (its
/// prompt, sampling or grammar is invalid), whose grammar fails mid-reply, or that is
/// cancelled gets its own error and leaves the batch; the others go on. The outer error is a
/// failure of the model itself, which no row survives. `profile` is filled with where the time
/// went.
pub fn generate_each(
    model: &CausalLm,
    tokenizer: &Tokenizer,
    requests: &[Request],
    padding: Padding,
    on_token: &mut dyn FnMut(usize, u32),
    profile: &mut BatchProfile,
) -> Result<Vec<Result<Generation, ModelError>>, ModelError> {
    let mut results: Vec<Option<Result<Generation, ModelError>>> = Vec::with_capacity(requests.len());
    results.resize_with(requests.len(), || None);
    if requests.is_empty() {
        return Ok(Vec::new());
    }
    let device = model.model.embed_tokens.weight.device();
    let max_ctx = model.config.max_position_embeddings;
    let mut matchers: Vec<Option<constraint::Matcher>> = Vec::with_capacity(requests.len());
    for (i, r) in requests.iter().enumerate() {
        let started = r.check(model).and_then(|()| match &r.grammar {
            Some(g) => tokenizer.grammars(model.config.vocab_size)?.start(g).map(Some),
            None => Ok(None),
        });
        match started {
            Ok(m) => matchers.push(m),
            Err(e) => {
                results[i] = Some(Err(e));
                matchers.push(None);
            }
        }
    }
    let pad = tokenizer.pad;
    // A request for no tokens is answered without running the model.
    for (i, r) in requests.iter().enumerate() {
        if results[i].is_none() && r.max_new_tokens == 0 {
            results[i] =
                Some(finish_row(tokenizer, r, Vec::new(), Finish::Length, Duration::ZERO, Duration::ZERO));
        }
    }
    let live: Vec<usize> = (0..requests.len()).filter(|&i| results[i].is_none()).collect();
    if live.is_empty() {
        return Ok(results.into_iter().map(|g| g.expect("answered above")).collect());
    }
    let width = live.iter().map(|&i| requests[i].prompt.len()).max().unwrap_or(0);
    profile.rows = live.len();
    let prefill_started = Instant::now();

    // Prefill: one padded batch.
    let mut rows = Vec::with_capacity(live.len());
    let (mut ids, mut positions, mut last) = (Vec::new(), Vec::new(), Vec::new());
    for &i in &live {
        let r = &requests[i];
        let n = r.prompt.len();
        let gap = width - n;
        let (row_ids, valid, pos): (Vec<u32>, Vec<bool>, Vec<i64>) = match padding {
            Padding::Left => (
                std::iter::repeat_n(pad, gap).chain(r.prompt.iter().copied()).collect(),
                std::iter::repeat_n(false, gap).chain(std::iter::repeat_n(true, n)).collect(),
                std::iter::repeat_n(0, gap).chain(0..n as i64).collect(),
            ),
            Padding::Right => (
                r.prompt.iter().copied().chain(std::iter::repeat_n(pad, gap)).collect(),
                std::iter::repeat_n(true, n).chain(std::iter::repeat_n(false, gap)).collect(),
                (0..n as i64).chain(std::iter::repeat_n(n as i64, gap)).collect(),
            ),
        };
        last.push(match padding {
            Padding::Left => width - 1,
            Padding::Right => n - 1,
        });
        ids.push(row_ids);
        positions.push(pos);
        rows.push(Row {
            request: i,
            out: Vec::new(),
            rng: StdRng::seed_from_u64(r.seed),
            valid,
            next_position: n as i64,
            matcher: matchers[i].take(),
            mask_time: Duration::ZERO,
        });
    }
    let valid: Vec<Vec<bool>> = rows.iter().map(|r| r.valid.clone()).collect();
    let mut cache = model.new_cache();
    let hidden = model.hidden(Inputs::new(&ids, &positions, &valid, &device), Some(&mut cache));
    let [b, s, h] = hidden.dims();
    let picks: Vec<i64> = last.iter().enumerate().map(|(row, &col)| (row * s + col) as i64).collect();
    let picks = Tensor::<1, Int>::from_data(TensorData::new(picks, [b]), &device);
    let last_hidden = hidden.reshape([b * s, h]).select(0, picks).reshape([b, 1, h]);
    let mut logits = host_logits(model.logits(last_hidden), b)?;
    // Reading the logits waits for the forward pass: the prefill's time is known here.
    let decode_started = Instant::now();
    profile.prefill = decode_started - prefill_started;

    loop {
        let mut keep = Vec::with_capacity(rows.len());
        let decoding = decode_started.elapsed();
        for (k, row) in rows.iter_mut().enumerate() {
            let r = &requests[row.request];
            let masked = row.mask_time;
            let stepped = step_row(tokenizer, r, row, &mut logits[k], max_ctx, on_token, decoding);
            profile.mask += row.mask_time - masked;
            match stepped {
                Ok(None) => keep.push(k),
                Ok(Some(done)) => results[row.request] = Some(Ok(done)),
                Err(e) => results[row.request] = Some(Err(e)),
            }
        }
        if keep.is_empty() {
            break;
        }
        if keep.len() < rows.len() {
            let idx: Vec<i64> = keep.iter().map(|&k| k as i64).collect();
            cache.select_rows(&Tensor::<1, Int>::from_data(TensorData::new(idx, [keep.len()]), &device));
            let mut old: Vec<Option<Row>> = rows.into_iter().map(Some).collect();
            rows = keep.iter().map(|&k| old[k].take().expect("kept once")).collect();
        }
        let mut ids = Vec::with_capacity(rows.len());
        let mut positions = Vec::with_capacity(rows.len());
        for row in &mut rows {
            ids.push(vec![*row.out.last().expect("a token was just added")]);
            positions.push(vec![row.next_position]);
            row.next_position += 1;
            row.valid.push(true);
        }
        let valid: Vec<Vec<bool>> = rows.iter().map(|r| r.valid.clone()).collect();
        let forward_started = Instant::now();
        let out = model.forward_last(Inputs::new(&ids, &positions, &valid, &device), Some(&mut cache));
        logits = host_logits(out.unsqueeze_dim(1), rows.len())?;
        profile.forward += forward_started.elapsed();
        profile.steps += 1;
        profile.row_steps += rows.len() as u64;
    }
    Ok(results.into_iter().map(|g| g.expect("every request finishes")).collect())
}

/// One decoding step of one row: `None` while it goes on, its reply once it is done, or its
/// own error (cancelled, or its grammar failed). `decoding` is the time since the batch's
/// prefill ended.
fn step_row(
    tokenizer: &Tokenizer,
    r: &Request,
    row: &mut Row,
    logits: &mut [f32],
    max_ctx: usize,
    on_token: &mut dyn FnMut(usize, u32),
    decoding: Duration,
) -> Result<Option<Generation>, ModelError> {
    if r.cancelled() {
        return Err(ModelError::Cancelled);
    }
    let complete = match row.matcher.as_mut() {
        Some(m) => {
            let started = Instant::now();
            let step = m.mask(logits);
            row.mask_time += started.elapsed();
            step? == constraint::Step::Done
        }
        None => false,
    };
    let token = r.sampling.pick(logits, &mut row.rng);
    let stop_token = complete || (!r.ignore_eos && tokenizer.stop_ids.contains(&token));
    if !stop_token {
        row.out.push(token);
        on_token(row.request, token);
        if let Some(m) = row.matcher.as_mut() {
            m.commit(token)?;
        }
    }
    let stopped = stop_token || hits_stop(tokenizer, &row.out, &r.stop)?;
    let budget = r.max_new_tokens.min(max_ctx - r.prompt.len());
    if stopped || row.out.len() >= budget {
        let finish = if stopped { Finish::Stop } else { Finish::Length };
        return finish_row(tokenizer, r, std::mem::take(&mut row.out), finish, decoding, row.mask_time)
            .map(Some);
    }
    Ok(None)
}

fn host_logits(logits: Tensor<3>, rows: usize) -> Result<Vec<Vec<f32>>, ModelError> {
    let vocab = logits.dims()[2];
    let flat: Vec<f32> = logits
        .reshape([rows * vocab])
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| ModelError::Generation(format!("reading logits: {e:?}")))?;
    Ok(flat.chunks_exact(vocab).map(<[f32]>::to_vec).collect())
}

/// Whether the tail of the reply contains a stop string (only the tail can be new).
fn hits_stop(tokenizer: &Tokenizer, out: &[u32], stop: &[String]) -> Result<bool, ModelError> {
    if stop.is_empty() {
        return Ok(false);
    }
    let longest = stop.iter().map(|s| s.chars().count()).max().unwrap_or(0);
    let tail = &out[out.len().saturating_sub(longest + 2)..];
    let text = tokenizer.decode(tail, false)?;
    Ok(stop.iter().any(|s| text.contains(s.as_str())))
}

fn finish_row(
    tokenizer: &Tokenizer,
    r: &Request,
    mut tokens: Vec<u32>,
    finish: Finish,
    decode_time: Duration,
    mask_time: Duration,
) -> Result<Generation, ModelError> {
    let mut text = tokenizer.decode(&tokens, true)?;
    if let Some(cut) = r.stop.iter().filter_map(|s| text.find(s.as_str())).min() {
        text.truncate(cut);
        // Drop the tokens that only spell the stop string, so `tokens` matches `text`.
        while !tokens.is_empty() && tokenizer.decode(&tokens, true)?.len() > cut {
            tokens.pop();
        }
    }
    Ok(Generation { tokens, text, finish, prompt_tokens: r.prompt.len(), decode_time, mask_time })
}
