//! The model on its worker thread, answering requests in batches; no cache (`pipeline serve`
//! uses it as is; [`super::LocalClient`] is what the call cache goes in front of).
//!
//! A request is tokenized and checked on the caller's side ([`super::prepare`]), then queued;
//! the worker gathers a batch and decodes it with [`trainer::generate::generate_each`], so a
//! request that fails (its grammar, its settings) fails alone and the others are answered. A
//! caller that stops waiting (a client that hung up drops the future) cancels its request:
//! it is skipped if still queued and leaves the batch at the next step if decoding.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use trainer::Pretrained;
use trainer::generate::Request;
use trainer::text::Content;
use vs_core::{ChatRequest, ChatResponse, Usage};

use super::prepare::Prompter;
use crate::error::LlmError;

/// How long the worker waits for more requests to fill a batch once one has arrived.
const GATHER: Duration = Duration::from_millis(25);

struct Job {
    request: Request,
    /// The engine's batch count when the job was queued: how many batches ran before its own
    /// is the queue's wait, in batches.
    queued_at: u64,
    queued: Instant,
    reply: oneshot::Sender<Result<Completed, LlmError>>,
}

/// A reply and how it was made.
#[derive(Debug)]
pub struct Completed {
    pub response: ChatResponse,
    /// The size of the batch it was decoded in.
    pub batch: usize,
    /// Batches the engine started between queueing this request and starting its own.
    pub waited_batches: u64,
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

/// What the worker has done (for `pipeline serve`'s `/metrics` and the stages' manifests);
/// times in microseconds.
#[derive(Debug, Default)]
pub struct EngineStats {
    pub batches: AtomicU64,
    pub generated_tokens: AtomicU64,
    /// Requests cancelled by their caller: skipped while queued or dropped from their batch.
    pub cancelled: AtomicU64,
    /// Rows that ran, summed over batches (over `batches`: the mean batch formed).
    pub rows: AtomicU64,
    /// The prompts of the rows answered.
    pub prompt_tokens: AtomicU64,
    /// Decoding steps and the rows still running at each (their ratio: the mean live batch).
    pub steps: AtomicU64,
    pub row_steps: AtomicU64,
    /// Wall time decoding batches, and within it prefill, decoding forward passes and grammar
    /// masks.
    pub busy_us: AtomicU64,
    pub prefill_us: AtomicU64,
    pub forward_us: AtomicU64,
    pub mask_us: AtomicU64,
    /// Time rows waited between being queued and their batch starting, summed.
    pub queued_us: AtomicU64,
}

/// A reading of [`EngineStats`], and what a span of work did: [`EngineSnapshot::since`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EngineSnapshot {
    pub batches: u64,
    pub rows: u64,
    pub generated_tokens: u64,
    pub prompt_tokens: u64,
    pub cancelled: u64,
    pub steps: u64,
    pub row_steps: u64,
    pub busy_us: u64,
    pub prefill_us: u64,
    pub forward_us: u64,
    pub mask_us: u64,
    pub queued_us: u64,
}

impl EngineStats {
    pub fn snapshot(&self) -> EngineSnapshot {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        EngineSnapshot {
            batches: load(&self.batches),
            rows: load(&self.rows),
            generated_tokens: load(&self.generated_tokens),
            prompt_tokens: load(&self.prompt_tokens),
            cancelled: load(&self.cancelled),
            steps: load(&self.steps),
            row_steps: load(&self.row_steps),
            busy_us: load(&self.busy_us),
            prefill_us: load(&self.prefill_us),
            forward_us: load(&self.forward_us),
            mask_us: load(&self.mask_us),
            queued_us: load(&self.queued_us),
        }
    }

    fn record(&self, profile: &trainer::generate::BatchProfile, busy: Duration, prompt_tokens: usize) {
        let add = |a: &AtomicU64, v: u64| a.fetch_add(v, Ordering::Relaxed);
        let us = |d: Duration| d.as_micros() as u64;
        add(&self.rows, profile.rows as u64);
        add(&self.prompt_tokens, prompt_tokens as u64);
        add(&self.steps, profile.steps);
        add(&self.row_steps, profile.row_steps);
        add(&self.busy_us, us(busy));
        add(&self.prefill_us, us(profile.prefill));
        add(&self.forward_us, us(profile.forward));
        add(&self.mask_us, us(profile.mask));
    }
}

impl EngineSnapshot {
    /// What happened between `earlier` and this reading.
    pub fn since(&self, earlier: &EngineSnapshot) -> EngineSnapshot {
        let d = |a: u64, b: u64| a.saturating_sub(b);
        EngineSnapshot {
            batches: d(self.batches, earlier.batches),
            rows: d(self.rows, earlier.rows),
            generated_tokens: d(self.generated_tokens, earlier.generated_tokens),
            prompt_tokens: d(self.prompt_tokens, earlier.prompt_tokens),
            cancelled: d(self.cancelled, earlier.cancelled),
            steps: d(self.steps, earlier.steps),
            row_steps: d(self.row_steps, earlier.row_steps),
            busy_us: d(self.busy_us, earlier.busy_us),
            prefill_us: d(self.prefill_us, earlier.prefill_us),
            forward_us: d(self.forward_us, earlier.forward_us),
            mask_us: d(self.mask_us, earlier.mask_us),
            queued_us: d(self.queued_us, earlier.queued_us),
        }
    }

    /// The reading as a manifest records it: the sums, and what they mean (the mean batch the
    /// engine formed, the mean rows still decoding per step, tokens per busy second, and the
    /// shares of busy time in prefill, forward passes and grammar masks).
    pub fn to_json(&self) -> serde_json::Value {
        let ratio = |a: u64, b: u64| if b == 0 { None } else { Some(round(a as f64 / b as f64)) };
        let seconds = |us: u64| round(us as f64 / 1e6);
        serde_json::json!({
            "batches": self.batches,
            "rows": self.rows,
            "mean_batch": ratio(self.rows, self.batches),
            "mean_live_rows_per_step": ratio(self.row_steps, self.steps),
            "generated_tokens": self.generated_tokens,
            "prompt_tokens": self.prompt_tokens,
            "cancelled": self.cancelled,
            "busy_s": seconds(self.busy_us),
            "tokens_per_busy_s": ratio(self.generated_tokens * 1_000_000, self.busy_us),
            "prefill_s": seconds(self.prefill_us),
            "forward_s": seconds(self.forward_us),
            "mask_s": seconds(self.mask_us),
            "mean_queued_s": ratio(self.queued_us, self.rows * 1_000_000),
        })
    }
}

/// Three decimals: a manifest's figures, not noise.
fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

pub struct Engine {
    jobs: mpsc::Sender<Job>,
    prompter: Arc<Prompter>,
    stats: Arc<EngineStats>,
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
        std::thread::Builder::new()
            .name(format!("local-llm-{name}"))
            .spawn(move || match Pretrained::load(&path, &device.device()) {
                Ok(model) => {
                    let model = model.stored_in(precision);
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
            })
            .map_err(|e| format!("cannot start the model thread: {e}"))?;
        let prompter = ready_rx.recv().map_err(|_| "the model thread stopped while loading".to_owned())??;
        Ok(Self { jobs, prompter: Arc::new(prompter), stats })
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
        let queued_at = self.stats.batches.load(Ordering::Relaxed);
        self.jobs
            .send(Job { request: prepared, queued_at, queued: Instant::now(), reply })
            .map_err(|_| stopped())?;
        let result = answer.await.map_err(|_| stopped())?;
        drop(cancel);
        result
    }
}

fn serve(model: &Pretrained, inbox: &mpsc::Receiver<Job>, batch: usize, llm: &str, stats: &EngineStats) {
    while let Ok(first) = inbox.recv() {
        let mut jobs = vec![first];
        let deadline = Instant::now() + GATHER;
        while jobs.len() < batch {
            match inbox.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // Nobody waits for these any more: not worth a row.
        let gathered = jobs.len();
        jobs.retain(|j| !j.cancelled());
        stats.cancelled.fetch_add((gathered - jobs.len()) as u64, Ordering::Relaxed);
        if jobs.is_empty() {
            continue;
        }
        let batch_number = stats.batches.fetch_add(1, Ordering::Relaxed);
        let started = Instant::now();
        let size = jobs.len();
        let queued: Vec<Duration> = jobs.iter().map(|j| started - j.queued).collect();
        let queued_us: u64 = queued.iter().map(|q| q.as_micros() as u64).sum();
        stats.queued_us.fetch_add(queued_us, Ordering::Relaxed);
        let requests: Vec<Request> = jobs.iter().map(|j| j.request.clone()).collect();
        let mut profile = trainer::generate::BatchProfile::default();
        match trainer::generate::generate_each(
            &model.model,
            &model.tokenizer,
            &requests,
            trainer::generate::Padding::Left,
            &mut |_, _| {
                stats.generated_tokens.fetch_add(1, Ordering::Relaxed);
            },
            &mut profile,
        ) {
            Ok(outputs) => {
                let busy = started.elapsed();
                let prompt_tokens: usize = outputs.iter().flatten().map(|o| o.prompt_tokens).sum();
                stats.record(&profile, busy, prompt_tokens);
                let tokens: usize = outputs.iter().flatten().map(|o| o.tokens.len()).sum();
                tracing::debug!(
                    "llm.{llm}: batch of {size} -> {tokens} tokens in {busy:.1?} (prefill {:.1?}, \
                     forward {:.1?} over {} steps, masks {:.1?})",
                    profile.prefill,
                    profile.forward,
                    profile.steps,
                    profile.mask
                );
                for ((job, out), queued) in jobs.into_iter().zip(outputs).zip(queued) {
                    let answer = match out {
                        Ok(out) => {
                            // One line per request: where its time went (the profile of a stage).
                            tracing::debug!(
                                target: "llm::request",
                                llm,
                                batch = size,
                                queued_ms = queued.as_millis() as u64,
                                prefill_ms = profile.prefill.as_millis() as u64,
                                decode_ms = out.decode_time.as_millis() as u64,
                                mask_ms = out.mask_time.as_millis() as u64,
                                prompt_tokens = out.prompt_tokens,
                                tokens = out.tokens.len(),
                            );
                            let usage = Usage {
                                prompt_tokens: out.prompt_tokens as u64,
                                completion_tokens: out.tokens.len() as u64,
                            };
                            let finish_reason = Some(out.finish.as_str().to_owned());
                            Ok(Completed {
                                response: ChatResponse {
                                    content: out.text,
                                    usage,
                                    finish_reason,
                                    cached: false,
                                },
                                batch: size,
                                waited_batches: batch_number.saturating_sub(job.queued_at),
                            })
                        }
                        Err(trainer::ModelError::Cancelled) => {
                            stats.cancelled.fetch_add(1, Ordering::Relaxed);
                            continue;
                        }
                        // This request's own failure (its grammar, its settings).
                        Err(trainer::ModelError::Grammar(e)) => Err(LlmError::LocalRefused(format!(
                            "response_format: the schema cannot be followed: {e}"
                        ))),
                        Err(e) => Err(LlmError::LocalRefused(e.to_string())),
                    };
                    let _ = job.reply.send(answer);
                }
            }
            Err(e) => {
                tracing::error!("llm.{llm}: a batch of {size} failed: {e}");
                for job in jobs {
                    let _ = job.reply.send(Err(LlmError::Local(e.to_string())));
                }
            }
        }
    }
}
