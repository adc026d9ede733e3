//! A mock OpenAI-compatible server whose replies are a pure function of the request, so runs
//! are reproducible: generation replies name a question from the request's seed, solvers agree
//! on questions with an even tag and split on the others, benchmark problems are answered with
//! the model asked for. It counts the calls it answers by kind, and can refuse every key (an
//! outage) or answer slowly (to be killed mid-stage).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

#[derive(Default)]
pub struct Mock {
    pub generate: AtomicUsize,
    pub solve: AtomicUsize,
    pub evaluate: AtomicUsize,
    /// Answer every call with 401.
    pub refuse: AtomicBool,
    /// Calls answered with 401.
    pub refused: AtomicUsize,
    /// Answer solver calls with HTTP 500 (a transient failure that outlasts the retries).
    pub fail_solve: AtomicBool,
    /// Milliseconds to wait before each answer.
    pub delay_ms: AtomicU64,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    pub generate: usize,
    pub solve: usize,
    pub evaluate: usize,
}

impl Calls {
    pub fn total(self) -> usize {
        self.generate + self.solve + self.evaluate
    }
}

impl Mock {
    pub fn calls(&self) -> Calls {
        Calls {
            generate: self.generate.load(Ordering::SeqCst),
            solve: self.solve.load(Ordering::SeqCst),
            evaluate: self.evaluate.load(Ordering::SeqCst),
        }
    }

    /// Calls answered since `before`.
    pub fn since(&self, before: Calls) -> Calls {
        let now = self.calls();
        Calls {
            generate: now.generate - before.generate,
            solve: now.solve - before.solve,
            evaluate: now.evaluate - before.evaluate,
        }
    }
}

async fn handler(State(mock): State<Arc<Mock>>, body: String) -> Response {
    let delay = mock.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    if mock.refuse.load(Ordering::SeqCst) {
        mock.refused.fetch_add(1, Ordering::SeqCst);
        return (StatusCode::UNAUTHORIZED, "{\"error\": \"Incorrect API key provided: sk-te****\"}")
            .into_response();
    }
    let body: Value = serde_json::from_str(&body).unwrap();
    let last = body["messages"].as_array().unwrap().last().unwrap()["content"].as_str().unwrap().to_owned();
    // Generation depends on the model asked for (another generator writes other problems).
    let salt: u64 = body["model"].as_str().unwrap().bytes().map(u64::from).sum();
    let seed = body["seed"].as_u64().unwrap();
    let content = if last.contains("Please reason step by step") && !last.contains("Q-") {
        mock.evaluate.fetch_add(1, Ordering::SeqCst);
        // A benchmark problem, evaluated through the endpoint: say which model was asked.
        format!("I am {}. The answer is \\boxed{{1}}.", body["model"].as_str().unwrap())
    } else if last.contains("Please reason step by step") {
        if mock.fail_solve.load(Ordering::SeqCst) {
            return (StatusCode::INTERNAL_SERVER_ERROR, "overloaded").into_response();
        }
        mock.solve.fetch_add(1, Ordering::SeqCst);
        let q: u64 =
            last.split("Q-").nth(1).and_then(|r| r.split('?').next()).and_then(|n| n.parse().ok()).unwrap();
        let answer = if q.is_multiple_of(2) { 7 } else { seed % 5 };
        format!("Adding the parts gives the total. The answer is \\boxed{{{answer}}}.")
    } else if body["messages"][0]["content"].as_str().unwrap().contains("\"responses\" (list of dicts)") {
        mock.generate.fetch_add(1, Ordering::SeqCst);
        // VS: as many items as asked for ("sample N" / "Generate N"), with probabilities.
        let all = body["messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["content"].as_str().unwrap())
            .collect::<Vec<_>>()
            .join(" ");
        let n = ["Randomly sample ", "First, sample ", "Generate "]
            .iter()
            .find_map(|p| {
                all.rsplit(p)
                    .next()
                    .filter(|_| all.contains(p))
                    .and_then(|r| r.split_whitespace().next())
                    .and_then(|n| n.parse::<u64>().ok())
            })
            .unwrap_or(1);
        let items: Vec<Value> = (0..n)
            .map(|i| json!({"text": format!("Question: {}\nDifficulty: AMC", super::question((seed + salt + i * 7) % 1_000_000)), "probability": 0.2}))
            .collect();
        json!({ "responses": items }).to_string()
    } else {
        mock.generate.fetch_add(1, Ordering::SeqCst);
        format!("Question: {}\nDifficulty: AMC", super::question((seed + salt) % 1_000_000))
    };
    axum::Json(json!({
        "choices": [{"message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 30, "completion_tokens": 15}
    }))
    .into_response()
}

/// Starts the server on a free loopback port: its state and its `/v1` base URL.
pub async fn serve() -> (Arc<Mock>, String) {
    let mock = Arc::new(Mock::default());
    let app = axum::Router::new().route("/v1/chat/completions", post(handler)).with_state(mock.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (mock, url)
}
