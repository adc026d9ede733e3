//! `pipeline serve`: the local engine behind an OpenAI-compatible HTTP API (see
//! `pipeline::serve`), until Ctrl-C or SIGTERM.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
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
    /// `f32`, `bf16` or `auto`.
    #[arg(long, default_value = "f32")]
    dtype: trainer::PrecisionChoice,
}

pub fn serve(a: &ServeArgs) -> anyhow::Result<()> {
    let name = a.served_model_name.clone().unwrap_or_else(|| a.model.display().to_string());
    let precision = a.dtype.resolve(a.device);
    let engine = llm::local::Engine::start("serve", &a.model, a.device, precision, a.max_batch)
        .map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind((a.host.as_str(), a.port))
            .await
            .with_context(|| format!("cannot listen on {}:{}", a.host, a.port))?;
        let addr = listener.local_addr()?;
        // One line a supervisor (or a test) can wait for; the port is the real one with --port 0.
        eprintln!("serving `{name}` ({precision}, batches of up to {}) on http://{addr}/v1", a.max_batch);
        let app = llm::serve::router(Arc::new(llm::serve::Server::new(engine, name)));
        axum::serve(listener, app).with_graceful_shutdown(shutdown()).await?;
        eprintln!("stopped");
        anyhow::Ok(())
    })
}

/// Ctrl-C or SIGTERM (what Slurm and a stage stopping its server send).
async fn shutdown() {
    let mut term =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("a SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
