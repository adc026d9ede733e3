//! `pipeline serve` as a real HTTP client sees it: the tiny test model behind the OpenAI API,
//! concurrent requests decoded in shared batches, JSON schemas in each client dialect honoured,
//! wrong requests refused with the status clients expect, and SIGTERM stopping it cleanly.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};
use trainer::model::config::Family;

/// Starts the server on a free port; the child and its base URL (from its first line).
fn start(model: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_pipeline"))
        .args(["serve", "--port", "0", "--max-batch", "8", "--served-model-name", "tiny", "--model"])
        .arg(model)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let url = loop {
        let line = lines.next().expect("the server says where it listens").unwrap();
        if let Some(rest) = line.split(" on ").nth(1).filter(|_| line.starts_with("serving")) {
            break rest.trim().to_owned();
        }
    };
    // Keep draining its log so it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, url)
}

fn ask(content: &str, extra: Value) -> Value {
    let mut body = json!({"model": "tiny", "temperature": 0, "max_tokens": 12, "seed": 1,
                          "messages": [{"role": "user", "content": content}]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn answers_openai_clients_in_batches_and_stops_on_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("tiny");
    common::tiny_student(&model, Family::Llama, 5);
    let (mut child, url) = start(&model);
    let http = reqwest::Client::new();
    let get = |path: &str| http.get(format!("{url}{path}")).send();
    let health = http.get(url.replace("/v1", "/health")).send().await.unwrap();
    assert_eq!(health.text().await.unwrap(), "ok");
    let models: Value = get("/models").await.unwrap().json().await.unwrap();
    assert_eq!(models["data"][0]["id"], "tiny");

    // Eight clients at once: answered, and decoded together (the batch size each reply reports).
    let post = |body: Value| http.post(format!("{url}/chat/completions")).json(&body).send();
    let replies =
        futures_join((0..8).map(|i| post(ask(&format!("Count to {i}."), json!({})))).collect::<Vec<_>>())
            .await;
    let mut largest = 0;
    for r in replies {
        let r = r.unwrap();
        assert_eq!(r.status(), 200);
        largest = largest.max(r.headers()["x-batch-size"].to_str().unwrap().parse::<usize>().unwrap());
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["object"], "chat.completion");
        assert!(v["choices"][0]["message"]["content"].is_string());
        assert!(v["usage"]["completion_tokens"].as_u64().unwrap() <= 12);
    }
    assert!(largest > 1, "concurrent requests were decoded one at a time");

    // A schema, however the client asks for it, constrains the reply: it parses and follows it.
    let schema = json!({"type": "object", "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}},
                        "required": ["answer"], "additionalProperties": false});
    for dialect in [
        json!({"response_format": {"type": "json_schema", "json_schema": {"name": "a", "schema": schema}}}),
        json!({"response_format": {"type": "json_object", "schema": schema}}),
        json!({"guided_json": schema}),
    ] {
        let v: Value = post(ask("Is 7 prime?", dialect.clone())).await.unwrap().json().await.unwrap();
        let content = v["choices"][0]["message"]["content"].as_str().unwrap().to_owned();
        let parsed: Value =
            serde_json::from_str(&content).unwrap_or_else(|e| panic!("{dialect}: {content}: {e}"));
        assert!(parsed["answer"] == "yes" || parsed["answer"] == "no", "{dialect}: {content}");
    }

    // Refusals clients understand: an unknown model is 404, what we cannot do is 400.
    let r = post(json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]})).await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("serves `tiny`"));
    let r = post(ask("hi", json!({"stream": true}))).await.unwrap();
    assert_eq!(r.status(), 400);
    let r = post(json!({"model": "tiny", "messages": []})).await.unwrap();
    assert_eq!(r.status(), 400);

    // SIGTERM: a clean exit, and the port is free again.
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let status = tokio::task::spawn_blocking(move || child.wait().unwrap()).await.unwrap();
    assert!(status.success(), "{status}");
    let addr = url.trim_start_matches("http://").trim_end_matches("/v1");
    std::net::TcpListener::bind(addr).expect("the port is free after the server stops");
}

/// Awaits every future concurrently (all in flight at once), in order.
async fn futures_join<F>(futures: Vec<F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::with_capacity(handles.len());
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}
