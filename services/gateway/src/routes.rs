//! The REST part: publish an alert or a freeze request, read the agency's
//! events as a page or as a Server-Sent Events stream resumable with
//! `Last-Event-ID`, and the OpenAPI document (`services/gateway/openapi.yaml`).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use concord_domain::{Message, Tlp};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::auth::{scope, Caller};
use crate::problem::Problem;
use crate::store::{Store, StoredEvent};
use crate::{validate, AppState};

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
        Err(Problem::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", format!("Content-Type {content_type:?}; send application/json")))
    }
}

/// `?to=AGENCY,AGENCY`: an alert for these recipients only (their restricted-alert topics).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Recipients {
    #[serde(default)]
    to: Option<String>,
}

async fn post_alert(State(state): State<AppState>, Query(recipients): Query<Recipients>, headers: HeaderMap, body: Bytes) -> Result<Response, Problem> {
    let caller = state.caller(&headers, scope::ALERTS_PUBLISH)?;
    json_body(&headers)?;
    let alert = validate::alert(&body)?;
    let key = alert.indicators[0].value.clone();
    let names: Vec<&str> = recipients.to.as_deref().unwrap_or_default().split(',').map(str::trim).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        let topic = state.topics.alerts();
        state.topics.alert_placement(&topic, &alert).map_err(|why| Problem::invalid(format!("{why}; name them with ?to=AGENCY,…")))?;
        return state.publish_once(&caller, &topic, key.as_bytes(), &alert, &alert.alert_id).await;
    }
    let mut recipients = Vec::new();
    for name in names {
        let agency = state.directory.agency(name).ok_or_else(|| Problem::invalid(format!("?to: no agency {name:?} in the directory")))?;
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
    body: Bytes,
) -> Result<Response, Problem> {
    let caller = state.caller(&headers, scope::FREEZE_REQUEST)?;
    json_body(&headers)?;
    let recipient = state.directory.agency(&recipient).ok_or_else(|| Problem::not_found(format!("no agency {recipient:?} in the directory")))?;
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
        Ok(caller)
    }

    /// Publishes `message` (named `message_id`) for the caller to `topic`, once:
    /// a retried POST of the same id gets the first receipt back (200), a new
    /// one is published and acknowledged by the brokers (202).
    async fn publish_once<M: Message>(&self, caller: &Caller, topic: &str, key: &[u8], message: &M, message_id: &str) -> Result<Response, Problem> {
        let agency = &caller.agency;
        self.topics
            .may_publish(topic, agency, M::TYPE, &self.directory)
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
    tokio::task::spawn_blocking(work)
        .await
        .expect("a store call does not panic")
        .map_err(|e| Problem::unavailable(e.to_string()))
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

async fn events(State(state): State<AppState>, headers: HeaderMap, query: Result<Query<PageQuery>, axum::extract::rejection::QueryRejection>) -> Result<Response, Problem> {
    let caller = state.caller(&headers, scope::INBOX_READ)?;
    let Query(query) = query.map_err(|e| Problem::bad_request("bad_query", e.body_text()))?;
    let limit = query.limit.unwrap_or(100).clamp(1, state.page_limit);
    let after = query.after.unwrap_or(0);
    let (store, agency, tlp) = (state.store.clone(), caller.agency.id.to_string(), state.max_tlp(&caller));
    let mut page = blocking(move || store.events_for(&agency, tlp, after, limit + 1)).await?;
    let more = page.len() > limit;
    page.truncate(limit);
    let next_after = page.last().map_or(after, |e| e.seq);
    Ok(Json(json!({"events": page, "next_after": next_after, "more": more})).into_response())
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
}

impl Follow {
    /// The next event after `after`, waiting for one; `None` at shutdown or on a store failure.
    async fn next(&mut self) -> Option<StoredEvent> {
        loop {
            if self.shutdown.is_cancelled() {
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
            match blocking(move || store.events_for(&agency, tlp, after, 200)).await {
                Ok(page) if !page.is_empty() => self.buffer.extend(page),
                Ok(_) => tokio::select! {
                    () = self.shutdown.cancelled() => return None,
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
        Some(v) => v
            .to_str()
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
            .ok_or_else(|| Problem::bad_request("bad_last_event_id", "Last-Event-ID must be the id of an event this gateway sent (an integer)"))?,
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
    };
    let events = futures::stream::unfold(follow, |mut follow| async move {
        let event = follow.next().await?;
        Some((Ok(sse_event(&event)), follow))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}
