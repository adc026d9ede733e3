//! `bench dispatch`: how close the generate stage comes to keeping every call slot
//! busy. One in-process OpenAI-compatible mock answers Direct requests after a fixed latency
//! (every `--slow-every`-th request to arrive after `--slow-ms` instead: a latency tail); the
//! stage generates `--calls` problems through it at `--concurrency`, and a plain client (that
//! many workers pulling requests off one queue, no stage machinery) sends as many requests to
//! the same server. Both are printed with the ideal (total latency over the slots).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::Args;
use pipeline::runner::{RunOptions, Runner};
use serde_json::json;
use testkit::{MockServer, Reply, Request};
use vs_core::StageName;

#[derive(Args, Clone)]
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

/// The mock's reply to a request: after the latency, or the slow latency for every
/// `slow_every`-th request of the current phase (`phase_start`: the requests before it).
fn reply(a: &DispatchArgs, phase_start: &AtomicUsize, request: &Request) -> Reply {
    let n = request.index + 1 - phase_start.load(Ordering::SeqCst);
    let slow = a.slow_every > 0 && n.is_multiple_of(a.slow_every);
    let seed = request.seed().unwrap_or(n as u64);
    Reply::chat(format!("Question: How many marbles are in box {seed}?\nDifficulty: AMC"))
        .finish_reason("stop")
        .usage(50, 20)
        .after(Duration::from_millis(if slow { a.slow_ms } else { a.latency_ms }))
}

pub fn dispatch(a: &DispatchArgs) -> anyhow::Result<()> {
    // The server (and the plain client) on their own runtime: the stage runs its own.
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let phase_start = Arc::new(AtomicUsize::new(0));
    let mock = runtime.block_on(MockServer::chat({
        let (a, phase_start) = (a.clone(), phase_start.clone());
        move |request| reply(&a, &phase_start, request)
    }));
    let url = mock.url().to_owned();

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
    Runner::new(&config, &dir, pipeline::stages::implemented(), &pipeline::progress::Silent).run(&options)?;
    let ours = start.elapsed().as_secs_f64();
    let ours_requests = mock.requests();
    // Stage time outside the calls: before the first request arrives and after the last reply.
    let since_start =
        |at: Option<Instant>| at.map_or(0.0, |at| at.saturating_duration_since(start).as_secs_f64());
    let setup = since_start(mock.first_arrival());
    let teardown = ours - since_start(mock.last_reply());

    phase_start.store(ours_requests, Ordering::SeqCst);
    let plain = runtime.block_on(plain_client(&url, a.calls, a.concurrency))?;
    let plain_requests = mock.requests() - ours_requests;

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
