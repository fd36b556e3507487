//! The review desk of a holder: the API its staff act through (`concord
//! review`, the consoles) and the escalation of overdue reviews. Reviewed
//! outcomes go through the holder's outbox ([`crate::outbox`]).
//!
//! Every call but `GET /holder` carries `Authorization: Bearer <token>`: a
//! compact EdDSA JWS of type `concord-review+jwt` signed with the staff
//! member's personal key, `kid` = `<holder agency>/<staff id>`, claims
//! [`StaffClaims`]. A token names what it may do (`act`, and for a decision
//! the request, the target and the reason), lives at most
//! `review.max_token_secs`, and is kept with the decision as evidence of who
//! decided.
//!
//! | call | role | |
//! |---|---|---|
//! | `GET /holder` | none | `{"agency": …}`: the audience tokens name |
//! | `GET /reviews[?all=true]` | any | the queue (embargoed requests: approvers only) |
//! | `GET /reviews/{request}/{target}` | any | one review with its decisions |
//! | `POST /reviews/{request}/{target}/approve` | approver | counts once per person |
//! | `POST /reviews/{request}/{target}/reject` | reviewer, approver | needs a reason |
//! | `GET /freezes` | any | the freezes this holder made and where each stands (embargoed: approvers only) |

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use concord_domain::UnixMillis;
use concord_kafka::ConsumerError;
use concord_runtime::identity::Identity;
use concord_runtime::metrics::{Labels, Metrics};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::ledger::{Book, Ledger, LedgerError, Step};
use crate::processor::Wake;
use crate::review::{DecideError, Review, ReviewConfig, Staff, Verdict};

/// The `typ` of a staff token.
pub const STAFF_TOKEN_TYP: &str = "concord-review+jwt";

/// What a staff token states.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffClaims {
    /// The staff id.
    pub iss: String,
    /// The holder agency.
    pub aud: String,
    /// Issued, seconds since the epoch.
    pub iat: i64,
    /// Expires, seconds since the epoch.
    pub exp: i64,
    /// `list`, `show`, `approve` or `reject`.
    pub act: String,
    /// The request decided on (approve, reject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub req: Option<String>,
    /// The target decided on (approve, reject).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tgt: Option<String>,
    /// The reason given (reject; optional for approve).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

impl StaffClaims {
    /// The claims of staff member `iss` at holder `aud` for `act` (on a
    /// (request, target), with a reason), issued at `now_s` for `ttl_s` seconds.
    pub fn new(iss: &str, aud: &str, act: &str, on: Option<(&str, &str)>, why: Option<&str>, now_s: i64, ttl_s: i64) -> Self {
        StaffClaims {
            iss: iss.to_owned(),
            aud: aud.to_owned(),
            iat: now_s,
            exp: now_s + ttl_s,
            act: act.to_owned(),
            req: on.map(|(r, _)| r.to_owned()),
            tgt: on.map(|(_, t)| t.to_owned()),
            why: why.map(str::to_owned),
        }
    }
}

/// Why the desk did not start.
#[derive(Debug, thiserror::Error)]
pub enum DeskError {
    /// A staff key could not be read or is not an Ed25519 public key.
    #[error("review.staff {staff:?}: {why}")]
    Key {
        /// The staff id.
        staff: String,
        /// What is wrong.
        why: String,
    },
    /// The listener could not bind.
    #[error("review.listen {listen}: {source}")]
    Bind {
        /// The address.
        listen: String,
        /// What the OS said.
        #[source]
        source: std::io::Error,
    },
    /// Kafka failed.
    #[error(transparent)]
    Kafka(#[from] ConsumerError),
    /// The outbox stopped.
    #[error(transparent)]
    Outbox(#[from] crate::outbox::OutboxError),
    /// The store failed.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
}

/// The staff, with their verification keys.
#[derive(Clone)]
pub struct StaffKeys {
    agency: String,
    max_token_secs: i64,
    staff: HashMap<String, (Staff, String)>,
}

/// Why a staff token is refused (401 or 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// No usable bearer token.
    #[error("{0}")]
    Malformed(String),
    /// Not a member of this holder's staff.
    #[error("{0} is not on the staff of this holder")]
    Unknown(String),
    /// The signature, the audience or the times do not hold.
    #[error("{0}")]
    Invalid(String),
}

impl StaffKeys {
    /// The staff of `config`, keys read, for holder `agency`.
    pub fn load(agency: &str, config: &ReviewConfig) -> Result<Self, DeskError> {
        let mut staff = HashMap::new();
        for s in &config.staff {
            let error = |why: String| DeskError::Key { staff: s.id.clone(), why };
            let key = match (&s.public_key, &s.public_key_file) {
                (Some(key), _) => key.trim().to_owned(),
                (None, Some(file)) => {
                    std::fs::read_to_string(file).map_err(|e| error(format!("{}: {e}", file.display())))?.trim().to_owned()
                }
                (None, None) => return Err(error("no public key".into())),
            };
            if concord_protocol::unb64(&key).is_none_or(|k| k.len() != 32) {
                return Err(error(format!("{key:?} is not a base64url Ed25519 public key (32 bytes)")));
            }
            staff.insert(s.id.clone(), (s.clone(), key));
        }
        Ok(StaffKeys { agency: agency.to_owned(), max_token_secs: config.max_token_secs as i64, staff })
    }

    /// The member of the staff `token` is signed by, and its claims, at `now_s`.
    pub fn verify(&self, token: &str, now_s: i64) -> Result<(Staff, StaffClaims), TokenError> {
        let (header, _) = concord_protocol::jose::parse_compact(token).map_err(|e| TokenError::Malformed(e.to_string()))?;
        if header.typ.as_deref() != Some(STAFF_TOKEN_TYP) {
            return Err(TokenError::Malformed(format!("typ is {:?}, expected {STAFF_TOKEN_TYP:?}", header.typ)));
        }
        if header.alg != "EdDSA" {
            return Err(TokenError::Malformed(format!("alg is {:?}, expected EdDSA", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| TokenError::Malformed("the JOSE header has no kid".into()))?;
        let id = kid.strip_prefix(&format!("{}/", self.agency)).ok_or_else(|| TokenError::Unknown(kid.clone()))?;
        let (staff, key) = self.staff.get(id).ok_or_else(|| TokenError::Unknown(id.to_owned()))?;
        let decoding = DecodingKey::from_ed_components(key).map_err(|e| TokenError::Invalid(e.to_string()))?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_audience(&[&self.agency]);
        validation.set_required_spec_claims(&["exp", "iat", "aud", "iss"]);
        validation.validate_exp = false; // against `now_s`, below
        let claims: StaffClaims =
            jsonwebtoken::decode(token, &decoding, &validation).map_err(|e| TokenError::Invalid(format!("{id}: {e}")))?.claims;
        if claims.iss != staff.id {
            return Err(TokenError::Invalid(format!("signed by {} but claims to be {}", staff.id, claims.iss)));
        }
        if claims.exp <= now_s {
            return Err(TokenError::Invalid("the token has expired".into()));
        }
        if claims.iat > now_s + 30 {
            return Err(TokenError::Invalid("the token is issued in the future".into()));
        }
        if claims.exp - claims.iat > self.max_token_secs {
            return Err(TokenError::Invalid(format!(
                "the token lives {} s; this holder allows {} s",
                claims.exp - claims.iat,
                self.max_token_secs
            )));
        }
        Ok((staff.clone(), claims))
    }
}

/// The review desk of a holder over its ledger.
pub struct Desk<B> {
    config: ReviewConfig,
    keys: StaffKeys,
    ledger: Arc<Mutex<Ledger<B>>>,
    wake: Wake,
    metrics: DeskMetrics,
}

#[derive(Clone, Default)]
struct DeskMetrics {
    open: Gauge,
    overdue: Gauge,
    escalated: Counter,
    decisions: Family<Labels, Counter>,
}

struct Shared<B> {
    keys: StaffKeys,
    ledger: Arc<Mutex<Ledger<B>>>,
    wake: Wake,
    share: f64,
    metrics: DeskMetrics,
}

impl<B: Book> Desk<B> {
    /// The desk of `identity` as `config` says, on `ledger`, waking the
    /// holder's background tasks through `wake` when a decision sets something going.
    pub fn new(identity: &Identity, config: &ReviewConfig, ledger: Arc<Mutex<Ledger<B>>>, wake: Wake) -> Result<Self, DeskError> {
        let keys = StaffKeys::load(identity.agency.id.as_str(), config)?;
        Ok(Desk { config: config.clone(), keys, ledger, wake, metrics: DeskMetrics::default() })
    }

    /// Registers the desk's metrics in `metrics`.
    pub fn with_metrics(mut self, metrics: &Metrics) -> Self {
        let gauge = |name: &str, help: &str| metrics.gauge(name, help);
        self.metrics = DeskMetrics {
            open: gauge("concord_reviews_open", "Targets waiting for review"),
            overdue: gauge("concord_reviews_overdue", "Open reviews past their escalation point (review.escalate_after of the deadline)"),
            escalated: metrics.counter("concord_reviews_escalated", "Reviews escalated as overdue, once each"),
            decisions: metrics.counters("concord_review_decisions", "Staff decisions taken, by verdict"),
        };
        self
    }

    /// Serves the API and escalates until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), DeskError> {
        let listener = tokio::net::TcpListener::bind(&self.config.listen)
            .await
            .map_err(|source| DeskError::Bind { listen: self.config.listen.clone(), source })?;
        info!(listen = %self.config.listen, staff = self.keys.staff.len(), "Review desk listening.");
        let shared = Arc::new(Shared {
            keys: self.keys.clone(),
            ledger: Arc::clone(&self.ledger),
            wake: self.wake.clone(),
            share: self.config.escalate_after,
            metrics: self.metrics.clone(),
        });
        let app = router(shared);
        let stop = shutdown.clone();
        let server = async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(stop.cancelled_owned())
                .await
                .map_err(|source| DeskError::Bind { listen: "review listener".into(), source })
        };
        let escalation = Escalation { ledger: Arc::clone(&self.ledger), share: self.config.escalate_after, metrics: self.metrics.clone() };
        // Escalation runs on its own clock, whatever the outbox and the confirmer do.
        concord_runtime::shutdown::together::<_, _, DeskError>(&shutdown, server, escalation.run(shutdown.clone())).await
    }
}

/// Marks overdue reviews escalated, once a second, whatever the outbox does.
struct Escalation<B> {
    ledger: Arc<Mutex<Ledger<B>>>,
    share: f64,
    metrics: DeskMetrics,
}

impl<B: Book> Escalation<B> {
    async fn run(self, shutdown: CancellationToken) -> Result<(), DeskError> {
        while !shutdown.is_cancelled() {
            self.once(UnixMillis::now().0)?;
            tokio::select! {
                () = shutdown.cancelled() => {}
                () = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        Ok(())
    }

    fn once(&self, now: i64) -> Result<(), DeskError> {
        let mut ledger = self.ledger.lock().expect("ledger lock is never poisoned");
        for review in ledger.escalate(self.share, now)? {
            warn!(request_id = %review.request_id, target_id = %review.target_id, requester = %review.requester, rule = %review.rule,
                deadline = review.request.deadline.0, approvals = review.approvers().len(), needed = review.approvals_needed,
                "Review overdue: escalated.");
            self.metrics.escalated.inc();
        }
        let (open, overdue) = ledger.open_reviews()?;
        self.metrics.open.set(open);
        self.metrics.overdue.set(overdue);
        Ok(())
    }
}

/// One review as the API shows it.
#[derive(Serialize)]
struct ReviewView<'a> {
    #[serde(flatten)]
    review: &'a Review,
    approvals: usize,
    due_at: i64,
    overdue: bool,
}

fn view(review: &Review, share: f64, now_ms: i64) -> ReviewView<'_> {
    let due_at = review.due_at(share);
    let overdue = review.state == crate::review::ReviewState::Pending && (review.escalated_at.is_some() || due_at <= now_ms);
    ReviewView { review, approvals: review.approvers().len(), due_at, overdue }
}

fn problem(status: StatusCode, detail: impl std::fmt::Display) -> Response {
    (status, Json(serde_json::json!({ "status": status.as_u16(), "detail": detail.to_string() }))).into_response()
}

fn router<B: Book>(shared: Arc<Shared<B>>) -> Router {
    Router::new()
        .route("/holder", get(holder::<B>))
        .route("/reviews", get(list::<B>))
        .route("/reviews/{request}/{target}", get(show::<B>))
        .route("/reviews/{request}/{target}/{verdict}", post(decide::<B>))
        .route("/freezes", get(freezes::<B>))
        .with_state(shared)
}

/// Why a call is refused: its status and the detail.
type Refused = (StatusCode, String);

/// The staff member a call is made by, when its token allows `act` on `on`.
fn caller<B>(shared: &Shared<B>, headers: &HeaderMap, act: &str, on: Option<(&str, &str)>) -> Result<(Staff, StaffClaims), Refused> {
    let token =
        headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer ")).ok_or_else(
            || (StatusCode::UNAUTHORIZED, "Authorization: Bearer <staff token> is required (concord review signs one)".to_owned()),
        )?;
    let (staff, claims) =
        shared.keys.verify(token.trim(), UnixMillis::now().0 / 1000).map_err(|e| (StatusCode::UNAUTHORIZED, e.to_string()))?;
    let scoped = claims.act == act && on.is_none_or(|(r, t)| claims.req.as_deref() == Some(r) && claims.tgt.as_deref() == Some(t));
    if !scoped {
        let asked = on.map(|(r, t)| format!("{act} {r}/{t}")).unwrap_or(act.to_owned());
        let scope = format!("the token does not allow this call: it allows {} {:?}/{:?}, not {asked}", claims.act, claims.req, claims.tgt);
        return Err((StatusCode::FORBIDDEN, scope));
    }
    Ok((staff, claims))
}

async fn holder<B: Book>(State(shared): State<Arc<Shared<B>>>) -> Response {
    Json(serde_json::json!({ "agency": shared.keys.agency })).into_response()
}

#[derive(Deserialize)]
struct ListQuery {
    #[serde(default)]
    all: bool,
}

async fn list<B: Book>(State(shared): State<Arc<Shared<B>>>, headers: HeaderMap, Query(q): Query<ListQuery>) -> Response {
    let (staff, _) = match caller(&shared, &headers, "list", None) {
        Ok(c) => c,
        Err((status, detail)) => return problem(status, detail),
    };
    let reviews = match shared.ledger.lock().expect("ledger lock").reviews(q.all) {
        Ok(r) => r,
        Err(e) => return problem(StatusCode::SERVICE_UNAVAILABLE, e),
    };
    let now = UnixMillis::now().0;
    let visible: Vec<ReviewView<'_>> = reviews.iter().filter(|r| staff.may_see(r)).map(|r| view(r, shared.share, now)).collect();
    Json(visible).into_response()
}

/// The freezes this holder made, the latest first, with their lifecycle
/// (released, seized, confirmed, due for revalidation). Approvers only: the
/// list does not say which requests were under embargo.
async fn freezes<B: Book>(State(shared): State<Arc<Shared<B>>>, headers: HeaderMap) -> Response {
    let (staff, _) = match caller(&shared, &headers, "freezes", None) {
        Ok(c) => c,
        Err((status, detail)) => return problem(status, detail),
    };
    if !staff.is(crate::review::StaffRole::Approver) {
        return problem(StatusCode::FORBIDDEN, format!("{} may not list freezes (approvers only)", staff.id));
    }
    match shared.ledger.lock().expect("ledger lock").freezes(1000) {
        Ok(freezes) => Json(freezes).into_response(),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn show<B: Book>(
    State(shared): State<Arc<Shared<B>>>,
    headers: HeaderMap,
    Path((request, target)): Path<(String, String)>,
) -> Response {
    let (staff, _) = match caller(&shared, &headers, "show", None) {
        Ok(c) => c,
        Err((status, detail)) => return problem(status, detail),
    };
    let review = shared.ledger.lock().expect("ledger lock").review(&request, &target);
    match review {
        Ok(Some(review)) if staff.may_see(&review) => Json(view(&review, shared.share, UnixMillis::now().0)).into_response(),
        Ok(_) => problem(StatusCode::NOT_FOUND, format!("no review of target {target} of request {request}")),
        Err(e) => problem(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

async fn decide<B: Book>(
    State(shared): State<Arc<Shared<B>>>,
    headers: HeaderMap,
    Path((request, target, verdict)): Path<(String, String, String)>,
) -> Response {
    let verdict = match verdict.as_str() {
        "approve" => Verdict::Approve,
        "reject" => Verdict::Reject,
        other => return problem(StatusCode::NOT_FOUND, format!("{other:?} is not a verdict (approve, reject)")),
    };
    let (staff, claims) = match caller(&shared, &headers, verdict.as_str(), Some((&request, &target))) {
        Ok(c) => c,
        Err((status, detail)) => return problem(status, detail),
    };
    let token = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let token = token.trim_start_matches("Bearer ").trim();
    let taken = shared.ledger.lock().expect("ledger lock").decide(
        (&request, &target),
        &staff,
        (verdict, claims.why.as_deref()),
        token,
        UnixMillis::now().0,
    );
    match taken {
        Ok(taken) => {
            shared.metrics.decisions.get_or_create(&vec![("verdict".to_owned(), verdict.as_str().to_owned())]).inc();
            match &taken.executed {
                // Decided and committed with the book's change; the outcome is not published yet.
                Some(Step::Done(_)) => {
                    concord_runtime::failpoint::hit("review-decided");
                    shared.wake.outbox.notify_one();
                }
                // Decided; carried out by the confirmer.
                Some(Step::Deferred(_)) => shared.wake.intents.notify_one(),
                None => {}
            }
            info!(request_id = %request, target_id = %target, reviewer = %staff.id, verdict = verdict.as_str(), counted = taken.counted,
                state = ?taken.review.state, "Review decision taken.");
            let now = UnixMillis::now().0;
            let outcome = taken.executed.as_ref().map(|step| match step {
                Step::Done(e) => serde_json::json!({ "status": e.outcome.status.as_str(), "reason": e.outcome.reason }),
                Step::Deferred(q) => serde_json::json!({ "status": "PENDING", "reason": q.awaiting }),
            });
            Json(serde_json::json!({ "counted": taken.counted, "outcome": outcome, "review": view(&taken.review, shared.share, now) }))
                .into_response()
        }
        Err(e @ DecideError::NotFound { .. }) => problem(StatusCode::NOT_FOUND, e),
        Err(e @ DecideError::Forbidden { .. }) => problem(StatusCode::FORBIDDEN, e),
        Err(e @ (DecideError::NoReason | DecideError::Closed(_))) => problem(StatusCode::CONFLICT, e),
        Err(e @ DecideError::Ledger(_)) => problem(StatusCode::SERVICE_UNAVAILABLE, e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::review::StaffRole;
    use concord_protocol::{Signer, SigningKey};

    fn keys() -> (StaffKeys, Signer) {
        let key = SigningKey::from_seed("issuer-usdx".parse().unwrap(), "issuer-usdx/ana.ruiz", &[7; 32]).unwrap();
        let public = concord_protocol::b64(&key.public_key());
        let config = ReviewConfig {
            listen: "127.0.0.1:0".into(),
            escalate_after: 0.5,
            max_token_secs: 300,
            staff: vec![Staff {
                id: "ana.ruiz".into(),
                name: "Ana Ruiz".into(),
                roles: vec![StaffRole::Approver],
                public_key: Some(public),
                public_key_file: None,
            }],
        };
        (StaffKeys::load("issuer-usdx", &config).unwrap(), Signer::new(key, Duration::from_secs(300)))
    }

    fn claims(iss: &str, aud: &str, iat: i64, exp: i64) -> StaffClaims {
        StaffClaims::new(iss, aud, "list", None, None, iat, exp - iat)
    }

    #[test]
    fn a_staff_token_is_checked_for_its_signer_audience_and_times() {
        let (keys, signer) = keys();
        let now = 1_000_000;
        let good = signer.sign_json(STAFF_TOKEN_TYP, &claims("ana.ruiz", "issuer-usdx", now, now + 60));
        let (staff, c) = keys.verify(&good, now).unwrap();
        assert_eq!((staff.id.as_str(), c.act.as_str()), ("ana.ruiz", "list"));
        let refused = |token: &str, at: i64| keys.verify(token, at).unwrap_err().to_string();
        assert!(refused(&good, now + 60).contains("expired"));
        assert!(
            refused(&signer.sign_json(STAFF_TOKEN_TYP, &claims("ana.ruiz", "exchange-x", now, now + 60)), now).contains("InvalidAudience")
        );
        assert!(refused(&signer.sign_json(STAFF_TOKEN_TYP, &claims("ben", "issuer-usdx", now, now + 60)), now).contains("claims to be ben"));
        assert!(
            refused(&signer.sign_json(STAFF_TOKEN_TYP, &claims("ana.ruiz", "issuer-usdx", now, now + 3_600)), now).contains("allows 300 s")
        );
        assert!(
            refused(&signer.sign_json(STAFF_TOKEN_TYP, &claims("ana.ruiz", "issuer-usdx", now + 60, now + 120)), now).contains("future")
        );
        assert!(refused(&signer.sign_json("JWT", &claims("ana.ruiz", "issuer-usdx", now, now + 60)), now).contains("typ"));
        // Another key under Ana's kid: the signature fails.
        let thief = SigningKey::from_seed("issuer-usdx".parse().unwrap(), "issuer-usdx/ana.ruiz", &[8; 32]).unwrap();
        let forged =
            Signer::new(thief, Duration::from_secs(300)).sign_json(STAFF_TOKEN_TYP, &claims("ana.ruiz", "issuer-usdx", now, now + 60));
        assert!(refused(&forged, now).contains("InvalidSignature"), "{}", refused(&forged, now));
        // A kid of another holder, or of nobody on the staff.
        let other = SigningKey::from_seed("exchange-x".parse().unwrap(), "exchange-x/ana.ruiz", &[7; 32]).unwrap();
        let token =
            Signer::new(other, Duration::from_secs(300)).sign_json(STAFF_TOKEN_TYP, &claims("ana.ruiz", "issuer-usdx", now, now + 60));
        assert!(matches!(keys.verify(&token, now), Err(TokenError::Unknown(_))));
    }
}
