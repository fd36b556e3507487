//! The REST part: publish an alert or a freeze request, read the agency's
//! events as a page or as a Server-Sent Events stream resumable with
//! `Last-Event-ID`, and the OpenAPI document (`services/gateway/openapi.yaml`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use concord_domain::{Message, Tlp, Valid};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::auth::{scope, Caller};
use crate::problem::Problem;
use crate::state::AppState;
use crate::store::{Store, StoredEvent};
use crate::validate;

/// The OpenAPI 3.1 document of these routes.
pub const OPENAPI: &str = include_str!("../openapi.yaml");

/// Every REST route (method, path), as the OpenAPI document lists them.
pub const ROUTES: [(&str, &str); 5] = [
    ("post", "/v1/alerts"),
    ("post", "/v1/freeze-requests/{recipient}"),
    ("get", "/v1/events"),
    ("get", "/v1/events/stream"),
    ("get", "/openapi.yaml"),
];

/// The REST routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route(ROUTES[0].1, post(post_alert))
        .route(ROUTES[1].1, post(post_freeze_request))
        .route(ROUTES[2].1, get(events))
        .route(ROUTES[3].1, get(stream))
        .route(ROUTES[4].1, get(|| async { ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI) }))
}

fn json_body(headers: &HeaderMap) -> Result<(), Problem> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json")) {
        Ok(())
    } else {
        Err(Problem::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            format!("Content-Type {content_type:?}; send application/json"),
        ))
    }
}

/// `?to=AGENCY,AGENCY`: an alert for these recipients only (their restricted-alert topics).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Recipients {
    #[serde(default)]
    to: Option<String>,
}

/// The request body, read only now — after the token and scope were checked —
/// and only up to `max_body_bytes` (413 above, without reading the rest) within
/// `body_timeout_ms` (408 after).
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> Result<Bytes, Problem> {
    let limit = state.limits.max_body_bytes;
    let too_large = || Problem::new(StatusCode::PAYLOAD_TOO_LARGE, "body_too_large", format!("the body is larger than {limit} bytes"));
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let timeout = Duration::from_millis(state.limits.body_timeout_ms);
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Err(_) => Err(Problem::new(StatusCode::REQUEST_TIMEOUT, "body_timeout", format!("the body did not arrive within {timeout:?}"))),
        Ok(Err(e)) if std::error::Error::source(&e).is_some_and(|s| s.is::<http_body_util::LengthLimitError>()) => Err(too_large()),
        Ok(Err(e)) => Err(Problem::bad_request("bad_body", format!("reading the body: {e}"))),
        Ok(Ok(bytes)) => Ok(bytes),
    }
}

async fn post_alert(
    State(state): State<AppState>,
    Query(recipients): Query<Recipients>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let caller = state.caller(&headers, scope::ALERTS_PUBLISH)?;
    json_body(&headers)?;
    let body = read_body(&state, &headers, body).await?;
    let alert = validate::alert(&body)?;
    let key = alert.record_key().to_owned();
    let names: Vec<&str> = recipients.to.as_deref().unwrap_or_default().split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        let topic = state.topics.alerts();
        state.topics.alert_placement(&topic, &alert).map_err(|why| Problem::invalid(format!("{why}; name them with ?to=AGENCY,…")))?;
        return state.publish_once(&caller, &topic, key.as_bytes(), &alert, &alert.alert_id).await;
    }
    let mut recipients = Vec::new();
    let directory = state.directory.current();
    for name in names {
        let agency = directory.agency(name).ok_or_else(|| Problem::invalid(format!("?to: no agency {name:?} in the directory")))?;
        if !recipients.contains(&agency.id) {
            recipients.push(agency.id.clone());
        }
    }
    // One copy per recipient, each signed for the recipient's topic and published once.
    let mut answer = None;
    for (id, topic) in recipients.iter().zip(state.topics.alert_destinations(&recipients)) {
        answer = Some(state.publish_once(&caller, &topic, key.as_bytes(), &alert, &format!("{} to {id}", alert.alert_id)).await?);
    }
    Ok(answer.expect("at least one recipient"))
}

async fn post_freeze_request(
    State(state): State<AppState>,
    Path(recipient): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, Problem> {
    let caller = state.caller(&headers, scope::FREEZE_REQUEST)?;
    json_body(&headers)?;
    let body = read_body(&state, &headers, body).await?;
    let directory = state.directory.current();
    let recipient = directory.agency(&recipient).ok_or_else(|| Problem::not_found(format!("no agency {recipient:?} in the directory")))?;
    let request = validate::freeze_request(&body)?;
    let topic = state.topics.inbox(&recipient.id);
    state.publish_once(&caller, &topic, request.request_id.as_bytes(), &request, &request.request_id).await
}

impl AppState {
    /// The authenticated caller, if its token grants `scope`.
    pub fn caller(&self, headers: &HeaderMap, scope: &str) -> Result<Caller, Problem> {
        let caller = self.auth.authenticate(headers, time::OffsetDateTime::now_utc()).map_err(|e| {
            self.metrics.refused.get_or_create(&vec![("reason".to_owned(), e.code().to_owned())]).inc();
            Problem::from(e)
        })?;
        caller.require(scope).inspect_err(|_| {
            self.metrics.refused.get_or_create(&vec![("reason".to_owned(), "insufficient_scope".to_owned())]).inc();
        })?;
        if let Err(wait) = self.rates.take(&caller.agency.id, std::time::Instant::now()) {
            self.metrics.refused.get_or_create(&vec![("reason".to_owned(), "rate_limited".to_owned())]).inc();
            let mut problem = Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "{} made more than {} requests/s (burst {}); retry after {wait:?}",
                    caller.agency.id, self.limits.requests_per_sec, self.limits.burst
                ),
            );
            problem.retry_after = Some(wait.as_secs_f64().ceil().max(1.0) as u64);
            return Err(problem);
        }
        Ok(caller)
    }

    /// Publishes `message` (named `message_id`) for the caller to `topic`, once:
    /// a retried POST of the same id gets the first receipt back (200), a new
    /// one is published and acknowledged by the brokers (202).
    async fn publish_once<M: Message>(
        &self,
        caller: &Caller,
        topic: &str,
        key: &[u8],
        message: &Valid<M>,
        message_id: &str,
    ) -> Result<Response, Problem> {
        let agency = &caller.agency;
        self.topics
            .may_publish(topic, agency, M::TYPE, &self.directory.current())
            .map_err(|why| Problem::new(StatusCode::FORBIDDEN, "role_not_allowed", format!("{} ({}): {why}", agency.id, agency.role)))?;
        let store = self.store.clone();
        let (id, ty) = (message_id.to_owned(), M::TYPE);
        let owner = agency.id.to_string();
        let earlier = blocking(move || store.receipt(&owner, ty, &id)).await?;
        if let Some(receipt) = earlier {
            return Ok((StatusCode::OK, Json(json!({"duplicate": true, "receipt": receipt, "message": message}))).into_response());
        }
        let receipt = self.publisher.publish(&agency.id, topic, key, message).await?;
        self.metrics.published.get_or_create(&vec![("type".to_owned(), M::TYPE.short_name().to_owned())]).inc();
        let (store, id, owner, kept) = (self.store.clone(), message_id.to_owned(), agency.id.to_string(), receipt.clone());
        blocking(move || store.record_receipt(&owner, ty, &id, &kept)).await?;
        tracing::debug!(agency = %agency.id, message_type = M::TYPE.short_name(), %message_id, event_id = %receipt.event_id, %topic, "Published for an agency over HTTPS.");
        Ok((StatusCode::ACCEPTED, Json(json!({"duplicate": false, "receipt": receipt, "message": message}))).into_response())
    }

    fn max_tlp(&self, caller: &Caller) -> Tlp {
        self.tlp.max_for(caller.agency.id.as_str())
    }
}

/// Runs a store call off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, Problem> {
    tokio::task::spawn_blocking(work).await.expect("a store call does not panic").map_err(|e| Problem::unavailable(e.to_string()))
}

/// A page read from the store, once one of the `pages` permits is free: so
/// many requests at once wait their turn instead of all holding a page.
pub(crate) async fn paged<T: Send + 'static>(
    pages: &tokio::sync::Semaphore,
    work: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, Problem> {
    let _permit = pages.acquire().await.expect("the semaphore is never closed");
    blocking(work).await
}

/// Like [`paged`], but the permit is returned with the page, to be held until
/// the answer is written ([`held`]).
pub(crate) async fn paged_held<T: Send + 'static>(
    pages: &std::sync::Arc<tokio::sync::Semaphore>,
    work: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<(tokio::sync::OwnedSemaphorePermit, T), Problem> {
    let permit = std::sync::Arc::clone(pages).acquire_owned().await.expect("the semaphore is never closed");
    Ok((permit, blocking(work).await?))
}

/// An answer of `content_type` whose bytes go out in 64 KiB chunks while
/// `permit` is held: a page counts against `concurrent_pages` until the client
/// has taken it, so slow readers cannot make the gateway hold many pages.
pub(crate) fn held(permit: tokio::sync::OwnedSemaphorePermit, status: StatusCode, content_type: &'static str, bytes: Vec<u8>) -> Response {
    const CHUNK: usize = 64 * 1024;
    let bytes = Bytes::from(bytes);
    let chunks: Vec<Bytes> = (0..bytes.len()).step_by(CHUNK).map(|i| bytes.slice(i..(i + CHUNK).min(bytes.len()))).collect();
    let body = futures::stream::unfold((chunks.into_iter(), permit), |(mut chunks, permit)| async move {
        chunks.next().map(|c| (Ok::<_, Infallible>(c), (chunks, permit)))
    });
    (status, [(header::CONTENT_TYPE, content_type)], Body::from_stream(body)).into_response()
}

/// `after` and `limit` of a page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PageQuery {
    #[serde(default)]
    after: Option<i64>,
    #[serde(default)]
    limit: Option<usize>,
}

async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, Problem> {
    let caller = state.caller(&headers, scope::INBOX_READ)?;
    let Query(query) = query.map_err(|e| Problem::bad_request("bad_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(100).clamp(1, state.page_limit);
    let after = query.after.unwrap_or(0);
    let (store, agency, tlp) = (state.store.clone(), caller.agency.id.to_string(), state.max_tlp(&caller));
    let (permit, mut page) = paged_held(&state.pages, move || store.events_for(&agency, tlp, after, limit + 1)).await?;
    let more = page.len() > limit;
    page.truncate(limit);
    let next_after = page.last().map_or(after, |e| e.seq);
    let body = serde_json::to_vec(&json!({"events": page, "next_after": next_after, "more": more})).expect("a page serializes");
    drop(page);
    Ok(held(permit, StatusCode::OK, "application/json", body))
}

/// What the SSE stream of one agency needs between events.
struct Follow {
    store: Store,
    agency: String,
    tlp: Tlp,
    after: i64,
    buffer: VecDeque<StoredEvent>,
    latest: watch::Receiver<i64>,
    shutdown: CancellationToken,
    pages: std::sync::Arc<tokio::sync::Semaphore>,
    /// The caller's token expires then (seconds since the epoch): the stream ends.
    expires_at: i64,
}

impl Follow {
    /// The next event after `after`, waiting for one; `None` at shutdown, when
    /// the caller's token expires, or on a store failure.
    async fn next(&mut self) -> Option<StoredEvent> {
        let expiry = time::OffsetDateTime::from_unix_timestamp(self.expires_at).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
        let left = Duration::try_from(expiry - time::OffsetDateTime::now_utc()).unwrap_or(Duration::ZERO);
        let deadline = tokio::time::Instant::now() + left;
        loop {
            if self.shutdown.is_cancelled() || tokio::time::Instant::now() >= deadline {
                return None;
            }
            if let Some(event) = self.buffer.pop_front() {
                self.after = event.seq;
                return Some(event);
            }
            // Mark the newest seq as seen *before* reading, so an event stored
            // after the read wakes the wait below.
            self.latest.borrow_and_update();
            let (store, agency, tlp, after) = (self.store.clone(), self.agency.clone(), self.tlp, self.after);
            match paged(&self.pages, move || store.events_for(&agency, tlp, after, 200)).await {
                Ok(page) if !page.is_empty() => self.buffer.extend(page),
                Ok(_) => tokio::select! {
                    () = self.shutdown.cancelled() => return None,
                    () = tokio::time::sleep_until(deadline) => return None,
                    changed = self.latest.changed() => changed.ok()?,
                },
                Err(problem) => {
                    tracing::warn!(detail = %problem.detail, "SSE stream ended: the store failed.");
                    return None;
                }
            }
        }
    }
}

fn sse_event(event: &StoredEvent) -> Event {
    Event::default()
        .id(event.seq.to_string())
        .event(event.message_type.clone())
        .data(serde_json::to_string(event).expect("an event serializes"))
}

async fn stream(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, Problem> {
    let caller = state.caller(&headers, scope::INBOX_READ)?;
    let Query(query) = query.map_err(|e| Problem::bad_request("bad_query", e.body_text()))?;
    let after = match headers.get("last-event-id") {
        Some(v) => v.to_str().ok().and_then(|s| s.trim().parse::<i64>().ok()).ok_or_else(|| {
            Problem::bad_request("bad_last_event_id", "Last-Event-ID must be the id of an event this gateway sent (an integer)")
        })?,
        None => query.after.unwrap_or(0),
    };
    state.metrics.streams.inc();
    let follow = Follow {
        store: state.store.clone(),
        agency: caller.agency.id.to_string(),
        tlp: state.max_tlp(&caller),
        after,
        buffer: VecDeque::new(),
        latest: state.latest.clone(),
        shutdown: state.shutdown.clone(),
        pages: std::sync::Arc::clone(&state.pages),
        expires_at: caller.expires_at,
    };
    let events = futures::stream::unfold(follow, |mut follow| async move {
        let event = follow.next().await?;
        Some((Ok(sse_event(&event)), follow))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
