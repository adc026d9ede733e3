//! The `local` provider on the offline model (`just setup` fetches it): concurrent requests are
//! batched, each reply is what the request gets alone, and the call cache answers reruns.

use std::path::Path;
use std::sync::Arc;

use llm::Client;
use llm::cache::CallCache;
use pipeline::config::{LlmConfig, Provider, ResolvedLlm};
use vs_core::ChatRequest;
use vs_core::{Message, Role};

fn local_config() -> LlmConfig {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(model.exists(), "{} is missing: run `just setup`", model.display());
    LlmConfig {
        provider: Provider::Local,
        model_path: Some(model),
        max_concurrency: 4,
        ..LlmConfig::default()
    }
}

fn request(client: &Client, text: &str, temperature: f64, seed: u64) -> ChatRequest {
    ChatRequest {
        model: client.model_name(),
        messages: vec![Message::new(Role::User, text.to_owned())],
        temperature,
        top_p: 0.95,
        max_tokens: 12,
        seed: Some(seed),
        response_format: None,
    }
}

#[test]
fn batched_replies_equal_single_replies_and_reruns_are_cached() {
    let dir = tempfile::tempdir().unwrap();
    let config = local_config();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let client = Arc::new(
        Client::new(
            &ResolvedLlm::new("smollm2", &config).unwrap(),
            CallCache::new(dir.path().join("a"), "smollm2"),
        )
        .unwrap(),
    );
    assert!(client.model_name().starts_with("local:"), "{}", client.model_name());
    let prompts = ["What is the capital of France?", "Name a prime number.", "Say hello.", "What is 2 + 2?"];
    let requests: Vec<ChatRequest> =
        prompts.iter().enumerate().map(|(i, p)| request(&client, p, 0.8, i as u64)).collect();

    // All four at once: one batch.
    let together: Vec<_> = runtime.block_on(async {
        let tasks: Vec<_> = requests
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, r)| {
                let c = client.clone();
                tokio::spawn(async move { c.chat(&r, "arm", i as u64).await.unwrap() })
            })
            .collect();
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    });
    // Each alone, with a fresh cache: the same text (seeded per request, batch-independent).
    let fresh = Client::new(
        &ResolvedLlm::new("smollm2", &config).unwrap(),
        CallCache::new(dir.path().join("b"), "smollm2"),
    )
    .unwrap();
    let meter = pipeline::stages::CallMeter::start(&fresh);
    for (i, r) in requests.iter().enumerate() {
        let alone = runtime.block_on(fresh.chat(r, "arm", i as u64)).unwrap();
        assert!(!alone.cached);
        assert_eq!(alone.content, together[i].content, "request {i}");
        assert!(alone.usage.prompt_tokens > 10 && alone.usage.completion_tokens >= 1, "{:?}", alone.usage);
    }
    assert!(together[0].content.contains("Paris") || together[0].usage.completion_tokens == 12);

    // What a stage's manifest records of its calls: one at a time, each joining an idle
    // engine alone and decoded in a batch of one; the engine's token count is the replies'.
    let tokens: u64 = together.iter().map(|r| r.usage.completion_tokens).sum();
    let alone = meter.to_json(&fresh);
    assert_eq!(
        (&alone["calls_sent"], &alone["calls_cached"], &alone["completion_tokens"]),
        (&4.into(), &0.into(), &tokens.into()),
        "{alone}"
    );
    let engine = &alone["engine"];
    assert_eq!(
        (&engine["admissions"], &engine["rows"], &engine["mean_rows_per_admission"], &engine["mean_batch"]),
        (&4.into(), &4.into(), &1.0.into(), &1.0.into()),
        "{alone}"
    );
    assert_eq!(engine["generated_tokens"], tokens, "{alone}");
    let busy = engine["busy_s"].as_f64().unwrap();
    let parts = ["prefill_s", "forward_s", "mask_s"].map(|k| engine[k].as_f64().unwrap());
    assert!(busy > 0.0 && parts.iter().sum::<f64>() <= busy + 0.003 && parts[2] == 0.0, "{alone}");
    assert!(alone["completion_tokens_per_s"].as_f64().unwrap() > 0.0, "{alone}");
    // Together: the four rows in the batch the engine ran (joining at once, unless they
    // straggled).
    let shared = client.provider().engine_stats().unwrap();
    assert_eq!((shared.rows, shared.generated_tokens), (4, tokens), "{shared:?}");
    assert!(shared.steps > 0 && shared.row_steps >= shared.steps, "{shared:?}");

    // A rerun is answered from the cache.
    let again = runtime.block_on(client.chat(&requests[1], "arm", 1)).unwrap();
    assert!(again.cached);
    assert_eq!(again.content, together[1].content);
    assert_eq!(client.stats().read(), (1, 4, tokens));
}

#[test]
fn a_missing_model_is_a_config_error_naming_the_section() {
    let config = LlmConfig { model_path: Some("models/nope.gguf".into()), ..local_config() };
    let err = Client::new(
        &ResolvedLlm::new("mini", &config).unwrap(),
        CallCache::new(tempfile::tempdir().unwrap().path(), "mini"),
    )
    .err()
    .unwrap();
    let text = err.to_string();
    assert!(text.starts_with("llm.mini:") && text.contains("models/nope.gguf"), "{text}");
}
