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

/// Runs two parts of a service side by side (`background` on a task of its
/// own) until both end. When either fails, `shutdown` is cancelled so the other
/// stops too and the process exits for its supervisor to restart it.
pub async fn together<A, B, E>(
    shutdown: &CancellationToken,
    background: impl std::future::Future<Output = Result<(), A>> + Send + 'static,
    foreground: impl std::future::Future<Output = Result<(), B>>,
) -> Result<(), E>
where
    A: Send + 'static,
    E: From<A> + From<B>,
{
    let token = shutdown.clone();
    let background = tokio::spawn(async move {
        let result = background.await;
        if result.is_err() {
            token.cancel();
        }
        result
    });
    let foreground = foreground.await;
    if foreground.is_err() {
        shutdown.cancel();
    }
    let background = background.await.expect("a part of a service does not panic");
    foreground?;
    background?;
    Ok(())
}
