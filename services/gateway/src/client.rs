//! A small HTTPS client for the gateway, on the same rustls settings: what the
//! tests, the benchmark and `concord` use to talk to it like a partner would
//! (TLS trusting the hub's CA, bearer tokens, SSE). Also mints tokens.

use std::net::SocketAddr;
use std::path::Path;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{HeaderMap, Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use crate::tls::{client_config, TlsError};

/// Why a request did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// TCP failed.
    #[error("connecting to {addr}: {source}")]
    Connect {
        /// Where.
        addr: SocketAddr,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (for example the server's certificate is not trusted).
    #[error("TLS handshake with {addr}: {source}")]
    Handshake {
        /// Where.
        addr: SocketAddr,
        /// What rustls said.
        #[source]
        source: std::io::Error,
    },
    /// HTTP failed.
    #[error("HTTP: {0}")]
    Http(#[from] hyper::Error),
    /// TLS settings.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// A token could not be made.
    #[error("token: {0}")]
    Token(#[from] jsonwebtoken::errors::Error),
}

/// A whole answer.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Bytes,
}

impl Answer {
    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// A header as text ("" if absent).
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
    }
}

/// Connects to one gateway.
#[derive(Clone)]
pub struct GatewayClient {
    addr: SocketAddr,
    connector: TlsConnector,
}

impl GatewayClient {
    /// A client of the gateway at `addr` trusting `ca`, presenting `client` (certificate, key) if given.
    pub fn new(addr: SocketAddr, ca: &Path, client: Option<(&Path, &Path)>) -> Result<Self, ClientError> {
        Ok(GatewayClient { addr, connector: TlsConnector::from(client_config(ca, client)?) })
    }

    /// A new keep-alive connection (TLS handshake included).
    pub async fn connect(&self) -> Result<Connection, ClientError> {
        let tcp = TcpStream::connect(self.addr).await.map_err(|source| ClientError::Connect { addr: self.addr, source })?;
        tcp.set_nodelay(true).ok();
        let name = ServerName::try_from("localhost").expect("a valid DNS name");
        let tls = self.connector.connect(name, tcp).await.map_err(|source| ClientError::Handshake { addr: self.addr, source })?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tls)).await?;
        tokio::spawn(async move {
            connection.await.ok();
        });
        Ok(Connection { sender })
    }

    /// One request on a fresh connection.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ClientError> {
        self.connect().await?.send(method, path, token, headers, body).await
    }

    /// GET `path` with `token`.
    pub async fn get(&self, path: &str, token: &str) -> Result<Answer, ClientError> {
        self.send(Method::GET, path, Some(token), &[], None).await
    }

    /// POST `body` as JSON to `path` with `token`.
    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> Result<Answer, ClientError> {
        self.send(Method::POST, path, Some(token), &[("content-type", "application/json")], Some(body.to_string().into_bytes())).await
    }
}

/// One HTTP/1.1 connection.
pub struct Connection {
    sender: SendRequest<Full<Bytes>>,
}

fn request(method: Method, path: &str, token: Option<&str>, headers: &[(&str, &str)], body: Option<Vec<u8>>) -> Request<Full<Bytes>> {
    let mut request = Request::builder().method(method).uri(path).header("host", "localhost");
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(Full::new(Bytes::from(body.unwrap_or_default()))).expect("a valid request")
}

impl Connection {
    /// Sends a request and reads the whole answer.
    pub async fn send(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<Answer, ClientError> {
        let response = self.open(method, path, token, headers, body).await?;
        let (parts, body) = response.into_parts();
        Ok(Answer { status: parts.status, headers: parts.headers, body: body.collect().await?.to_bytes() })
    }

    /// Sends a request and returns the answer with its body still streaming (SSE).
    pub async fn open(
        &mut self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<hyper::Response<Incoming>, ClientError> {
        self.sender.ready().await?;
        Ok(self.sender.send_request(request(method, path, token, headers, body)).await?)
    }
}

/// One Server-Sent Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    /// `id:`.
    pub id: Option<String>,
    /// `event:`.
    pub event: Option<String>,
    /// `data:` lines joined.
    pub data: String,
}

/// Reads events from a streaming SSE body.
pub struct SseReader {
    body: Incoming,
    buffer: String,
}

impl SseReader {
    /// Reads `response`'s body as an event stream.
    pub fn new(response: hyper::Response<Incoming>) -> Self {
        SseReader { body: response.into_body(), buffer: String::new() }
    }

    /// The next event (comments and keep-alives skipped); `None` when the stream ends.
    pub async fn next(&mut self) -> Result<Option<SseEvent>, ClientError> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut event = SseEvent { id: None, event: None, data: String::new() };
                let mut any = false;
                for line in block.lines() {
                    let (field, value) = line.split_once(':').map_or((line, ""), |(f, v)| (f, v.strip_prefix(' ').unwrap_or(v)));
                    match field {
                        "id" => event.id = Some(value.to_owned()),
                        "event" => event.event = Some(value.to_owned()),
                        "data" => {
                            if any {
                                event.data.push('\n');
                            }
                            event.data.push_str(value);
                            any = true;
                        }
                        _ => {}
                    }
                }
                if any {
                    return Ok(Some(event));
                }
                continue;
            }
            match self.body.frame().await {
                None => return Ok(None),
                Some(frame) => {
                    if let Ok(data) = frame?.into_data() {
                        self.buffer.push_str(&String::from_utf8_lossy(&data));
                    }
                }
            }
        }
    }
}

/// A bearer token: `claims` signed with the Ed25519 key in `pem` (PKCS#8), header `kid`.
pub fn token(pem: &str, kid: &str, claims: &Value) -> Result<String, ClientError> {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
    header.kid = Some(kid.to_owned());
    header.typ = Some("JWT".to_owned());
    Ok(jsonwebtoken::encode(&header, claims, &jsonwebtoken::EncodingKey::from_ed_pem(pem.as_bytes())?)?)
}

/// The usual claims: `agency`, audience, scopes, valid from now for `lifetime_secs`.
pub fn claims(agency: &str, audience: &str, scopes: &[&str], lifetime_secs: i64) -> Value {
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    serde_json::json!({
        "iss": agency,
        "sub": agency,
        "aud": audience,
        "iat": now,
        "nbf": now,
        "exp": now + lifetime_secs,
        "jti": uuid::Uuid::new_v4().to_string(),
        "scope": scopes.join(" "),
    })
}
