//! How much `pipeline serve` takes on at once, and how long it waits for a slow client.

use std::time::Duration;

/// The server's admission limits.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Requests admitted at once (decoding or waiting for a batch); one more is refused with
    /// 429 and `Retry-After`, so a request never waits behind more than this many.
    pub max_queue: usize,
    /// Open connections; one more is answered 503 and closed.
    pub max_connections: usize,
    /// The largest request body, in bytes (413 beyond).
    pub max_body_bytes: usize,
    /// A connection that has not sent a request's headers within this long is closed (idle
    /// keep-alive connections too).
    pub header_timeout: Duration,
    /// A request whose body has not arrived within this long is refused with 408.
    pub body_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_queue: 64,
            max_connections: 256,
            max_body_bytes: 8 << 20,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(30),
        }
    }
}
