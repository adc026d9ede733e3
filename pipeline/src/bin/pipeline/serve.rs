//! `pipeline serve`: the local engine behind an OpenAI-compatible HTTP API (see
//! `pipeline::serve`), until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use llm::local::Content;
use llm::serve::Stopped;
use trainer::DeviceSpec;

#[derive(Args)]
pub struct ServeArgs {
    /// A GGUF file, a Hugging Face model folder, or a fine-tuned export (`.../model`).
    #[arg(long)]
    model: PathBuf,
    /// 127.0.0.1 unless you mean to expose it (there is no authentication).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// 0 picks a free port (printed on start).
    #[arg(long, default_value_t = 8000)]
    port: u16,
    /// The name `/v1/models` lists and requests ask for; the model path as given by default
    /// (what `vllm serve <path>` does).
    #[arg(long)]
    served_model_name: Option<String>,
    /// The largest batch of concurrent requests decoded together.
    #[arg(long, default_value_t = 16)]
    max_batch: usize,
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    /// `f32`, `bf16`, `int8` (weight-only, the CPU) or `auto`.
    #[arg(long, default_value = "f32")]
    dtype: trainer::PrecisionChoice,
    /// Requests admitted at once (decoding or waiting); one more gets 429 with Retry-After.
    #[arg(long, default_value_t = 64)]
    max_queue: usize,
    /// Open connections; one more gets 503 and is closed.
    #[arg(long, default_value_t = 256)]
    max_connections: usize,
    /// The largest request body (413 beyond).
    #[arg(long, default_value_t = 8 << 20)]
    max_body_bytes: usize,
    /// A connection that has not sent a request's headers within this long is closed.
    #[arg(long, default_value_t = 10.0)]
    header_timeout_s: f64,
    /// A request whose body has not arrived within this long gets 408.
    #[arg(long, default_value_t = 30.0)]
    body_timeout_s: f64,
    /// On SIGTERM or Ctrl-C, how long in-flight requests may finish before the server closes
    /// what is left and exits (a second signal exits at once).
    #[arg(long, default_value_t = 30.0)]
    shutdown_timeout_s: f64,
    /// Read special-token text in message content (`<|im_start|>`) as the tokens it spells.
    /// Only for trusted callers: anyone else could close their turn and forge a system one.
    #[arg(long)]
    allow_special_tokens: bool,
}

fn seconds(key: &str, s: f64) -> anyhow::Result<Duration> {
    Duration::try_from_secs_f64(s)
        .map_err(|_| anyhow::anyhow!("--{key}: {s} is not a number of seconds >= 0"))
}

pub fn serve(a: &ServeArgs) -> anyhow::Result<()> {
    let name = a.served_model_name.clone().unwrap_or_else(|| a.model.display().to_string());
    let precision = a.dtype.resolve(a.device);
    let limits = llm::serve::Limits {
        max_queue: a.max_queue,
        max_connections: a.max_connections,
        max_body_bytes: a.max_body_bytes,
        header_timeout: seconds("header-timeout-s", a.header_timeout_s)?,
        body_timeout: seconds("body-timeout-s", a.body_timeout_s)?,
    };
    let grace = seconds("shutdown-timeout-s", a.shutdown_timeout_s)?;
    let content = if a.allow_special_tokens { Content::Trusted } else { Content::Text };
    let engine = llm::local::Engine::start("serve", &a.model, a.device, precision, a.max_batch, content)
        .map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((a.host.as_str(), a.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", a.host, a.port))?;
        let addr = listener.local_addr()?;
        // One line a supervisor (or a test) can wait for; the port is the real one with --port 0.
        eprintln!("serving `{name}` ({precision}, batches of up to {}) on http://{addr}/v1", a.max_batch);
        let server = Arc::new(llm::serve::Server::new(engine, name, limits));
        let stopped = llm::serve::serve(listener, server, first_signal()?, grace).await;
        match stopped {
            Stopped::Drained => eprintln!("stopped"),
            Stopped::Deadline { open } => {
                eprintln!("stopped after {grace:.0?}: closed {open} connection(s) still open")
            }
        }
        anyhow::Ok(())
    })
}

/// Resolves on the first Ctrl-C or SIGTERM (what Slurm and a stage stopping its server send);
/// a second one exits the process at once, whatever is still draining.
fn first_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot install a SIGTERM handler")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot install a SIGINT handler")?;
    let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("stopping: finishing in-flight requests (a second Ctrl-C or SIGTERM exits at once)");
        let _ = first_tx.send(());
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        eprintln!("stopped at once (second signal)");
        std::process::exit(130);
    });
    Ok(async move {
        let _ = first_rx.await;
    })
}
