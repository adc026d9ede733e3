//! The accept loop: HTTP/1 connections up to a limit (one more is answered 503 and closed), a
//! header read timeout on every connection (a client that trickles its headers a byte at a
//! time, or sits idle, is dropped), and a graceful shutdown with a deadline: stop accepting,
//! let in-flight requests finish, close what is still open when the deadline passes.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::routes::{Server, router};

/// How the server stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// Every connection finished within the deadline.
    Drained,
    /// The deadline passed with this many connections still open (they were closed).
    Deadline { open: usize },
}

/// Serves `app` on `listener` until `shutdown` resolves, then drains for at most `grace`.
pub async fn serve(
    listener: TcpListener,
    server: Arc<Server>,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) -> Stopped {
    let limits = server.limits().clone();
    let app = router(Arc::clone(&server));
    let connections = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            server.stats.connections_refused.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(refuse(stream, limits.max_connections));
            continue;
        };
        let connection = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app.clone()));
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("connection closed: {e}");
            }
            drop(permit);
        });
    }
    drop(listener);
    let open = graceful.count();
    tokio::select! {
        () = graceful.shutdown() => Stopped::Drained,
        () = tokio::time::sleep(grace) => Stopped::Deadline { open },
    }
}

/// One connection too many: a 503 with `Retry-After`, then close.
async fn refuse(mut stream: tokio::net::TcpStream, max: usize) {
    let body = format!(
        r#"{{"error":{{"message":"the server has {max} connections open (--max-connections); retry later","type":"server_error"}}}}"#
    );
    let reply = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(reply.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), write).await;
}
