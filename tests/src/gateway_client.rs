//! An HTTPS client of the partner gateway, as a partner's tool would be: the
//! one HTTP client of the project (reqwest), on rustls with the gateway's own
//! client settings (the hub's CA, a client certificate when asked, ring).
//! Every request goes on a fresh connection unless it streams (SSE), so a test
//! of connection limits sees the connections it makes.

use std::net::SocketAddr;
use std::path::Path;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A whole answer.
#[derive(Debug)]
pub struct Answer {
    /// Status.
    pub status: StatusCode,
    /// Headers.
    pub headers: HeaderMap,
    /// Body.
    pub body: Vec<u8>,
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

/// Talks to one gateway.
#[derive(Clone)]
pub struct GatewayClient {
    base: String,
    http: reqwest::Client,
}

impl GatewayClient {
    /// A client of the gateway at `addr` trusting `ca`, presenting `client` (certificate, key) if given.
    pub fn new(addr: SocketAddr, ca: &Path, client: Option<(&Path, &Path)>) -> anyhow::Result<Self> {
        Self::build(addr, ca, client, 0)
    }

    /// The same, keeping connections alive between requests (a partner's
    /// long-running tool; the bench's publishers).
    pub fn keeping_alive(addr: SocketAddr, ca: &Path) -> anyhow::Result<Self> {
        Self::build(addr, ca, None, usize::MAX)
    }

    fn build(addr: SocketAddr, ca: &Path, client: Option<(&Path, &Path)>, idle: usize) -> anyhow::Result<Self> {
        concord_protocol::ensure_crypto_provider();
        let tls = concord_gateway::tls::client_config(ca, client)?;
        let http = reqwest::Client::builder()
            .use_preconfigured_tls((*tls).clone())
            .resolve("localhost", addr)
            .pool_max_idle_per_host(idle)
            .build()?;
        Ok(GatewayClient { base: format!("https://localhost:{}", addr.port()), http })
    }

    fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> reqwest::RequestBuilder {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        match body {
            Some(body) => request.body(body),
            None => request,
        }
    }

    /// One request, and its whole answer.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> anyhow::Result<Answer> {
        let response = self.request(method, path, token, headers, body).send().await?;
        let (status, headers) = (response.status(), response.headers().clone());
        Ok(Answer { status, headers, body: response.bytes().await?.to_vec() })
    }

    /// GET `path` with `token`.
    pub async fn get(&self, path: &str, token: &str) -> anyhow::Result<Answer> {
        self.send(Method::GET, path, Some(token), &[], None).await
    }

    /// POST `body` as JSON to `path` with `token`.
    pub async fn post_json(&self, path: &str, token: &str, body: &Value) -> anyhow::Result<Answer> {
        self.send(Method::POST, path, Some(token), &[("content-type", "application/json")], Some(body.to_string().into_bytes())).await
    }

    /// GET `path` as an event stream: its status and headers, and its events as they come.
    pub async fn stream(&self, path: &str, token: &str, headers: &[(&str, &str)]) -> anyhow::Result<SseReader> {
        let response = self.request(Method::GET, path, Some(token), headers, None).send().await?;
        Ok(SseReader { status: response.status(), headers: response.headers().clone(), response, buffer: String::new() })
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
    /// The answer's status.
    pub status: StatusCode,
    /// The answer's headers.
    pub headers: HeaderMap,
    response: reqwest::Response,
    buffer: String,
}

impl SseReader {
    /// The next event (comments and keep-alives skipped); `None` when the stream ends.
    pub async fn next(&mut self) -> anyhow::Result<Option<SseEvent>> {
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
            match self.response.chunk().await? {
                None => return Ok(None),
                Some(data) => self.buffer.push_str(&String::from_utf8_lossy(&data)),
            }
        }
    }
}
