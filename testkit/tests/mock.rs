//! The mock server answers as configured and records what it was sent.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use testkit::{MockServer, Reply};

fn chat_body(text: &str, seed: u64) -> Value {
    json!({"model": "m", "seed": seed, "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": text}]})
}

async fn post(url: &str, body: &Value, key: Option<&str>) -> reqwest::Response {
    let mut request = reqwest::Client::new().post(format!("{url}/chat/completions")).json(body);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn the_script_comes_first_then_the_responder() {
    let mock = MockServer::builder()
        .script([
            Reply::text(429, "slow down").header("retry-after", "1"),
            Reply::text(200, "{\"choices\": ["),
            Reply::json(json!({"anything": 1})),
        ])
        .chat(|r| {
            Reply::chat(format!("{} #{} seed {:?}", r.message(-1), r.index, r.seed()))
                .usage(3, 4)
                .finish_reason("stop")
        })
        .start()
        .await;
    let first = post(mock.url(), &chat_body("a", 1), Some("sk-1")).await;
    assert_eq!(first.status(), 429);
    assert_eq!(first.headers()["retry-after"], "1");
    assert_eq!(first.text().await.unwrap(), "slow down");
    let second = post(mock.url(), &chat_body("b", 2), None).await;
    assert_eq!((second.status().as_u16(), second.text().await.unwrap()), (200, "{\"choices\": [".to_owned()));
    let third: Value = post(mock.url(), &chat_body("c", 3), None).await.json().await.unwrap();
    assert_eq!(third, json!({"anything": 1}));
    let fourth: Value = post(mock.url(), &chat_body("d", 4), None).await.json().await.unwrap();
    assert_eq!(
        fourth,
        json!({"choices": [{"message": {"role": "assistant", "content": "d #3 seed Some(4)"}, "finish_reason": "stop"}],
               "usage": {"prompt_tokens": 3, "completion_tokens": 4}})
    );

    assert_eq!(mock.requests(), 4);
    let exchanges = mock.exchanges();
    let statuses: Vec<u16> = exchanges.iter().map(|e| e.status).collect();
    assert_eq!(statuses, [429, 200, 200, 200]);
    assert_eq!(exchanges[0].request.authorization.as_deref(), Some("Bearer sk-1"));
    assert_eq!(exchanges[1].request.authorization, None);
    assert_eq!(exchanges[0].request.message(0), "s");
    assert_eq!(mock.bodies()[2], chat_body("c", 3));
    assert_eq!(mock.answered_bodies().len(), 3);
    mock.clear();
    assert!(mock.bodies().is_empty());
    assert_eq!(mock.requests(), 4, "clearing the record keeps the count");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delays_in_flight_and_timestamps() {
    let mock = MockServer::chat(|r| Reply::chat("late").after_ms(if r.index == 0 { 0 } else { 150 })).await;
    let start = Instant::now();
    post(mock.url(), &chat_body("warm", 0), None).await;
    assert_eq!(mock.max_in_flight(), 1);
    let first = mock.first_arrival().unwrap();
    assert!(first >= start);
    let calls: Vec<_> = (1..=3)
        .map(|i| {
            let url = mock.url().to_owned();
            tokio::spawn(async move { post(&url, &chat_body("x", i), None).await.status() })
        })
        .collect();
    for call in calls {
        assert_eq!(call.await.unwrap(), 200);
    }
    assert!(start.elapsed() >= Duration::from_millis(150));
    assert_eq!(mock.max_in_flight(), 3);
    assert_eq!(mock.first_arrival(), Some(first));
    assert!(mock.last_reply().unwrap() >= first + Duration::from_millis(150));

    // A hold before every request: a slow server.
    mock.set_delay(Duration::from_millis(100));
    let start = Instant::now();
    post(mock.url(), &chat_body("held", 9), None).await;
    assert!(start.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn embeddings_have_their_own_route_and_count() {
    let mock = MockServer::builder()
        .embeddings(|r| {
            let texts = r.body["input"].as_array().unwrap();
            Reply::embeddings(texts.iter().map(|t| vec![t.as_str().unwrap().len() as f64, 1.0]))
        })
        .start()
        .await;
    let reply: Value = reqwest::Client::new()
        .post(format!("{}/embeddings", mock.url()))
        .json(&json!({"model": "e", "input": ["ab", "abcd"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        reply,
        json!({"data": [{"index": 0, "embedding": [2.0, 1.0]}, {"index": 1, "embedding": [4.0, 1.0]}]})
    );
    assert_eq!((mock.embedding_requests(), mock.requests()), (1, 0));
    // The default chat reply.
    let reply: Value = post(mock.url(), &chat_body("q", 0), None).await.json().await.unwrap();
    assert_eq!(reply["choices"][0]["message"]["content"], "ok");
}

#[tokio::test]
async fn a_server_without_embeddings_has_no_such_route() {
    let mock = MockServer::builder().start().await;
    let status = reqwest::Client::new()
        .post(format!("{}/embeddings", mock.url()))
        .json(&json!({"input": ["a"]}))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 404);
}
