//! The `local` provider: the trainer's model in-process, answering the same chat requests as
//! the OpenAI client. One worker thread owns the model; concurrent `chat` calls queue up and
//! are answered in batches of up to `max_concurrency` (a short gathering window lets a wave of
//! requests arrive together). Sampling is seeded per request, so a reply does not depend on
//! which requests shared its batch, and the call cache in front ([`crate::cache::Cached`])
//! makes reruns free. A request's `response_format` (sent when `json_schema = true`)
//! constrains decoding to its JSON schema, so even a small model writes the JSON a strategy
//! asks for.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;
use trainer::Pretrained;
use trainer::generate::{Grammar, Request, Sampling};
use trainer::text::ChatMessage;

use vs_core::{ChatRequest, ChatResponse, Usage};

use crate::chat::Chat;
use crate::error::LlmError;
use crate::resolved::{Endpoint, ResolvedLlm};

/// How long the worker waits for more requests to fill a batch once one has arrived.
const GATHER: Duration = Duration::from_millis(25);

struct Job {
    request: ChatRequest,
    call_index: u64,
    /// The reply and the size of the batch it was decoded in.
    reply: oneshot::Sender<Result<(ChatResponse, usize), LlmError>>,
}

/// The model on its worker thread, answering requests in batches; no cache (`pipeline serve`
/// uses it as is; [`LocalClient`] is what the call cache goes in front of).
pub struct Engine {
    jobs: mpsc::Sender<Job>,
}

impl Engine {
    /// Loads the model (on the worker thread, reporting load errors here). `name` names the
    /// thread and the log lines.
    pub fn start(
        name: &str,
        path: &std::path::Path,
        device: trainer::DeviceSpec,
        precision: trainer::Precision,
        batch: usize,
    ) -> Result<Self, String> {
        let (jobs, inbox) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel();
        let (llm, path) = (name.to_owned(), path.to_owned());
        std::thread::Builder::new()
            .name(format!("local-llm-{name}"))
            .spawn(move || match Pretrained::load(&path, &device.device()) {
                Ok(model) => {
                    let model = model.stored_in(precision);
                    let _ = ready_tx.send(Ok(()));
                    serve(&model, &inbox, batch.max(1), &llm);
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(format!("cannot load {}: {e}", path.display())));
                }
            })
            .map_err(|e| format!("cannot start the model thread: {e}"))?;
        ready_rx.recv().map_err(|_| "the model thread stopped while loading".to_owned())??;
        Ok(Self { jobs })
    }

    /// Generates the reply to `request` (seeded by its `seed`, else by `call_index`), batched
    /// with whatever else is waiting: the reply and its batch's size.
    pub async fn complete(
        &self,
        request: &ChatRequest,
        call_index: u64,
    ) -> Result<(ChatResponse, usize), LlmError> {
        let (reply, answer) = oneshot::channel();
        let stopped =
            || LlmError::WorkerStopped("the model thread has stopped (see the log above for why)".into());
        self.jobs.send(Job { request: request.clone(), call_index, reply }).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }
}

/// The engine as a provider: requests name the model by its content identity.
pub struct LocalClient {
    engine: Engine,
    model_id: String,
}

impl LocalClient {
    /// Loads the model (on the worker thread, reporting load errors here). `endpoint` is the
    /// LLM's endpoint identity as the call cache is keyed by it (the model's content digest):
    /// requests name the model `local:<endpoint>`.
    pub fn new(llm: &ResolvedLlm, endpoint: &str) -> Result<Self, LlmError> {
        let name = llm.name.as_str();
        let cfg_err = |message: String| LlmError::Config { llm: name.to_owned(), message };
        let Endpoint::Local { model_path, device, precision } = &llm.endpoint else {
            return Err(cfg_err("not a local provider".into()));
        };
        let model_id = format!("local:{endpoint}");
        let engine = Engine::start(name, model_path, *device, *precision, llm.throughput.max_concurrency)
            .map_err(cfg_err)?;
        Ok(Self { engine, model_id })
    }
}

impl Chat for LocalClient {
    /// What identifies this model in requests: its content digest.
    fn model_name(&self) -> String {
        self.model_id.clone()
    }

    async fn chat(&self, request: &ChatRequest, call_index: u64) -> Result<ChatResponse, LlmError> {
        let (response, _) = self.engine.complete(request, call_index).await?;
        Ok(response)
    }
}

fn serve(model: &Pretrained, inbox: &mpsc::Receiver<Job>, batch: usize, llm: &str) {
    while let Ok(first) = inbox.recv() {
        let mut jobs = vec![first];
        let deadline = Instant::now() + GATHER;
        while jobs.len() < batch {
            match inbox.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        // Requests that cannot run are answered alone; the rest share one generate call.
        let mut runnable = Vec::new();
        let mut requests = Vec::new();
        for job in jobs {
            match to_request(model, &job) {
                Ok(r) => {
                    requests.push(r);
                    runnable.push(job);
                }
                Err(e) => {
                    let _ = job.reply.send(Err(e));
                }
            }
        }
        if requests.is_empty() {
            continue;
        }
        let started = Instant::now();
        let batch = requests.len();
        match model.generate(&requests, &mut |_, _| {}) {
            Ok(outputs) => {
                let tokens: usize = outputs.iter().map(|o| o.tokens.len()).sum();
                tracing::debug!(
                    "llm.{llm}: batch of {} -> {tokens} tokens in {:.1?}",
                    outputs.len(),
                    started.elapsed()
                );
                for (job, out) in runnable.into_iter().zip(outputs) {
                    let usage = Usage {
                        prompt_tokens: out.prompt_tokens as u64,
                        completion_tokens: out.tokens.len() as u64,
                    };
                    let finish_reason = Some(out.finish.as_str().to_owned());
                    let _ = job.reply.send(Ok((
                        ChatResponse { content: out.text, usage, finish_reason, cached: false },
                        batch,
                    )));
                }
            }
            Err(e) => {
                for job in runnable {
                    let _ = job.reply.send(Err(LlmError::Local(e.to_string())));
                }
            }
        }
    }
}

fn to_request(model: &Pretrained, job: &Job) -> Result<Request, LlmError> {
    let r = &job.request;
    let messages: Vec<ChatMessage> =
        r.messages.iter().map(|m| ChatMessage::new(m.role.as_str(), &m.content)).collect();
    let prompt = model.chat_prompt(&messages).map_err(|e| LlmError::Local(e.to_string()))?;
    let context = model.model.config.max_position_embeddings;
    if prompt.len() >= context {
        return Err(LlmError::Local(format!(
            "the prompt has {} tokens; the model's context is {context}",
            prompt.len()
        )));
    }
    // A grammar that cannot compile fails its own request, not the batch it would join.
    let grammar = match &r.response_format {
        Some(format) => Grammar::from_response_format(format).map_err(LlmError::Local)?,
        None => None,
    };
    if let Some(g) = &grammar {
        let local = |e: trainer::ModelError| LlmError::Local(e.to_string());
        model.tokenizer.grammars(model.model.config.vocab_size).map_err(local)?.start(g).map_err(local)?;
    }
    Ok(Request {
        prompt,
        max_new_tokens: r.max_tokens as usize,
        sampling: Sampling { temperature: r.temperature as f32, top_p: r.top_p as f32, min_p: 0.0, top_k: 0 },
        stop: Vec::new(),
        seed: r.seed.unwrap_or(job.call_index),
        ignore_eos: false,
        grammar,
    })
}
