//! Makespan of the OpenAI-compatible client: 1,000 calls against a local mock server that
//! answers each after a fixed latency L, with the client's concurrency C. Prints the makespan,
//! its ratio to the ideal ceil(1000 / C) * L, and the client process's CPU time per call.
//! Run: `cargo bench -p pipeline --bench llm_client` (or `just bench`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use llm::cache::CallCache;
use llm::openai::OpenAiClient;
use pipeline::config::{LlmConfig, Provider, ResolvedLlm};
use testkit::{MockServer, Reply};
use vs_core::ChatRequest;
use vs_core::{Message, Role};

const CALLS: u64 = 1000;

fn cpu_seconds() -> f64 {
    // utime + stime of this process, from /proc (Linux), in clock ticks of 1/100 s.
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat.rsplit(')').next().unwrap_or("").split_whitespace().collect();
    let ticks = |i: usize| fields.get(i).and_then(|f| f.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

async fn run(latency: Duration, concurrency: usize) -> (Duration, f64) {
    let mock =
        MockServer::chat(move |_| Reply::chat("Question: x\nDifficulty: AMC").usage(100, 20).after(latency))
            .await;
    let url = mock.url().to_owned();

    let cache = tempfile::tempdir().unwrap();
    let cfg = LlmConfig {
        provider: Provider::Openai,
        base_url: Some(url),
        model: Some("m".into()),
        max_concurrency: concurrency,
        ..LlmConfig::default()
    };
    let client = Arc::new(
        CallCache::new(cache.path(), "bench")
            .in_front_of(OpenAiClient::new(&ResolvedLlm::new("bench", &cfg).unwrap()).unwrap()),
    );
    let request = ChatRequest {
        model: "m".into(),
        messages: vec![
            Message::new(Role::System, "s".repeat(800)),
            Message::new(Role::User, "u".repeat(1200)),
        ],
        temperature: 0.7,
        top_p: 1.0,
        max_tokens: 512,
        seed: None,
        response_format: None,
    };
    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let (client, request) = (client.clone(), request.clone());
            tokio::spawn(async move { client.chat(&request, "bench", i).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    (start.elapsed(), cpu_seconds() - cpu0)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    println!(
        "{:>4} {:>8} {:>11} {:>9} {:>7} {:>14}",
        "C", "L (ms)", "makespan s", "ideal s", "ratio", "CPU ms / call"
    );
    for (latency_ms, c) in [(100u64, 32usize), (100, 8), (20, 64)] {
        let latency = Duration::from_millis(latency_ms);
        let (makespan, cpu) = rt.block_on(run(latency, c));
        let ideal = CALLS.div_ceil(c as u64) as f64 * latency.as_secs_f64();
        println!(
            "{c:>4} {latency_ms:>8} {:>11.3} {ideal:>9.3} {:>7.3} {:>14.3}",
            makespan.as_secs_f64(),
            makespan.as_secs_f64() / ideal,
            cpu * 1000.0 / CALLS as f64
        );
    }
    println!("(CPU time covers the whole process, mock server included: an upper bound for the client.)");
}
