//! HTTPS with rustls on the `ring` provider: the server's TLS settings from PEM
//! files, optional client certificates checked against a CA, and the accept
//! loop that hands each TLS connection to the router.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::TokioIo;
use hyper_util::service::TowerToHyperService;
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_LIMIT: Duration = Duration::from_secs(10);
/// How long open connections get to finish when the gateway stops.
const DRAIN_LIMIT: Duration = Duration::from_secs(10);

/// Why TLS could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{path}: {detail}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// rustls refused the configuration (key does not match, unsupported key, ...).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
    /// The client certificate verifier could not be built.
    #[error("client certificate verifier: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certificates(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = |detail: String| TlsError::Pem { path: path.to_owned(), detail };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem(e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(e.to_string()))?;
    if certs.is_empty() {
        return Err(pem("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| TlsError::Pem { path: path.to_owned(), detail: e.to_string() })
}

fn roots(ca: &Path) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(ca)? {
        roots.add(cert).map_err(|e| TlsError::Pem { path: ca.to_owned(), detail: format!("not a usable CA certificate: {e}") })?;
    }
    Ok(roots)
}

/// The server's TLS settings: its certificate and key, and — with `client_ca` —
/// client certificates verified against that CA, required or optional.
pub fn server_config(
    certificate: &Path,
    key: &Path,
    client_ca: Option<&Path>,
    require_client: bool,
) -> Result<Arc<ServerConfig>, TlsError> {
    let builder = ServerConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?;
    let builder = match client_ca {
        None => builder.with_no_client_auth(),
        Some(ca) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots(ca)?), provider());
            let verifier = if require_client { verifier } else { verifier.allow_unauthenticated() };
            builder.with_client_cert_verifier(verifier.build()?)
        }
    };
    let mut config = builder.with_single_cert(certificates(certificate)?, private_key(key)?)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// A client's TLS settings trusting `ca`, presenting `client` (certificate, key) if given.
pub fn client_config(ca: &Path, client: Option<(&Path, &Path)>) -> Result<Arc<ClientConfig>, TlsError> {
    let builder = ClientConfig::builder_with_provider(provider()).with_safe_default_protocol_versions()?.with_root_certificates(roots(ca)?);
    let mut config = match client {
        None => builder.with_no_client_auth(),
        Some((cert, key)) => builder.with_client_auth_cert(certificates(cert)?, private_key(key)?)?,
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// How many connections at once and how long one may sit without a request.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    /// Connections served at once; the next waits in the listen backlog.
    pub max: usize,
    /// A connection with no request under way (handshake, headers, keep-alive) is closed after this.
    pub idle: Duration,
}

/// Accepts TLS connections on `listener` and serves `app` on each until
/// `shutdown`; then lets open requests finish (bounded) and returns. At most
/// `limits.max` connections are served at once: the next is not accepted
/// until one closes. A connection idle for `limits.idle` is closed.
pub async fn serve(listener: TcpListener, tls: Arc<ServerConfig>, app: Router, limits: ConnectionLimits, shutdown: CancellationToken) {
    let acceptor = TlsAcceptor::from(tls);
    let mut connections = JoinSet::new();
    let slots = Arc::new(tokio::sync::Semaphore::new(limits.max));
    loop {
        let slot = tokio::select! {
            () = shutdown.cancelled() => break,
            slot = Arc::clone(&slots).acquire_owned() => slot.expect("the semaphore is never closed"),
        };
        let (tcp, peer): (_, SocketAddr) = tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    warn!(error = %e, "Accepting a connection failed.");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let (acceptor, app, shutdown) = (acceptor.clone(), app.clone(), shutdown.clone());
        connections.spawn(async move {
            let _slot = slot; // held while the connection lives
            let stream = match tokio::time::timeout(HANDSHAKE_LIMIT.min(limits.idle), acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => return debug!(%peer, error = %e, "TLS handshake refused."),
                Err(_) => return debug!(%peer, "TLS handshake timed out."),
            };
            let connection = hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                // Also bounds the wait for the next request on a kept-alive connection.
                .header_read_timeout(limits.idle)
                .serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(e) = result {
                        debug!(%peer, error = %e, "Connection ended with an error.");
                    }
                }
                () = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await.ok();
                }
            }
        });
        while connections.try_join_next().is_some() {}
    }
    if tokio::time::timeout(DRAIN_LIMIT, async { while connections.join_next().await.is_some() {} }).await.is_err() {
        warn!("Connections still open after the drain limit; closing them.");
    }
}
