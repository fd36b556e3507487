//! Errors as HTTP answers: RFC 9457 `application/problem+json` on the REST
//! API, the TAXII 2.1 error message on TAXII routes. Each has a stable reason
//! code (docs/protocol.md §11.2) that clients can act on.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The TAXII 2.1 media type.
pub const TAXII: &str = "application/taxii+json;version=2.1";

/// An error answer.
#[derive(Debug, Clone)]
pub struct Problem {
    /// The HTTP status.
    pub status: StatusCode,
    /// A stable reason code, e.g. `token_expired`.
    pub code: &'static str,
    /// What happened, for a person.
    pub detail: String,
    /// The `WWW-Authenticate` challenge of a 401 or 403.
    pub challenge: Option<String>,
    /// Render as a TAXII error message.
    pub taxii: bool,
    /// The `Retry-After` of a 429, in seconds.
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem with `status`, `code` and `detail`.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        Problem { status, code, detail: detail.into(), challenge: None, taxii: false, retry_after: None }
    }

    /// 400: the request itself is malformed.
    pub fn bad_request(code: &'static str, detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::BAD_REQUEST, code, detail)
    }

    /// 422: well-formed, but not a valid message.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_message", detail)
    }

    /// 404.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::NOT_FOUND, "not_found", detail)
    }

    /// 503: a dependency (broker, registry, store) is unavailable; retry.
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Problem::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
    }

    /// The same problem rendered as a TAXII error message.
    pub fn taxii(mut self) -> Self {
        self.taxii = true;
        self
    }

    fn title(&self) -> &'static str {
        self.status.canonical_reason().unwrap_or("Error")
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let (content_type, body) = if self.taxii {
            (
                TAXII,
                json!({
                    "title": self.title(),
                    "description": self.detail,
                    "error_code": self.code,
                    "http_status": self.status.as_u16().to_string(),
                }),
            )
        } else {
            (
                "application/problem+json",
                json!({
                    "type": format!("urn:concord:problem:{}", self.code),
                    "title": self.title(),
                    "status": self.status.as_u16(),
                    "detail": self.detail,
                    "reason": self.code,
                }),
            )
        };
        let mut response = (self.status, [(header::CONTENT_TYPE, content_type)], body.to_string()).into_response();
        if let Some(challenge) = self.challenge.and_then(|c| HeaderValue::from_str(&c).ok()) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, challenge);
        }
        if let Some(seconds) = self.retry_after {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}
