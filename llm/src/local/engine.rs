//! The model on its worker thread, answering requests in batches; no cache (`pipeline serve`
//! uses it as is; [`super::LocalClient`] is what the call cache goes in front of).
//!
//! A request is tokenized and checked on the caller's side ([`super::prepare`]), then queued;
//! the worker decodes one running batch ([`trainer::generate::Decoder`]) that requests join
//! between steps and leave when they finish (continuous batching: a short reply is sent when
//! it is done, and a newcomer does not wait for the longest row of a batch). A request that
//! fails (its grammar, its settings) fails alone and the others are answered. A caller that
//! stops waiting (a client that hung up drops the future) cancels its request: it is skipped
//! if still queued and leaves the batch at the next step if decoding.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use std::collections::HashMap;

use tokio::sync::oneshot;
use trainer::Pretrained;
use trainer::generate::{Generation, Request};
use trainer::text::Content;
use vs_core::{ChatRequest, ChatResponse, Usage};

use super::prepare::Prompter;
use crate::error::LlmError;

/// How long an idle worker waits for more requests once one has arrived (a burst shares one
/// prefill); a busy one admits what is queued at every step without waiting.
const GATHER: Duration = Duration::from_millis(25);

struct Job {
    request: Request,
    /// The rows that had joined the batch when the job was queued: how many more join before
    /// it is the queue's wait, in requests.
    queued_at: u64,
    queued: Instant,
    reply: oneshot::Sender<Result<Completed, LlmError>>,
}

/// A reply and how it was made.
#[derive(Debug)]
pub struct Completed {
    pub response: ChatResponse,
    /// The rows decoding when it joined the batch (itself included).
    pub batch: usize,
    /// Requests that joined the batch between queueing this request and its own joining
    /// (those queued before it: the queue is first in, first out).
    pub joined_ahead: u64,
}

impl Job {
    fn cancelled(&self) -> bool {
        self.reply.is_closed() || self.request.cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed))
    }
}

/// Marks its request cancelled when dropped: the future awaiting the reply was dropped (its
/// client hung up) or finished (then the flag is never read again).
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The worker's counters: [`EngineStats`] (atomics the worker adds to) and [`EngineSnapshot`]
/// (a reading, or what a span of work did), from one list so the two cannot drift apart.
macro_rules! engine_counters {
    ($($(#[$doc:meta])* $field:ident,)*) => {
        /// What the worker has done (for `pipeline serve`'s `/metrics` and the stages'
        /// manifests); times in microseconds.
        #[derive(Debug, Default)]
        pub struct EngineStats {
            $($(#[$doc])* pub $field: AtomicU64,)*
        }

        /// A reading of [`EngineStats`], and what a span of work did: [`EngineSnapshot::since`].
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
        pub struct EngineSnapshot {
            $($(#[$doc])* pub $field: u64,)*
        }

        impl EngineStats {
            pub fn snapshot(&self) -> EngineSnapshot {
                EngineSnapshot { $($field: self.$field.load(Ordering::Relaxed),)* }
            }
        }

        impl EngineSnapshot {
            /// What happened between `earlier` and this reading.
            pub fn since(&self, earlier: &EngineSnapshot) -> EngineSnapshot {
                EngineSnapshot { $($field: self.$field.saturating_sub(earlier.$field),)* }
            }
        }
    };
}

engine_counters! {
    /// Admissions: groups of requests prefilled together and joined to the running batch.
    batches,
    generated_tokens,
    /// Requests cancelled by their caller: skipped while queued or dropped from their batch.
    cancelled,
    /// Rows that ran (over `batches`: the mean group that joined at once).
    rows,
    /// The prompts of the rows answered.
    prompt_tokens,
    /// Prompt tokens not prefilled: their keys and values were reused from an earlier prompt
    /// that starts alike.
    reused_prompt_tokens,
    /// Positions the prefills computed, padding included.
    prefilled_positions,
    /// Decoding steps and the rows still running at each (their ratio: the mean live batch).
    steps,
    row_steps,
    /// Wall time decoding, and within it prefill, decoding forward passes, grammar masks,
    /// choosing tokens and rearranging the cache (rows leaving and joining).
    busy_us,
    prefill_us,
    forward_us,
    mask_us,
    sample_us,
    reshape_us,
    /// Time rows waited between being queued and joining the batch, summed.
    queued_us,
}

impl EngineStats {
    fn record(&self, profile: &trainer::generate::BatchProfile, busy: Duration) {
        let add = |a: &AtomicU64, v: u64| a.fetch_add(v, Ordering::Relaxed);
        let us = |d: Duration| d.as_micros() as u64;
        add(&self.rows, profile.rows as u64);
        add(&self.reused_prompt_tokens, profile.reused as u64);
        add(&self.steps, profile.steps);
        add(&self.row_steps, profile.row_steps);
        add(&self.busy_us, us(busy));
        add(&self.prefill_us, us(profile.prefill));
        add(&self.forward_us, us(profile.forward));
        add(&self.mask_us, us(profile.mask));
        add(&self.sample_us, us(profile.sample));
        add(&self.reshape_us, us(profile.reshape));
        add(&self.prefilled_positions, profile.prefilled as u64);
    }
}

impl EngineSnapshot {
    /// The reading as a manifest records it: the sums, and what they mean (the mean batch the
    /// engine decoded: rows per step; the mean group that joined at once; tokens per busy
    /// second, and the busy time in prefill, forward passes, grammar masks, choosing tokens and
    /// rearranging the cache).
    pub fn to_json(&self) -> serde_json::Value {
        let ratio = |a: u64, b: u64| if b == 0 { None } else { Some(round(a as f64 / b as f64)) };
        let seconds = |us: u64| round(us as f64 / 1e6);
        serde_json::json!({
            "admissions": self.batches,
            "rows": self.rows,
            "mean_rows_per_admission": ratio(self.rows, self.batches),
            "steps": self.steps,
            "mean_batch": ratio(self.row_steps, self.steps),
            "generated_tokens": self.generated_tokens,
            "prompt_tokens": self.prompt_tokens,
            "reused_prompt_tokens": self.reused_prompt_tokens,
            "prefilled_positions": self.prefilled_positions,
            "cancelled": self.cancelled,
            "busy_s": seconds(self.busy_us),
            "tokens_per_busy_s": ratio(self.generated_tokens * 1_000_000, self.busy_us),
            "prefill_s": seconds(self.prefill_us),
            "forward_s": seconds(self.forward_us),
            "mask_s": seconds(self.mask_us),
            "sample_s": seconds(self.sample_us),
            "reshape_s": seconds(self.reshape_us),
            "mean_queued_s": ratio(self.queued_us, self.rows * 1_000_000),
        })
    }
}

/// Three decimals: a manifest's figures, not noise.
fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub struct Engine {
    /// `None` only while dropping.
    jobs: Option<mpsc::Sender<Job>>,
    worker: Option<std::thread::JoinHandle<()>>,
    prompter: Arc<Prompter>,
    stats: Arc<EngineStats>,
}

impl Drop for Engine {
    /// Stops the worker and waits for it (at most one decoding step): the model is freed
    /// before whoever dropped the engine goes on, not while the process exits (libtorch's
    /// static destructors racing a forward pass on another thread can crash the exit).
    fn drop(&mut self) {
        drop(self.jobs.take());
        if let Some(worker) = self.worker.take() {
            let _ = worker.join();
        }
    }
}

impl Engine {
    /// Loads the model (on the worker thread, reporting load errors here). `name` names the
    /// thread and the log lines; `content` says how special-token text in message content is
    /// read (as text, unless every caller is trusted).
    pub fn start(
        name: &str,
        path: &std::path::Path,
        device: trainer::DeviceSpec,
        precision: trainer::Precision,
        batch: usize,
        content: Content,
    ) -> Result<Self, String> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (llm, path) = (name.to_owned(), path.to_owned());
        let stats = Arc::new(EngineStats::default());
        let worker_stats = Arc::clone(&stats);
        let worker = std::thread::Builder::new()
            .name(format!("local-llm-{name}"))
            .spawn(move || {
                match Pretrained::load(&path, &device.device()).and_then(|m| m.stored_in(precision)) {
                    Ok(model) => {
                        let config = &model.model.config;
                        let prompter = Prompter {
                            tokenizer: model.tokenizer.clone(),
                            template: model.template.clone(),
                            vocab: config.vocab_size,
                            context: config.max_position_embeddings,
                            content,
                        };
                        let _ = ready_tx.send(Ok(prompter));
                        serve(&model, &inbox, batch.max(1), &llm, &worker_stats);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(format!("cannot load {}: {e}", path.display())));
                    }
                }
            })
            .map_err(|e| format!("cannot start the model thread: {e}"))?;
        let prompter = ready_rx.recv().map_err(|_| "the model thread stopped while loading".to_owned())??;
        Ok(Self { jobs: Some(jobs), worker: Some(worker), prompter: Arc::new(prompter), stats })
    }

    pub fn stats(&self) -> &EngineStats {
        &self.stats
    }

    /// Generates the reply to `request` (seeded by its `seed`, else by `call_index`), batched
    /// with whatever else is waiting: the reply and its batch's size. Dropping the future
    /// cancels the request. Must run inside a tokio runtime (tokenizing uses its blocking pool).
    pub async fn complete(&self, request: &ChatRequest, call_index: u64) -> Result<Completed, LlmError> {
        let prompter = Arc::clone(&self.prompter);
        let owned = request.clone();
        let mut prepared = tokio::task::spawn_blocking(move || prompter.prepare(&owned, call_index))
            .await
            .map_err(|e| LlmError::Local(format!("tokenizing the request failed: {e}")))??;
        let cancel = CancelOnDrop(Arc::new(AtomicBool::new(false)));
        prepared.cancel = Some(Arc::clone(&cancel.0));
        let (reply, answer) = oneshot::channel();
        let stopped =
            || LlmError::WorkerStopped("the model thread has stopped (see the log above for why)".into());
        let queued_at = self.stats.rows.load(Ordering::Relaxed);
        self.jobs
            .as_ref()
            .ok_or_else(stopped)?
            .send(Job { request: prepared, queued_at, queued: Instant::now(), reply })
            .map_err(|_| stopped())?;
        let result = answer.await.map_err(|_| stopped())?;
        drop(cancel);
        result
    }
}

/// A request decoding: who waits for it and what its log line says.
struct Running {
    reply: oneshot::Sender<Result<Completed, LlmError>>,
    /// Rows decoding when it joined.
    batch: usize,
    joined_ahead: u64,
    queued: Duration,
    /// The prefill it shared with the requests that joined with it.
    prefill: Duration,
}

/// The worker's loop (continuous batching): requests join the running batch between steps,
/// up to `capacity` rows, and each is answered as soon as its row finishes. When nothing runs
/// it waits for a request, then briefly for more, so that a burst shares one prefill.
fn serve(model: &Pretrained, inbox: &mpsc::Receiver<Job>, capacity: usize, llm: &str, stats: &EngineStats) {
    let mut decoder = trainer::generate::Decoder::new(&model.model, &model.tokenizer).sharing_prefixes();
    let mut running: HashMap<usize, Running> = HashMap::new();
    let mut next_id = 0usize;
    loop {
        let mut fresh = Vec::new();
        if decoder.is_empty() {
            match inbox.recv() {
                Ok(job) => fresh.push(job),
                Err(_) => return,
            }
            let deadline = Instant::now() + GATHER;
            while fresh.len() < capacity {
                match inbox.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                    Ok(job) => fresh.push(job),
                    Err(_) => break,
                }
            }
        } else {
            while decoder.len() + fresh.len() < capacity {
                match inbox.try_recv() {
                    Ok(job) => fresh.push(job),
                    Err(mpsc::TryRecvError::Empty) => break,
                    // The engine was dropped: nobody can be waiting for a reply.
                    Err(mpsc::TryRecvError::Disconnected) => return,
                }
            }
        }
        // Nobody waits for these any more: not worth a row.
        let gathered = fresh.len();
        fresh.retain(|j| !j.cancelled());
        stats.cancelled.fetch_add((gathered - fresh.len()) as u64, Ordering::Relaxed);
        let busy = Instant::now();
        if !fresh.is_empty() {
            admit(&mut decoder, &mut running, &mut next_id, fresh, llm, stats);
        }
        if !decoder.is_empty() {
            let stepped = decoder.step(&mut |_, _| {
                stats.generated_tokens.fetch_add(1, Ordering::Relaxed);
            });
            match stepped {
                Ok(answers) => {
                    for (id, answer) in answers {
                        if let Some(job) = running.remove(&id) {
                            answer_row(job, answer, llm, stats);
                        }
                    }
                }
                Err(e) => {
                    tracing::error!("llm.{llm}: the batch of {} failed: {e}", running.len());
                    for (_, job) in running.drain() {
                        let _ = job.reply.send(Err(LlmError::Local(e.to_string())));
                    }
                }
            }
        }
        stats.record(&decoder.take_profile(), busy.elapsed());
    }
}

/// Prefills `fresh` into the running batch; requests refused before decoding are answered.
fn admit(
    decoder: &mut trainer::generate::Decoder<'_>,
    running: &mut HashMap<usize, Running>,
    next_id: &mut usize,
    fresh: Vec<Job>,
    llm: &str,
    stats: &EngineStats,
) {
    stats.batches.fetch_add(1, Ordering::Relaxed);
    let joined = stats.rows.load(Ordering::Relaxed);
    let now = Instant::now();
    let mut requests = Vec::with_capacity(fresh.len());
    let mut joining = Vec::with_capacity(fresh.len());
    for job in fresh {
        let id = *next_id;
        *next_id += 1;
        let queued = now - job.queued;
        stats.queued_us.fetch_add(queued.as_micros() as u64, Ordering::Relaxed);
        requests.push((id, job.request.clone()));
        joining.push((id, job.reply, joined.saturating_sub(job.queued_at), queued));
    }
    let size = joining.len();
    let before = decoder.len();
    let prefill_started = Instant::now();
    let admitted = decoder.admit(requests, trainer::generate::Padding::Left);
    let prefill = prefill_started.elapsed();
    let batch = decoder.len();
    let mut refused: HashMap<usize, Result<Generation, trainer::ModelError>> = HashMap::new();
    match admitted {
        Ok(answers) => refused.extend(answers),
        Err(e) => {
            tracing::error!("llm.{llm}: prefilling {size} requests failed: {e}");
            for (_, reply, ..) in joining {
                let _ = reply.send(Err(LlmError::Local(e.to_string())));
            }
            return;
        }
    }
    tracing::debug!(
        "llm.{llm}: {size} joined {before} running rows (prefill {prefill:.1?}, {} cached positions)",
        decoder.cached()
    );
    for (id, reply, joined_ahead, queued) in joining {
        let job = Running { reply, batch, joined_ahead, queued, prefill };
        match refused.remove(&id) {
            Some(answer) => answer_row(job, answer, llm, stats),
            None => {
                running.insert(id, job);
            }
        }
    }
}

/// Sends a finished row's reply (or its own error) to whoever waits for it.
fn answer_row(job: Running, out: Result<Generation, trainer::ModelError>, llm: &str, stats: &EngineStats) {
    let answer = match out {
        Ok(out) => {
            stats.prompt_tokens.fetch_add(out.prompt_tokens as u64, Ordering::Relaxed);
            // One line per request: where its time went (the profile of a stage).
            tracing::debug!(
                target: "llm::request",
                llm,
                batch = job.batch,
                queued_ms = job.queued.as_millis() as u64,
                prefill_ms = job.prefill.as_millis() as u64,
                decode_ms = out.decode_time.as_millis() as u64,
                mask_ms = out.mask_time.as_millis() as u64,
                prompt_tokens = out.prompt_tokens,
                tokens = out.tokens.len(),
            );
            let usage =
                Usage { prompt_tokens: out.prompt_tokens as u64, completion_tokens: out.tokens.len() as u64 };
            let finish_reason = Some(out.finish.as_str().to_owned());
            Ok(Completed {
                response: ChatResponse { content: out.text, usage, finish_reason, cached: false },
                batch: job.batch,
                joined_ahead: job.joined_ahead,
            })
        }
        Err(trainer::ModelError::Cancelled) => {
            stats.cancelled.fetch_add(1, Ordering::Relaxed);
            return;
        }
        // This request's own failure (its grammar, its settings).
        Err(trainer::ModelError::Grammar(e)) => {
            Err(LlmError::LocalRefused(format!("response_format: the schema cannot be followed: {e}")))
        }
        Err(e) => Err(LlmError::LocalRefused(e.to_string())),
    };
    let _ = job.reply.send(answer);
}
