//! What the server has done, for `GET /metrics` (Prometheus' text format): requests by
//! outcome, the queue's depth and its high-water mark, connections refused, and the engine's
//! batches, tokens and cancelled rows. Counters only ever grow.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::local::EngineStats;

/// The outcomes a request can have, as the `outcome` label says them.
#[derive(Debug, Clone, Copy)]
pub enum Outcome {
    Ok,
    /// 400: the request's own fault.
    Invalid,
    /// 404: a model this server does not serve.
    UnknownModel,
    /// 408: the body did not arrive in time.
    BodyTimeout,
    /// 413: the body is over the limit.
    TooLarge,
    /// 429: the queue was full.
    QueueFull,
    /// 5xx: the engine failed.
    Failed,
    /// The client hung up before its reply.
    Cancelled,
}

const OUTCOMES: [(&str, Outcome); 8] = [
    ("ok", Outcome::Ok),
    ("invalid", Outcome::Invalid),
    ("unknown_model", Outcome::UnknownModel),
    ("body_timeout", Outcome::BodyTimeout),
    ("too_large", Outcome::TooLarge),
    ("queue_full", Outcome::QueueFull),
    ("failed", Outcome::Failed),
    ("cancelled", Outcome::Cancelled),
];

#[derive(Default)]
pub struct Stats {
    outcomes: [AtomicU64; OUTCOMES.len()],
    /// Requests admitted now, and the most ever admitted at once.
    pub queued: AtomicU64,
    pub queued_max: AtomicU64,
    pub connections_refused: AtomicU64,
}

impl Stats {
    pub fn count(&self, outcome: Outcome) {
        self.outcomes[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// One more request admitted.
    pub fn enter(&self) {
        let now = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        self.queued_max.fetch_max(now, Ordering::Relaxed);
    }

    pub fn leave(&self) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
    }

    pub fn render(&self, engine: &EngineStats) -> String {
        let mut out = String::new();
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        out.push_str("# TYPE pipeline_serve_requests_total counter\n");
        for (i, (name, _)) in OUTCOMES.iter().enumerate() {
            let _ = writeln!(
                out,
                "pipeline_serve_requests_total{{outcome=\"{name}\"}} {}",
                load(&self.outcomes[i])
            );
        }
        let mut line = |name: &str, kind: &str, v: u64| {
            let _ = writeln!(out, "# TYPE {name} {kind}\n{name} {v}");
        };
        line("pipeline_serve_queue_depth", "gauge", load(&self.queued));
        line("pipeline_serve_queue_depth_max", "gauge", load(&self.queued_max));
        line("pipeline_serve_connections_refused_total", "counter", load(&self.connections_refused));
        line("pipeline_serve_admissions_total", "counter", load(&engine.batches));
        line("pipeline_serve_steps_total", "counter", load(&engine.steps));
        line("pipeline_serve_row_steps_total", "counter", load(&engine.row_steps));
        line("pipeline_serve_generated_tokens_total", "counter", load(&engine.generated_tokens));
        line("pipeline_serve_cancelled_rows_total", "counter", load(&engine.cancelled));
        line("pipeline_serve_batched_rows_total", "counter", load(&engine.rows));
        line("pipeline_serve_prompt_tokens_total", "counter", load(&engine.prompt_tokens));
        line("pipeline_serve_reused_prompt_tokens_total", "counter", load(&engine.reused_prompt_tokens));
        line("pipeline_serve_busy_microseconds_total", "counter", load(&engine.busy_us));
        line("pipeline_serve_mask_microseconds_total", "counter", load(&engine.mask_us));
        line("pipeline_serve_prefill_microseconds_total", "counter", load(&engine.prefill_us));
        line("pipeline_serve_forward_microseconds_total", "counter", load(&engine.forward_us));
        line("pipeline_serve_sample_microseconds_total", "counter", load(&engine.sample_us));
        line("pipeline_serve_reshape_microseconds_total", "counter", load(&engine.reshape_us));
        line("pipeline_serve_prefilled_positions_total", "counter", load(&engine.prefilled_positions));
        out
    }
}
