//! The pipeline's mock OpenAI-compatible server (a `testkit` server) whose replies are a pure
//! function of the request, so runs are reproducible: generation replies name a question from
//! the request's seed, solvers agree on questions with an even tag and split on the others,
//! benchmark problems are answered with the model asked for. It counts the calls it answers by
//! kind, and can refuse every key (an outage), fail solver calls, or answer slowly (to be killed
//! mid-stage: `mock.server.set_delay`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use serde_json::{Value, json};
use testkit::{MockServer, Reply, Request};

#[derive(Default)]
pub struct State {
    pub generate: AtomicUsize,
    pub solve: AtomicUsize,
    pub evaluate: AtomicUsize,
    /// Answer every call with 401.
    pub refuse: AtomicBool,
    /// Calls answered with 401.
    pub refused: AtomicUsize,
    /// Answer solver calls with HTTP 500 (a transient failure that outlasts the retries).
    pub fail_solve: AtomicBool,
}

/// The counters and switches ([`State`], through `Deref`) and the server.
pub struct Mock {
    state: Arc<State>,
    pub server: MockServer,
}

impl std::ops::Deref for Mock {
    type Target = State;

    fn deref(&self) -> &State {
        &self.state
    }
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

fn reply(mock: &State, request: &Request) -> Reply {
    if mock.refuse.load(Ordering::SeqCst) {
        mock.refused.fetch_add(1, Ordering::SeqCst);
        return Reply::text(401, "{\"error\": \"Incorrect API key provided: sk-te****\"}");
    }
    let body = &request.body;
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
            return Reply::text(500, "overloaded");
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
    Reply::chat(content).finish_reason("stop").usage(30, 15)
}

/// Starts the server on a free loopback port: its state and its `/v1` base URL.
pub async fn serve() -> (Arc<Mock>, String) {
    let state = Arc::new(State::default());
    let server = MockServer::chat({
        let state = state.clone();
        move |request| reply(&state, request)
    })
    .await;
    let url = server.url().to_owned();
    (Arc::new(Mock { state, server }), url)
}
