//! A running batch that rows join and leave between steps (continuous batching): newcomers
//! are prefilled together in a cache of their own, which is then stacked under the running
//! rows' cache (the shorter padded at the front, the padding masked by each row's key
//! validity); a row that finishes is answered at once and leaves. Every row keeps its own
//! positions, seed and settings, so its reply does not depend on who shares its steps.

use std::time::{Duration, Instant};

use burn::tensor::{Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::constraint;
use super::request::{BatchProfile, Finish, Generation, Padding, Request};
use crate::error::ModelError;
use crate::model::{CausalLm, Inputs, KvCache};
use crate::text::Tokenizer;

/// Front padding no row needs any more is dropped from the cache once it is this long (and a
/// quarter of the cache): often enough that keys stay near the oldest row's length, rarely
/// enough that the copy costs little.
const DROP_FRONT_AT: usize = 32;

/// The shortest shared beginning worth reusing instead of prefilling.
const MIN_REUSE: usize = 16;

/// What stored prompts may hold (the whole chat prompt a strategy repeats on every call is
/// ~10 MB on SmolLM2-135M in bf16).
const PREFIX_BYTES: usize = 256 << 20;

struct Row {
    /// The caller's name for the request.
    id: usize,
    request: Request,
    out: Vec<u32>,
    rng: StdRng,
    /// Key validity over everything cached for this row.
    valid: Vec<bool>,
    next_position: i64,
    matcher: Option<constraint::Matcher>,
    mask_time: Duration,
    /// When its prefill ended (its decode time runs from there).
    decoding_since: Instant,
}

/// A batch being decoded. [`Decoder::admit`] adds requests (prefilling them), each
/// [`Decoder::step`] samples one token for every row and runs one forward pass over the rows
/// still going. Between calls every row has the logits of its next token.
pub struct Decoder<'m> {
    model: &'m CausalLm,
    tokenizer: &'m Tokenizer,
    cache: KvCache,
    rows: Vec<Row>,
    logits: Vec<Vec<f32>>,
    profile: BatchProfile,
    /// Prompts kept for reuse ([`Decoder::sharing_prefixes`]).
    prefixes: Vec<Prefix>,
    share_prefixes: bool,
    clock: u64,
}

/// A request about to be prefilled, and the stored prompt it starts like (index, tokens).
struct Joining {
    id: usize,
    request: Request,
    matcher: Option<constraint::Matcher>,
    reuse: Option<(usize, usize)>,
}

/// A prompt's keys and values, kept for requests that start alike.
struct Prefix {
    tokens: Vec<u32>,
    /// One row, one position per token.
    cache: KvCache,
    /// When it was last stored or reused (the least recently used goes first).
    used: u64,
}

/// Padding a prefill may add, as a share of its real tokens (a quarter): rows are prefilled
/// in runs of similar length ([`buckets`]) rather than all padded to the longest prompt.
const PAD_SLACK: (usize, usize) = (5, 4);

/// `group` in runs of similar length to prefill (the tokens each row prefills, shortest
/// first): a run closes when padding it to its longest would add more than [`PAD_SLACK`] of
/// its real tokens. Padding is computed and thrown away, and prompts vary: a 60-prompt
/// benchmark batch padded to its longest was mostly padding.
fn buckets(mut group: Vec<Joining>) -> Vec<Vec<Joining>> {
    let rest = |j: &Joining| j.request.prompt.len() - j.reuse.map_or(0, |(_, len)| len);
    group.sort_by_key(rest);
    let mut runs: Vec<Vec<Joining>> = Vec::new();
    let (mut run, mut real) = (Vec::new(), 0);
    for j in group {
        let n = rest(&j);
        let (num, den) = PAD_SLACK;
        if !run.is_empty() && (run.len() + 1) * n * den > (real + n) * num {
            runs.push(std::mem::take(&mut run));
            real = 0;
        }
        real += n;
        run.push(j);
    }
    if !run.is_empty() {
        runs.push(run);
    }
    runs
}

/// A finished request: its id and reply (or its own error).
pub type Answer = (usize, Result<Generation, ModelError>);

impl<'m> Decoder<'m> {
    pub fn new(model: &'m CausalLm, tokenizer: &'m Tokenizer) -> Self {
        Self {
            model,
            tokenizer,
            cache: model.new_cache(),
            rows: Vec::new(),
            logits: Vec::new(),
            profile: <_>::default(),
            prefixes: Vec::new(),
            share_prefixes: false,
            clock: 0,
        }
    }

    /// Keeps the keys and values of the prompts it prefills, so that a later request starting
    /// alike (the same chat prompt on every call of a strategy, a conversation's earlier turns)
    /// prefills only the rest. For a decoder that lives across requests (an engine).
    pub fn sharing_prefixes(mut self) -> Self {
        self.share_prefixes = true;
        self
    }

    /// Rows decoding.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Positions cached per row (the keys each step attends over, padding included).
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// Where the time went since the last call (admissions, forward passes, masks).
    pub fn take_profile(&mut self) -> BatchProfile {
        std::mem::take(&mut self.profile)
    }

    /// Adds `requests` (each with the caller's id) to the batch: they are prefilled together,
    /// padded to the longest as `padding` says, and decode from the next step on. Requests
    /// that cannot run (their prompt, sampling or grammar) and requests for no tokens are
    /// answered here. The error is a failure of the model itself; the running rows are
    /// untouched by it.
    pub fn admit(
        &mut self,
        requests: Vec<(usize, Request)>,
        padding: Padding,
    ) -> Result<Vec<Answer>, ModelError> {
        let mut answered = Vec::new();
        let mut joining = Vec::with_capacity(requests.len());
        for (id, r) in requests {
            let started = r.check(self.model).and_then(|()| match &r.grammar {
                Some(g) => self.tokenizer.grammars(self.model.config.vocab_size)?.start(g).map(Some),
                None => Ok(None),
            });
            match started {
                Err(e) => answered.push((id, Err(e))),
                // Answered without running the model.
                Ok(_) if r.max_new_tokens == 0 => answered.push((
                    id,
                    finish_row(
                        self.tokenizer,
                        &r,
                        Vec::new(),
                        Finish::Length,
                        Duration::ZERO,
                        Duration::ZERO,
                    ),
                )),
                Ok(matcher) => joining.push((id, r, matcher)),
            }
        }
        if joining.is_empty() {
            return Ok(answered);
        }
        let mut parts = Vec::new();
        let mut pending = joining;
        while !pending.is_empty() {
            // Requests whose prompt starts like one prefilled before reuse its keys and values
            // and prefill only the rest; they are prefilled apart from the others, whose whole
            // prompts would pad their short remainders. A prompt that comes more than once (the
            // solutions of one problem) is prefilled once: its repeats wait for the next round,
            // where they reuse all of it but the last token.
            let (mut reusing, mut fresh, mut repeats) = (Vec::new(), Vec::new(), Vec::new());
            let mut seen = std::collections::HashSet::new();
            for (id, request, matcher) in pending {
                if self.share_prefixes
                    && request.prompt.len() > MIN_REUSE
                    && !seen.insert(request.prompt.clone())
                {
                    repeats.push((id, request, matcher));
                    continue;
                }
                let reuse = self.longest_prefix(&request.prompt);
                let j = Joining { id, request, matcher, reuse };
                if reuse.is_some() { reusing.push(j) } else { fresh.push(j) }
            }
            // Those reusing first: storing the others' prompts may evict what they reuse.
            for group in buckets(reusing).into_iter().chain(buckets(fresh)) {
                parts.push(self.prefill(group, padding)?);
            }
            pending = repeats;
        }
        let joining = Instant::now();
        self.join(parts);
        self.profile.reshape += joining.elapsed();
        Ok(answered)
    }

    /// Adds the prefilled `parts` (rows, their cache, their next-token logits) under the
    /// running rows: one concatenation, every cache padded at the front to the longest.
    fn join(&mut self, parts: Vec<(Vec<Row>, KvCache, Vec<Vec<f32>>)>) {
        let running = (!self.rows.is_empty()).then(|| std::mem::replace(&mut self.cache, KvCache::new(0)));
        let width = parts.iter().map(|(_, c, _)| c.len()).chain(running.as_ref().map(KvCache::len)).max();
        let Some(width) = width else { return };
        let pad_front = |rows: &mut [Row], n: usize| {
            if n > 0 {
                for row in rows {
                    row.valid.splice(0..0, std::iter::repeat_n(false, n));
                }
            }
        };
        let mut caches = Vec::with_capacity(parts.len() + 1);
        if let Some(running) = running {
            pad_front(&mut self.rows, width - running.len());
            caches.push(running);
        }
        for (mut rows, cache, logits) in parts {
            pad_front(&mut rows, width - cache.len());
            caches.push(cache);
            self.rows.extend(rows);
            self.logits.extend(logits);
        }
        self.cache = KvCache::stack_all(caches);
    }

    /// The stored prompt sharing the longest beginning with `prompt` (at least
    /// [`MIN_REUSE`] tokens, and at most all but its last, whose logits are needed): its
    /// index and how many tokens it covers.
    fn longest_prefix(&self, prompt: &[u32]) -> Option<(usize, usize)> {
        let common = |a: &[u32]| a.iter().zip(prompt).take_while(|(x, y)| x == y).count();
        self.prefixes
            .iter()
            .enumerate()
            .map(|(i, p)| (i, common(&p.tokens).min(prompt.len() - 1)))
            .max_by_key(|&(_, len)| len)
            .filter(|&(_, len)| len >= MIN_REUSE)
    }

    /// Prefills `group` together (each row after the cached beginning it reuses, if any) and
    /// stores the prompts' keys and values for reuse; returns the rows, their cache and their
    /// next-token logits, for [`Decoder::join`].
    #[allow(clippy::type_complexity)]
    fn prefill(
        &mut self,
        group: Vec<Joining>,
        padding: Padding,
    ) -> Result<(Vec<Row>, KvCache, Vec<Vec<f32>>), ModelError> {
        let started = Instant::now();
        let device = self.model.model.embed_tokens.weight.device();
        let pad = self.tokenizer.pad;
        // The reused beginnings, stacked (the shorter padded at the front to the longest).
        let mut reused = Vec::with_capacity(group.len());
        let mut reused_len = Vec::with_capacity(group.len());
        for j in &group {
            let len = match j.reuse {
                Some((entry, len)) => {
                    self.clock += 1;
                    self.prefixes[entry].used = self.clock;
                    let mut beginning = self.prefixes[entry].cache.clone();
                    beginning.truncate(len);
                    reused.push(beginning);
                    len
                }
                // Only in the group that reuses nothing (groups are never mixed).
                None => 0,
            };
            reused_len.push(len);
        }
        let mut cache = if reused.is_empty() { self.model.new_cache() } else { KvCache::stack_all(reused) };
        let cached = cache.len();
        let width =
            group.iter().zip(&reused_len).map(|(j, &l)| j.request.prompt.len() - l).max().unwrap_or(0);
        let (mut ids, mut positions, mut last, mut rows) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for (j, &reused) in group.into_iter().zip(&reused_len) {
            let r = j.request;
            let n = r.prompt.len() - reused;
            let gap = width - n;
            let start = reused as i64;
            let rest = &r.prompt[reused..];
            let (row_ids, valid, pos): (Vec<u32>, Vec<bool>, Vec<i64>) = match padding {
                Padding::Left => (
                    std::iter::repeat_n(pad, gap).chain(rest.iter().copied()).collect(),
                    std::iter::repeat_n(false, gap).chain(std::iter::repeat_n(true, n)).collect(),
                    std::iter::repeat_n(0, gap).chain(start..start + n as i64).collect(),
                ),
                Padding::Right => (
                    rest.iter().copied().chain(std::iter::repeat_n(pad, gap)).collect(),
                    std::iter::repeat_n(true, n).chain(std::iter::repeat_n(false, gap)).collect(),
                    (start..start + n as i64).chain(std::iter::repeat_n(start + n as i64, gap)).collect(),
                ),
            };
            last.push(match padding {
                Padding::Left => width - 1,
                Padding::Right => n - 1,
            });
            ids.push(row_ids);
            positions.push(pos);
            // Key validity over the reused beginning (front-padded to the longest) and the rest.
            let valid = std::iter::repeat_n(false, cached - reused)
                .chain(std::iter::repeat_n(true, reused))
                .chain(valid)
                .collect();
            rows.push(Row {
                id: j.id,
                rng: StdRng::seed_from_u64(r.seed),
                request: r,
                out: Vec::new(),
                valid,
                next_position: (reused + n) as i64,
                matcher: j.matcher,
                mask_time: Duration::ZERO,
                decoding_since: started,
            });
        }
        let valid: Vec<Vec<bool>> = rows.iter().map(|r| r.valid.clone()).collect();
        let hidden = self.model.hidden(Inputs::new(&ids, &positions, &valid, &device), Some(&mut cache));
        let [b, s, h] = hidden.dims();
        let picks: Vec<i64> = last.iter().enumerate().map(|(row, &col)| (row * s + col) as i64).collect();
        let picks = Tensor::<1, Int>::from_data(TensorData::new(picks, [b]), &device);
        let last_hidden = hidden.reshape([b * s, h]).select(0, picks).reshape([b, 1, h]);
        let logits = host_logits(self.model.logits(last_hidden), b)?;
        // Reading the logits waited for the forward pass: the prefill's time is known here.
        let prefilled = Instant::now();
        for row in &mut rows {
            row.decoding_since = prefilled;
        }
        let storing = Instant::now();
        self.store_prompts(&rows, &cache);
        self.profile.reshape += storing.elapsed();
        self.profile.rows += rows.len();
        self.profile.reused += reused_len.iter().sum::<usize>();
        self.profile.prefilled += b * s;
        self.profile.prefill += prefilled - started;
        Ok((rows, cache, logits))
    }

    /// Keeps the keys and values of `rows`' prompts (their rows of `cache`) for requests that
    /// start alike, unless a stored one already covers a prompt; the least recently used go
    /// once they hold more than [`PREFIX_BYTES`].
    fn store_prompts(&mut self, rows: &[Row], cache: &KvCache) {
        if !self.share_prefixes {
            return;
        }
        for (i, row) in rows.iter().enumerate() {
            let prompt = &row.request.prompt;
            let covered = self.longest_prefix(prompt).is_some_and(|(_, len)| len + 1 >= prompt.len());
            if prompt.len() < MIN_REUSE || covered {
                continue;
            }
            let positions: Vec<i64> =
                row.valid.iter().enumerate().filter(|(_, v)| **v).map(|(p, _)| p as i64).collect();
            self.clock += 1;
            self.prefixes.push(Prefix {
                tokens: prompt.clone(),
                cache: cache.gather(i, &positions),
                used: self.clock,
            });
        }
        let bytes = |p: &Prefix| p.tokens.len() * p.cache.bytes_per_position();
        let mut total: usize = self.prefixes.iter().map(bytes).sum();
        while total > PREFIX_BYTES && !self.prefixes.is_empty() {
            let oldest = (0..self.prefixes.len()).min_by_key(|&i| self.prefixes[i].used).expect("not empty");
            total -= bytes(&self.prefixes.swap_remove(oldest));
        }
    }

    /// Samples the next token of every row, answers the rows that finished (or failed on
    /// their own: cancelled, their grammar) and runs the forward pass of the others.
    /// `on_token(id, token)` sees every sampled token. The error is a failure of the model
    /// itself: no row survives it (the batch is emptied).
    pub fn step(&mut self, on_token: &mut dyn FnMut(usize, u32)) -> Result<Vec<Answer>, ModelError> {
        let result = self.try_step(on_token);
        if result.is_err() {
            self.rows.clear();
            self.logits.clear();
            self.cache = self.model.new_cache();
        }
        result
    }

    fn try_step(&mut self, on_token: &mut dyn FnMut(usize, u32)) -> Result<Vec<Answer>, ModelError> {
        let max_ctx = self.model.config.max_position_embeddings;
        let mut answered = Vec::new();
        let mut keep = Vec::with_capacity(self.rows.len());
        let sampling = Instant::now();
        let masked_before = self.profile.mask;
        for (k, (row, logits)) in self.rows.iter_mut().zip(&mut self.logits).enumerate() {
            let masked = row.mask_time;
            let stepped = step_row(self.tokenizer, row, logits, max_ctx, on_token);
            self.profile.mask += row.mask_time - masked;
            match stepped {
                Ok(None) => keep.push(k),
                Ok(Some(done)) => answered.push((row.id, Ok(done))),
                Err(e) => answered.push((row.id, Err(e))),
            }
        }
        self.profile.sample += sampling.elapsed().saturating_sub(self.profile.mask - masked_before);
        let device = self.model.model.embed_tokens.weight.device();
        if keep.is_empty() {
            self.rows.clear();
            self.logits.clear();
            self.cache = self.model.new_cache();
            return Ok(answered);
        }
        if keep.len() < self.rows.len() {
            let reshaping = Instant::now();
            let mut stays = vec![false; self.rows.len()];
            keep.iter().for_each(|&k| stays[k] = true);
            // The last first: a row moved into a finished one's place is one that stays.
            for gone in (0..stays.len()).rev().filter(|&k| !stays[k]) {
                self.cache.swap_remove(gone);
                self.rows.swap_remove(gone);
            }
            self.drop_unused_front();
            self.profile.reshape += reshaping.elapsed();
        }
        let mut ids = Vec::with_capacity(self.rows.len());
        let mut positions = Vec::with_capacity(self.rows.len());
        for row in &mut self.rows {
            ids.push(vec![*row.out.last().expect("a token was just added")]);
            positions.push(vec![row.next_position]);
            row.next_position += 1;
            row.valid.push(true);
        }
        let valid: Vec<Vec<bool>> = self.rows.iter().map(|r| r.valid.clone()).collect();
        let started = Instant::now();
        let inputs = Inputs::new(&ids, &positions, &valid, &device);
        let (model, cache) = (self.model, &mut self.cache);
        let mut matchers: Vec<(&mut constraint::Matcher, &mut Duration)> =
            self.rows.iter_mut().filter_map(|r| Some((r.matcher.as_mut()?, &mut r.mask_time))).collect();
        let (out, masked) = if matchers.is_empty() {
            (model.forward_last(inputs, Some(cache)), Duration::ZERO)
        } else {
            // The next tokens' masks depend on the tokens just sampled, not on the logits this
            // forward pass computes: another thread computes them meanwhile.
            std::thread::scope(|s| {
                let masks = s.spawn(move || {
                    let mut spent = Duration::ZERO;
                    for (m, time) in &mut matchers {
                        let started = Instant::now();
                        m.prepare();
                        let took = started.elapsed();
                        **time += took;
                        spent += took;
                    }
                    spent
                });
                let out = model.forward_last(inputs, Some(cache));
                // `prepare` keeps llguidance's errors for `mask`; a panic here is a bug.
                (out, masks.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic)))
            })
        };
        self.profile.mask += masked;
        self.logits = host_logits(out.unsqueeze_dim(1), self.rows.len())?;
        self.profile.forward += started.elapsed();
        self.profile.steps += 1;
        self.profile.row_steps += self.rows.len() as u64;
        Ok(answered)
    }

    /// Drops the cached positions in front of every row's first token once they are many.
    fn drop_unused_front(&mut self) {
        let len = self.cache.len();
        let unused = self
            .rows
            .iter()
            .map(|r| r.valid.iter().position(|&v| v).unwrap_or(r.valid.len()))
            .min()
            .unwrap_or(0);
        if unused >= DROP_FRONT_AT && unused * 4 >= len {
            self.cache.drop_front(unused);
            for row in &mut self.rows {
                row.valid.drain(..unused);
            }
        }
    }
}

/// One decoding step of one row: `None` while it goes on, its reply once it is done, or its
/// own error (cancelled, or its grammar failed). `decoding` is the time since the batch's
/// prefill ended.
fn step_row(
    tokenizer: &Tokenizer,
    row: &mut Row,
    logits: &mut [f32],
    max_ctx: usize,
    on_token: &mut dyn FnMut(usize, u32),
) -> Result<Option<Generation>, ModelError> {
    let r = &row.request;
    if r.cancelled() {
        return Err(ModelError::Cancelled);
    }
    let step = match row.matcher.as_mut() {
        Some(m) => {
            let started = Instant::now();
            let step = m.mask(logits);
            row.mask_time += started.elapsed();
            step?
        }
        None => constraint::Step::Sample,
    };
    let complete = step == constraint::Step::Done;
    let token = match step {
        // Tokens the grammar forces (JSON's keys and punctuation) skip the softmax.
        constraint::Step::Forced(token) => r.sampling.forced(token, &mut row.rng),
        _ => r.sampling.pick(logits, &mut row.rng),
    };
    let stop_token = complete || (!r.ignore_eos && tokenizer.stop_ids.contains(&token));
    if !stop_token {
        row.out.push(token);
        on_token(row.id, token);
        if let Some(m) = row.matcher.as_mut() {
            m.commit(token)?;
        }
    }
    let stopped = stop_token || hits_stop(tokenizer, &row.out, &r.stop)?;
    let budget = r.max_new_tokens.min(max_ctx - r.prompt.len());
    if stopped || row.out.len() >= budget {
        let finish = if stopped { Finish::Stop } else { Finish::Length };
        let decoding = row.decoding_since.elapsed();
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
