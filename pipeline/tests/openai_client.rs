//! The OpenAI-compatible client against an in-process mock server: replies, the cache, retries
//! (429 + Retry-After, 5xx, timeouts, garbage), no retry on 4xx, the key, the concurrency cap, and
//! the structured-output dialects.

use std::sync::Arc;
use std::time::{Duration, Instant};

use llm::LlmError;
use llm::cache::CallCache;
use llm::openai::OpenAiClient;
use pipeline::config::{LlmConfig, Provider, ResolvedLlm, StructuredOutput};
use testkit::MockServer;
use vs_core::ChatRequest;
use vs_core::{Message, Role};

#[derive(Clone, Debug)]
enum Reply {
    Ok(&'static str),
    Status(u16, Option<&'static str>),
    SlowOk(u64, &'static str),
    Garbage,
}

fn ok(content: &str) -> testkit::Reply {
    testkit::Reply::chat(content).usage(11, 7)
}

impl Reply {
    fn sent(self) -> testkit::Reply {
        match self {
            Reply::Ok(c) => ok(c),
            Reply::SlowOk(ms, c) => ok(c).after_ms(ms),
            Reply::Status(code, retry_after) => {
                let r = testkit::Reply::text(code, "server says no");
                match retry_after {
                    Some(ra) => r.header("retry-after", ra),
                    None => r,
                }
            }
            Reply::Garbage => testkit::Reply::text(200, "{\"choices\": ["),
        }
    }
}

/// A server that sends `script` in order, then "default".
async fn serve(script: Vec<Reply>) -> (MockServer, String) {
    let mock = MockServer::builder()
        .script(script.into_iter().map(Reply::sent))
        .chat(|_| ok("default"))
        .start()
        .await;
    let url = mock.url().to_owned();
    (mock, url)
}

fn config(url: &str, key_var: Option<&str>) -> LlmConfig {
    LlmConfig {
        provider: Provider::Openai,
        base_url: Some(url.to_owned()),
        model: Some("gpt-test".into()),
        api_key_env: key_var.map(str::to_owned),
        max_retries: 3,
        timeout_s: 5.0,
        ..LlmConfig::default()
    }
}

fn request(text: &str) -> ChatRequest {
    ChatRequest {
        model: "gpt-test".into(),
        messages: vec![Message::new(Role::System, "sys"), Message::new(Role::User, text)],
        temperature: 0.7,
        top_p: 1.0,
        max_tokens: 100,
        seed: Some(42),
        response_format: None,
    }
}

fn resolved(name: &str, cfg: &LlmConfig) -> ResolvedLlm {
    ResolvedLlm::new(name, cfg).unwrap()
}

fn client(cfg: &LlmConfig, cache: &tempfile::TempDir) -> llm::cache::Cached<OpenAiClient> {
    CallCache::new(cache.path(), "endpoint").in_front_of(
        OpenAiClient::new(&resolved("test", cfg)).unwrap().with_backoff_base(Duration::from_millis(10)),
    )
}

fn files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(files(&p)) } else { out.push(p) }
    }
    out
}

#[tokio::test]
async fn replies_are_cached_per_call_and_the_key_stays_in_the_header() {
    // SAFETY: only this test reads this variable.
    unsafe { std::env::set_var("VSDATA_TEST_OPENAI_KEY", "sk-test-123") };
    let (mock, url) = serve(vec![Reply::Ok("first"), Reply::Ok("second")]).await;
    let cache = tempfile::tempdir().unwrap();
    let c = client(&config(&url, Some("VSDATA_TEST_OPENAI_KEY")), &cache);
    let r = c.chat(&request("q"), "arm", 0).await.unwrap();
    assert_eq!(
        (r.content.as_str(), r.usage.prompt_tokens, r.usage.completion_tokens, r.cached),
        ("first", 11, 7, false)
    );
    let again = c.chat(&request("q"), "arm", 0).await.unwrap();
    assert_eq!((again.content.as_str(), again.cached), ("first", true));
    assert_eq!(mock.requests(), 1, "a cached call sends nothing");
    // A new client over the same cache (a rerun) sends nothing either.
    let rerun = client(&config(&url, Some("VSDATA_TEST_OPENAI_KEY")), &cache);
    assert!(rerun.chat(&request("q"), "arm", 0).await.unwrap().cached);
    // Another call index of the same request is another sample.
    assert_eq!(c.chat(&request("q"), "arm", 1).await.unwrap().content, "second");
    assert_eq!(mock.requests(), 2);
    assert_eq!(mock.exchanges()[0].request.authorization.as_deref(), Some("Bearer sk-test-123"));
    for f in files(cache.path()) {
        assert!(
            !std::fs::read_to_string(&f).unwrap().contains("sk-test-123"),
            "{} holds the key",
            f.display()
        );
    }
}

#[tokio::test]
async fn rate_limits_honour_retry_after_and_server_errors_back_off() {
    let (mock, url) = serve(vec![Reply::Status(429, Some("1")), Reply::Ok("after 429")]).await;
    let cache = tempfile::tempdir().unwrap();
    let start = Instant::now();
    let r = client(&config(&url, None), &cache).chat(&request("q"), "arm", 0).await.unwrap();
    assert_eq!(r.content, "after 429");
    assert!(start.elapsed() >= Duration::from_secs(1), "waited {:?}", start.elapsed());
    assert_eq!(mock.requests(), 2);

    let (mock, url) =
        serve(vec![Reply::Status(500, None), Reply::Status(503, None), Reply::Garbage, Reply::Ok("ok")])
            .await;
    let r = client(&config(&url, None), &tempfile::tempdir().unwrap())
        .chat(&request("q"), "arm", 0)
        .await
        .unwrap();
    assert_eq!(r.content, "ok");
    assert_eq!(mock.requests(), 4);
}

#[tokio::test]
async fn client_errors_are_not_retried_and_retries_run_out() {
    let (mock, url) = serve(vec![Reply::Status(400, None), Reply::Ok("never")]).await;
    let err = client(&config(&url, None), &tempfile::tempdir().unwrap())
        .chat(&request("q"), "arm", 0)
        .await
        .unwrap_err();
    // A request-specific refusal (not about the request's shape): this call fails, alone.
    assert!(matches!(err, LlmError::Rejected { status: 400, shape: false, .. }), "{err}");
    assert!(!err.is_fatal() && err.to_string().contains("server says no"), "{err}");
    assert_eq!(mock.requests(), 1);

    let (mock, url) = serve(vec![Reply::Status(500, None); 10]).await;
    let mut cfg = config(&url, None);
    cfg.max_retries = 2;
    let err = client(&cfg, &tempfile::tempdir().unwrap()).chat(&request("q"), "arm", 0).await.unwrap_err();
    assert!(matches!(err, LlmError::RetriesExhausted { attempts: 3, .. }), "{err}");
    assert_eq!(mock.requests(), 3);
}

#[tokio::test]
async fn slow_replies_time_out_and_are_retried() {
    let (mock, url) = serve(vec![Reply::SlowOk(2000, "too late"), Reply::Ok("in time")]).await;
    let mut cfg = config(&url, None);
    cfg.timeout_s = 0.3;
    let r = client(&cfg, &tempfile::tempdir().unwrap()).chat(&request("q"), "arm", 0).await.unwrap();
    assert_eq!(r.content, "in time");
    assert_eq!(mock.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrency_is_capped() {
    let (mock, url) = serve(vec![Reply::SlowOk(150, "x"); 6]).await;
    let mut cfg = config(&url, None);
    cfg.max_concurrency = 2;
    let c = Arc::new(client(&cfg, &tempfile::tempdir().unwrap()));
    let start = Instant::now();
    let calls: Vec<_> = (0..6)
        .map(|i| {
            let c = c.clone();
            tokio::spawn(async move { c.chat(&request("q"), "arm", i).await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    // Six 150 ms replies, two at a time: about 450 ms, not 150 (unbounded) or 900 (serial).
    assert!(start.elapsed() >= Duration::from_millis(440), "{:?}", start.elapsed());
    assert_eq!(mock.requests(), 6);
    assert_eq!(mock.max_in_flight(), 2);
}

#[test]
fn a_missing_key_variable_is_named() {
    let cfg = config("http://127.0.0.1:9/v1", Some("VSDATA_TEST_UNSET_VARIABLE"));
    let err = OpenAiClient::new(&resolved("gen", &cfg)).err().unwrap().to_string();
    assert_eq!(
        err,
        "environment variable VSDATA_TEST_UNSET_VARIABLE (named by llm.gen.api_key_env) is not set"
    );
}

#[tokio::test]
async fn refused_keys_and_unknown_models_are_fatal_and_name_the_key_variable_not_the_key() {
    // SAFETY: only this test reads this variable.
    unsafe { std::env::set_var("VSDATA_TEST_REFUSED_KEY", "sk-refused-999") };
    let (mock, url) = serve(vec![Reply::Status(401, None), Reply::Ok("never")]).await;
    let err = client(&config(&url, Some("VSDATA_TEST_REFUSED_KEY")), &tempfile::tempdir().unwrap())
        .chat(&request("q"), "arm", 0)
        .await
        .unwrap_err();
    assert!(err.is_fatal() && matches!(err, LlmError::Unauthorized { status: 401, .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("[llm.test] api_key_env = \"VSDATA_TEST_REFUSED_KEY\""), "{text}");
    assert!(!text.contains("sk-refused-999") && !text.contains("server says no"), "{text}");
    assert_eq!(mock.requests(), 1, "a refused key is not retried");

    let (_, url) = serve(vec![Reply::Status(404, None)]).await;
    let err = client(&config(&url, None), &tempfile::tempdir().unwrap())
        .chat(&request("q"), "arm", 0)
        .await
        .unwrap_err();
    assert!(err.is_fatal(), "{err}");
    assert!(err.to_string().contains("does not serve model `gpt-test` (llm.test.model)"), "{err}");
}

#[tokio::test]
async fn a_call_has_a_total_deadline_and_a_garbled_reply_is_resent_once() {
    // Each attempt times out after 0.3 s and is retried; the deadline (0.8 s) ends the call.
    let (mock, url) = serve(vec![Reply::SlowOk(2000, "late"); 10]).await;
    let mut cfg = config(&url, None);
    (cfg.timeout_s, cfg.deadline_s, cfg.max_retries) = (0.3, 0.8, 50);
    let start = Instant::now();
    let err = client(&cfg, &tempfile::tempdir().unwrap()).chat(&request("q"), "arm", 0).await.unwrap_err();
    assert!(matches!(err, LlmError::Deadline { .. }), "{err}");
    assert!(start.elapsed() < Duration::from_millis(1500), "took {:?}", start.elapsed());
    assert!(mock.requests() <= 3);

    let (mock, url) = serve(vec![Reply::Garbage; 5]).await;
    let err = client(&config(&url, None), &tempfile::tempdir().unwrap())
        .chat(&request("q"), "arm", 0)
        .await
        .unwrap_err();
    assert!(!err.is_fatal() && err.kind() == "bad_reply", "{err}");
    assert_eq!(mock.requests(), 2, "the same bad reply was asked for again and again");
}

#[tokio::test]
async fn the_cache_is_keyed_by_endpoint_and_arm() {
    let (mock, url) = serve(vec![Reply::Ok("a"), Reply::Ok("b"), Reply::Ok("c"), Reply::Ok("d")]).await;
    let cache = tempfile::tempdir().unwrap();
    let cfg = config(&url, None);
    let make = |endpoint: &str, refresh: bool| {
        CallCache::new(cache.path(), endpoint)
            .refreshing(refresh)
            .in_front_of(OpenAiClient::new(&resolved("test", &cfg)).unwrap())
    };
    assert_eq!(make("e1", false).chat(&request("q"), "direct", 0).await.unwrap().content, "a");
    // Another arm, another endpoint: asked, not replayed.
    assert_eq!(make("e1", false).chat(&request("q"), "multi_turn", 0).await.unwrap().content, "b");
    assert_eq!(make("e2", false).chat(&request("q"), "direct", 0).await.unwrap().content, "c");
    let again = make("e1", false).chat(&request("q"), "direct", 0).await.unwrap();
    assert!(again.cached && again.content == "a");
    // --refresh-cache asks again and keeps the fresh reply.
    assert_eq!(make("e1", true).chat(&request("q"), "direct", 0).await.unwrap().content, "d");
    assert_eq!(make("e1", false).chat(&request("q"), "direct", 0).await.unwrap().content, "d");
    assert_eq!(mock.requests(), 4);
}

/// llama-cpp-python's server: `response_format.type` must be `text` or `json_object` (with an
/// optional `schema`); anything else is a pydantic validation error, sent as HTTP 500.
fn llama_cpp_like(request: &testkit::Request) -> testkit::Reply {
    let kind = request.body["response_format"]["type"].as_str();
    if kind.is_some_and(|k| k != "text" && k != "json_object") {
        return testkit::Reply::text(
            500,
            "{\"error\":{\"message\":\"1 validation error for CreateChatCompletionRequest\\nresponse_format.type\\n  Input should be 'text' or 'json_object' [type=literal_error]\",\"type\":\"internal_server_error\"}}",
        );
    }
    testkit::Reply::chat("{\"responses\": []}").usage(1, 1)
}

#[tokio::test]
async fn each_server_gets_the_schema_in_its_dialect_and_a_refused_shape_is_not_retried() {
    let seen = MockServer::chat(llama_cpp_like).await;
    let url = seen.url().to_owned();
    let schema = serde_json::json!({"type": "object", "properties": {"responses": {"type": "array"}}});
    let mut req = request("q");
    req.response_format = Some(
        serde_json::json!({"type": "json_schema", "json_schema": {"name": "r", "schema": schema, "strict": true}}),
    );
    let sent = |cfg: &LlmConfig| {
        let (cfg, req, seen) = (cfg.clone(), req.clone(), seen.clone());
        async move {
            seen.clear();
            let result = client(&cfg, &tempfile::tempdir().unwrap()).chat(&req, "arm", 0).await;
            (result, seen.bodies())
        }
    };

    // OpenAI's shape (the default with json_schema = true): refused once, not retried, fatal,
    // and the error carries what the server said and which key to change.
    let mut cfg = config(&url, None);
    cfg.json_schema = true;
    let (result, bodies) = sent(&cfg).await;
    let err = result.unwrap_err();
    assert_eq!(bodies.len(), 1, "a refused request shape is not retried");
    assert!(err.is_fatal() && err.kind() == "rejected", "{err}");
    let message = err.to_string();
    assert!(
        message.contains("HTTP 500") && message.contains("Input should be 'text' or 'json_object'"),
        "{message}"
    );
    assert!(
        message.contains("llm.test.structured_output") && message.contains("\"json_object\""),
        "{message}"
    );

    // llama.cpp's dialect: accepted, the schema where that server reads it.
    cfg.structured_output = Some(StructuredOutput::JsonObject);
    let (result, bodies) = sent(&cfg).await;
    result.unwrap();
    assert_eq!(bodies[0]["response_format"], serde_json::json!({"type": "json_object", "schema": schema}));

    // vLLM's own parameter, and none at all.
    cfg.structured_output = Some(StructuredOutput::GuidedJson);
    let (result, bodies) = sent(&cfg).await;
    result.unwrap();
    assert_eq!(bodies[0]["guided_json"], schema);
    assert!(bodies[0].get("response_format").is_none());
    cfg.structured_output = Some(StructuredOutput::None);
    let (result, bodies) = sent(&cfg).await;
    result.unwrap();
    assert!(bodies[0].get("response_format").is_none() && bodies[0].get("guided_json").is_none());
}
