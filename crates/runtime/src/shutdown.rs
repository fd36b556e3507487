//! The shutdown tree: one root cancellation token, cancelled by SIGINT or
//! SIGTERM; every long-running task watches it (or a child of it).

use tokio_util::sync::CancellationToken;
use tracing::info;

/// A root token cancelled on the first SIGINT or SIGTERM.
pub fn on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let child = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler only fails outside a Tokio runtime");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => info!("SIGINT: shutting down."),
            _ = term.recv() => info!("SIGTERM: shutting down."),
        }
        child.cancel();
    });
    token
}
