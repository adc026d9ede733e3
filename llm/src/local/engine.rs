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

/// What the worker has done (for `pipeline serve`'s `/metrics`).
#[derive(Debug, Default)]
pub struct EngineStats {
    pub batches: AtomicU64,
    pub generated_tokens: AtomicU64,
    /// Requests cancelled by their caller: skipped while queued or dropped from their batch.
    pub cancelled: AtomicU64,
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
        self.jobs.send(Job { request: prepared, queued_at, reply }).map_err(|_| stopped())?;
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
        let requests: Vec<Request> = jobs.iter().map(|j| j.request.clone()).collect();
        match trainer::generate::generate_each(
            &model.model,
            &model.tokenizer,
            &requests,
            trainer::generate::Padding::Left,
            &mut |_, _| {
                stats.generated_tokens.fetch_add(1, Ordering::Relaxed);
            },
        ) {
            Ok(outputs) => {
                let tokens: usize = outputs.iter().flatten().map(|o| o.tokens.len()).sum();
                tracing::debug!("llm.{llm}: batch of {size} -> {tokens} tokens in {:.1?}", started.elapsed());
                for (job, out) in jobs.into_iter().zip(outputs) {
                    let answer = match out {
                        Ok(out) => {
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
