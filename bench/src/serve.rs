//! `bench serve`: `pipeline serve`'s throughput over real HTTP next to the same engine
//! called in-process, at several numbers of concurrent clients: what the server's layer costs
//! and how well concurrent requests are batched.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use llm::local::Engine;
use serde_json::json;
use trainer::DeviceSpec;
use vs_core::ChatRequest;
use vs_core::{Message, Role};

#[derive(Args)]
pub struct ServeBenchArgs {
    #[arg(long, default_value = "models/SmolLM2-135M-Instruct.Q4_1.gguf")]
    model: PathBuf,
    /// Concurrent clients, one setting per value.
    #[arg(long, value_delimiter = ',', default_value = "1,8,32")]
    clients: Vec<usize>,
    /// Requests per setting.
    #[arg(long, default_value_t = 32)]
    requests: usize,
    #[arg(long, default_value_t = 64)]
    max_tokens: u32,
    /// The engine's largest batch (both ways).
    #[arg(long, default_value_t = 32)]
    max_batch: usize,
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
    #[arg(long)]
    json: bool,
}

fn request(i: usize, max_tokens: u32) -> ChatRequest {
    ChatRequest {
        model: "bench".into(),
        messages: vec![Message::new(
            Role::User,
            format!(
                "Write a short competition math problem about {} marbles in {} boxes.",
                10 + i,
                2 + i % 7
            ),
        )],
        temperature: 0.0,
        top_p: 1.0,
        max_tokens,
        seed: Some(i as u64),
        response_format: None,
    }
}

pub fn serve(a: &ServeBenchArgs) -> anyhow::Result<()> {
    let precision = trainer::Precision::F32;
    let inproc = Arc::new(
        Engine::start("bench-inproc", &a.model, a.device, precision, a.max_batch, llm::local::Content::Text)
            .map_err(anyhow::Error::msg)?,
    );
    let served =
        Engine::start("bench-serve", &a.model, a.device, precision, a.max_batch, llm::local::Content::Text)
            .map_err(anyhow::Error::msg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}/v1/chat/completions", listener.local_addr()?);
    // The real server loop; a queue deep enough that no client is turned away (429).
    let limits = llm::serve::Limits { max_queue: 4096, ..llm::serve::Limits::default() };
    let server = Arc::new(llm::serve::Server::new(served, "bench".into(), limits));
    runtime.spawn(async move {
        llm::serve::serve(listener, server, std::future::pending(), std::time::Duration::ZERO).await
    });
    let http = reqwest::Client::new();

    if !a.json {
        println!("| way | clients | requests | seconds | requests/s | tokens/s | largest batch |");
        println!("|---|---:|---:|---:|---:|---:|---:|");
    }
    for &clients in &a.clients {
        for way in ["in-process", "pipeline serve (HTTP)"] {
            let start = Instant::now();
            let results: Vec<(u64, usize)> = runtime.block_on(async {
                let mut tasks = tokio::task::JoinSet::new();
                for c in 0..clients.max(1) {
                    let (inproc, http, url) = (inproc.clone(), http.clone(), url.clone());
                    let (requests, max_tokens, http_way) = (a.requests, a.max_tokens, way != "in-process");
                    tasks.spawn(async move {
                        let mut out = Vec::new();
                        for i in (c..requests).step_by(clients.max(1)) {
                            let r = request(i, max_tokens);
                            out.push(if http_way {
                                let resp = http.post(&url).json(&r).send().await?.error_for_status()?;
                                let batch = resp.headers()["x-batch-size"].to_str()?.parse()?;
                                let v: serde_json::Value = resp.json().await?;
                                (v["usage"]["completion_tokens"].as_u64().unwrap_or(0), batch)
                            } else {
                                let llm::local::Completed { response: reply, batch, .. } =
                                    inproc.complete(&r, i as u64).await?;
                                (reply.usage.completion_tokens, batch)
                            });
                        }
                        anyhow::Ok(out)
                    });
                }
                let mut all = Vec::new();
                while let Some(done) = tasks.join_next().await {
                    all.extend(done??);
                }
                anyhow::Ok(all)
            })?;
            let seconds = start.elapsed().as_secs_f64();
            let tokens: u64 = results.iter().map(|r| r.0).sum();
            let largest = results.iter().map(|r| r.1).max().unwrap_or(0);
            let n = results.len();
            if a.json {
                println!(
                    "{}",
                    json!({"way": way, "clients": clients, "requests": n, "seconds": seconds,
                           "requests_per_s": n as f64 / seconds, "tokens_per_s": tokens as f64 / seconds,
                           "largest_batch": largest})
                );
            } else {
                println!(
                    "| {way} | {clients} | {n} | {seconds:.2} | {:.2} | {:.1} | {largest} |",
                    n as f64 / seconds,
                    tokens as f64 / seconds
                );
            }
        }
    }
    Ok(())
}
