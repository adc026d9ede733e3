//! `pipeline bench dispatch`: how close the generate stage comes to keeping every call slot
//! busy. One in-process OpenAI-compatible mock answers Direct requests after a fixed latency
//! (every `--slow-every`-th request to arrive after `--slow-ms` instead: a latency tail); the
//! stage generates `--calls` problems through it at `--concurrency`, and a plain client (that
//! many workers pulling requests off one queue, no stage machinery) sends as many requests to
//! the same server. Both are printed with the ideal (total latency over the slots).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use clap::Args;
use pipeline::runner::{RunOptions, Runner};
use serde_json::{Value, json};
use vs_core::StageName;

#[derive(Args)]
pub struct DispatchArgs {
    /// Problems to generate (Direct: one call each) and requests the plain client sends.
    #[arg(long, default_value_t = 1000)]
    calls: usize,
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Latency of an ordinary reply.
    #[arg(long, default_value_t = 100)]
    latency_ms: u64,
    /// Every N-th request to arrive is slow (0: none; 33 is ~3%).
    #[arg(long, default_value_t = 0)]
    slow_every: usize,
    #[arg(long, default_value_t = 4000)]
    slow_ms: u64,
    #[arg(long)]
    json: bool,
}

struct Mock {
    arrived: AtomicUsize,
    /// Microseconds since `epoch` of the first arrival and the last reply.
    first_arrival: AtomicU64,
    last_reply: AtomicU64,
    epoch: Instant,
    latency: Duration,
    slow_every: usize,
    slow: Duration,
}

async fn reply(State(mock): State<Arc<Mock>>, body: String) -> axum::Json<Value> {
    let n = mock.arrived.fetch_add(1, Ordering::SeqCst) + 1;
    let now = || mock.epoch.elapsed().as_micros() as u64;
    mock.first_arrival.fetch_min(now(), Ordering::SeqCst);
    let slow = mock.slow_every > 0 && n.is_multiple_of(mock.slow_every);
    tokio::time::sleep(if slow { mock.slow } else { mock.latency }).await;
    let body: Value = serde_json::from_str(&body).unwrap_or_default();
    let seed = body["seed"].as_u64().unwrap_or(n as u64);
    mock.last_reply.fetch_max(now(), Ordering::SeqCst);
    axum::Json(json!({
        "choices": [{"message": {"role": "assistant",
            "content": format!("Question: How many marbles are in box {seed}?\nDifficulty: AMC")},
            "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 50, "completion_tokens": 20}
    }))
}

pub fn dispatch(a: &DispatchArgs) -> anyhow::Result<()> {
    let mock = Arc::new(Mock {
        arrived: AtomicUsize::new(0),
        first_arrival: AtomicU64::new(u64::MAX),
        last_reply: AtomicU64::new(0),
        epoch: Instant::now(),
        latency: Duration::from_millis(a.latency_ms),
        slow_every: a.slow_every,
        slow: Duration::from_millis(a.slow_ms),
    });
    // The server (and the plain client) on their own runtime: the stage runs its own.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    let app = axum::Router::new().route("/v1/chat/completions", post(reply)).with_state(mock.clone());
    runtime.spawn(async move { axum::serve(listener, app).await });

    let scratch = tempfile::tempdir()?;
    let text = format!(
        "[run]\nname = \"dispatch\"\nout_dir = \"{}\"\n[llm.mock]\nprovider = \"openai\"\nbase_url = \"{url}\"\n\
         model = \"m\"\nmax_concurrency = {}\n[generate]\nllm = \"mock\"\nstrategies = [\"direct\"]\nnum_problems = {}\n",
        scratch.path().display(),
        a.concurrency,
        a.calls
    );
    let config = pipeline::config::load_str(&text, std::path::Path::new("bench-dispatch.toml"), &[])?.config;
    let dir = pipeline::run_dir::RunDir::open(&config)?;
    let options = RunOptions { stages: Some(vec![StageName::Generate]), ..RunOptions::default() };
    let start = Instant::now();
    let since_epoch = mock.epoch.elapsed().as_micros() as u64;
    Runner::new(&config, &dir, pipeline::stages::implemented(), &pipeline::progress::Silent).run(&options)?;
    let ours = start.elapsed().as_secs_f64();
    let ours_requests = mock.arrived.swap(0, Ordering::SeqCst);
    // Stage time outside the calls: before the first request arrives and after the last reply.
    let setup = (mock.first_arrival.load(Ordering::SeqCst).saturating_sub(since_epoch)) as f64 / 1e6;
    let teardown = ours - (mock.last_reply.load(Ordering::SeqCst).saturating_sub(since_epoch)) as f64 / 1e6;

    let plain = runtime.block_on(plain_client(&url, a.calls, a.concurrency))?;
    let plain_requests = mock.arrived.load(Ordering::SeqCst);

    let slow_count = a.calls.checked_div(a.slow_every).unwrap_or(0);
    let busy = (a.calls - slow_count) as f64 * a.latency_ms as f64 + slow_count as f64 * a.slow_ms as f64;
    let longest = if slow_count > 0 { a.slow_ms } else { a.latency_ms } as f64;
    let ideal = (busy / a.concurrency as f64).max(longest) / 1000.0;
    if a.json {
        println!(
            "{}",
            json!({"calls": a.calls, "concurrency": a.concurrency, "latency_ms": a.latency_ms,
                   "slow_every": a.slow_every, "slow_ms": a.slow_ms, "ours_s": ours, "ours_setup_s": setup, "ours_teardown_s": teardown, "plain_s": plain,
                   "ideal_s": ideal, "ours_requests": ours_requests, "plain_requests": plain_requests})
        );
    } else {
        println!("| client | requests | seconds | vs plain | vs ideal |");
        println!("|---|---:|---:|---:|---:|");
        println!(
            "| generate stage (Direct) | {ours_requests} | {ours:.2} | {:.2}x | {:.2}x |",
            ours / plain,
            ours / ideal
        );
        println!(
            "| plain client ({} workers) | {plain_requests} | {plain:.2} | 1.00x | {:.2}x |",
            a.concurrency,
            plain / ideal
        );
        println!("| ideal | {} | {ideal:.2} | | |", a.calls);
        println!("\nstage before its first request: {setup:.3} s; after its last reply: {teardown:.3} s");
    }
    Ok(())
}

/// `workers` loops, each taking the next request index off a shared counter and waiting for
/// its reply: every slot busy all the time, nothing else.
async fn plain_client(url: &str, calls: usize, workers: usize) -> anyhow::Result<f64> {
    let http = reqwest::Client::new();
    let next = Arc::new(AtomicUsize::new(0));
    let endpoint = format!("{url}/chat/completions");
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..workers {
        let (http, next, endpoint) = (http.clone(), next.clone(), endpoint.clone());
        tasks.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= calls {
                    return Ok::<_, reqwest::Error>(());
                }
                let body = json!({"model": "m", "seed": i, "temperature": 1.0,
                                  "messages": [{"role": "user", "content": "Generate a problem."}]});
                http.post(&endpoint).json(&body).send().await?.error_for_status()?.bytes().await?;
            }
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    Ok(start.elapsed().as_secs_f64())
}
