//! TAXII 2.1, read-only: discovery, one API root, and per agency one
//! collection per TLP level it may read (plus the definitions collection),
//! each with objects (filters `added_after`, `match[type]`, `match[id]`,
//! `match[version]`, `match[spec_version]`, pagination by `limit` and `next`),
//! an object by id, its versions, and the manifest. Every answer is
//! `application/taxii+json;version=2.1`; errors are TAXII error messages,
//! a write to a collection included (403: every collection is read-only).
//! `date_added` grows strictly with every object stored, so a client that
//! polls with `added_after` = the last `X-TAXII-Date-Added-Last` misses nothing.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use concord_domain::Tlp;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::auth::{scope, Caller};
use crate::problem::{Problem, TAXII};
use crate::routes::paged;
use crate::state::AppState;
use crate::stix;
use crate::store::AlertFilter;

/// The API root's path segment.
pub const API_ROOT: &str = "concord";

const TLPS: [Tlp; 5] = [Tlp::Clear, Tlp::Green, Tlp::Amber, Tlp::AmberStrict, Tlp::Red];

/// The TAXII routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/taxii2/", get(discovery))
        .route("/taxii2/concord/", get(api_root))
        .route("/taxii2/concord/collections/", get(collections))
        .route("/taxii2/concord/collections/{id}/", get(collection))
        .route("/taxii2/concord/collections/{id}/objects/", get(objects).post(read_only).delete(read_only))
        .route("/taxii2/concord/collections/{id}/objects/{object_id}/", get(object).delete(read_only))
        .route("/taxii2/concord/collections/{id}/objects/{object_id}/versions/", get(versions))
        .route("/taxii2/concord/collections/{id}/manifest/", get(manifest))
}

/// What a collection holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Holds {
    Alerts(Tlp),
    Definitions,
}

fn collection_id(holds: Holds) -> String {
    let name = match holds {
        Holds::Alerts(tlp) => format!("concord:collection:{}", stix::tlp_name(tlp)),
        Holds::Definitions => "concord:collection:definitions".to_owned(),
    };
    Uuid::new_v5(&Uuid::NAMESPACE_URL, name.as_bytes()).to_string()
}

fn visible(state: &AppState, caller: &Caller) -> Vec<Holds> {
    let max = state.tlp.max_for(caller.agency.id.as_str());
    std::iter::once(Holds::Definitions).chain(TLPS.into_iter().filter(|t| *t <= max).map(Holds::Alerts)).collect()
}

fn describe(holds: Holds) -> Value {
    let (title, description) = match holds {
        Holds::Alerts(tlp) => (
            format!("Concord alerts {}", stix::tlp_name(tlp)),
            format!("IndicatorAlerts marked {} as STIX 2.1 indicators, in the order the hub received them.", stix::tlp_name(tlp)),
        ),
        Holds::Definitions => (
            "Concord definitions".to_owned(),
            "The identities of the agencies and the extension definitions (new SCO types, alert properties) the indicators use.".to_owned(),
        ),
    };
    json!({
        "id": collection_id(holds),
        "title": title,
        "description": description,
        "can_read": true,
        "can_write": false,
        "media_types": [stix::STIX],
    })
}

fn taxii(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, TAXII)], body.to_string()).into_response()
}

/// The caller, if it may read TAXII and accepts the TAXII media type.
fn reader(state: &AppState, headers: &HeaderMap) -> Result<Caller, Problem> {
    let caller = state.caller(headers, scope::ALERTS_READ).map_err(Problem::taxii)?;
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).unwrap_or("*/*");
    let acceptable = accept.split(',').any(|range| {
        let media = range.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        let version_ok = !range.contains("version=") || range.replace(' ', "").contains("version=2.1");
        matches!(media.as_str(), "*/*" | "application/*" | "application/taxii+json") && version_ok
    });
    if !acceptable {
        return Err(
            Problem::new(StatusCode::NOT_ACCEPTABLE, "not_acceptable", format!("Accept {accept:?}; this server answers {TAXII}")).taxii()
        );
    }
    Ok(caller)
}

async fn discovery(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    reader(&state, &headers)?;
    let root = format!("{}/taxii2/{API_ROOT}/", state.public_url.trim_end_matches('/'));
    Ok(taxii(
        StatusCode::OK,
        json!({
            "title": "Concord partner gateway",
            "description": "Indicator alerts of the Concord hub as STIX 2.1, read-only.",
            "default": root,
            "api_roots": [root],
        }),
    ))
}

async fn api_root(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    reader(&state, &headers)?;
    Ok(taxii(
        StatusCode::OK,
        json!({
            "title": "Concord",
            "description": "Alerts by TLP, one collection per level the caller may read.",
            "versions": [TAXII],
            "max_content_length": 0,
        }),
    ))
}

async fn collections(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    let caller = reader(&state, &headers)?;
    let list: Vec<Value> = visible(&state, &caller).into_iter().map(describe).collect();
    Ok(taxii(StatusCode::OK, json!({ "collections": list })))
}

fn find(state: &AppState, caller: &Caller, id: &str) -> Result<Holds, Problem> {
    visible(state, caller)
        .into_iter()
        .find(|h| collection_id(*h) == id)
        .ok_or_else(|| Problem::not_found(format!("no collection {id:?} that this agency may read")).taxii())
}

async fn collection(State(state): State<AppState>, headers: HeaderMap, Path(id): Path<String>) -> Result<Response, Problem> {
    let caller = reader(&state, &headers)?;
    Ok(taxii(StatusCode::OK, describe(find(&state, &caller, &id)?)))
}

/// The filters of an objects or manifest request.
struct Filters {
    added_after_ms: Option<i64>,
    limit: usize,
    next: i64,
    types: Option<Vec<String>>,
    ids: Option<Vec<String>>,
    versions: Option<Vec<String>>,
    spec_versions: Option<Vec<String>>,
}

fn list(query: &HashMap<String, String>, key: &str) -> Option<Vec<String>> {
    query.get(key).map(|v| v.split(',').map(|s| s.trim().to_owned()).filter(|s| !s.is_empty()).collect())
}

fn filters(state: &AppState, query: &HashMap<String, String>) -> Result<Filters, Problem> {
    let bad = |what: String| Problem::bad_request("bad_filter", what).taxii();
    for key in query.keys() {
        if !matches!(
            key.as_str(),
            "added_after" | "limit" | "next" | "match[type]" | "match[id]" | "match[version]" | "match[spec_version]"
        ) {
            return Err(bad(format!("unknown parameter {key:?}")));
        }
    }
    let added_after_ms = query
        .get("added_after")
        .map(|t| {
            time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339)
                .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
                .map_err(|e| bad(format!("added_after {t:?} is not an RFC 3339 timestamp: {e}")))
        })
        .transpose()?;
    let limit = query
        .get("limit")
        .map(|l| match l.parse::<usize>() {
            Ok(0) | Err(_) => Err(bad(format!("limit {l:?} is not a positive integer"))),
            Ok(n) => Ok(n),
        })
        .transpose()?
        .unwrap_or(state.page_limit)
        .min(state.page_limit);
    let next = query
        .get("next")
        .map(|n| n.parse::<i64>().map_err(|_| bad(format!("next {n:?} was not issued by this server"))))
        .transpose()?
        .unwrap_or(0);
    Ok(Filters {
        added_after_ms,
        limit,
        next,
        types: list(query, "match[type]"),
        ids: list(query, "match[id]"),
        versions: list(query, "match[version]"),
        spec_versions: list(query, "match[spec_version]"),
    })
}

/// One page of objects: (date_added ms, object), whether more follow, the `next` cursor.
struct Page {
    objects: Vec<(i64, Value)>,
    more: bool,
    next: Option<String>,
}

fn keep(filters: &Filters, object: &Value) -> bool {
    let field = |name: &str| object[name].as_str().unwrap_or_default().to_owned();
    let in_list = |list: &Option<Vec<String>>, value: String| list.as_ref().is_none_or(|l| l.contains(&value));
    // Alerts' versions are chosen where both are known (see `page`); every
    // other object has one version, which "first", "last" and "all" match.
    let version_ok =
        filters.versions.as_ref().is_none_or(|v| v.iter().any(|x| matches!(x.as_str(), "first" | "last" | "all") || *x == version(object)));
    in_list(&filters.types, field("type"))
        && in_list(&filters.ids, field("id"))
        && in_list(&filters.spec_versions, field("spec_version"))
        && version_ok
}

async fn page(state: &AppState, holds: Holds, filters: &Filters) -> Result<Page, Problem> {
    match holds {
        Holds::Definitions => {
            let all: Vec<(i64, Value)> = stix::definitions(&state.directory.current())
                .into_iter()
                .filter(|o| keep(filters, o) && filters.added_after_ms.is_none_or(|a| stix::DEFINITIONS_CREATED_MS > a))
                .map(|o| (stix::DEFINITIONS_CREATED_MS, o))
                .collect();
            let start = usize::try_from(filters.next).unwrap_or(0).min(all.len());
            let end = (start + filters.limit).min(all.len());
            let more = end < all.len();
            Ok(Page { objects: all[start..end].to_vec(), more, next: more.then(|| end.to_string()) })
        }
        Holds::Alerts(tlp) => {
            if filters.types.as_ref().is_some_and(|t| !t.iter().any(|x| x == "indicator"))
                || filters.spec_versions.as_ref().is_some_and(|v| !v.iter().any(|x| x == "2.1"))
            {
                return Ok(Page { objects: Vec::new(), more: false, next: None });
            }
            let filter = AlertFilter { added_after_ms: filters.added_after_ms, ids: filters.ids.clone(), after_seq: filters.next };
            let (store, limit) = (state.store.clone(), filters.limit);
            // An alert its publisher withdrew has two versions: the alert as sent
            // (first) and, at the retraction's position, the same indicator revoked (last).
            let mut rows = paged(&state.pages, move || {
                let rows = store.alerts(tlp, &filter, limit + 1)?;
                rows.into_iter()
                    .map(|r| {
                        let version = match r.message_type.as_str() {
                            "AlertRetraction" => match stix::withdrawn_id(&r) {
                                Some(id) => store.withdrawn(&r, &id)?.map_or(Version::Orphan, Version::Revokes),
                                None => Version::Orphan,
                            },
                            _ => Version::Alert { superseded: store.superseded(&r)? },
                        };
                        Ok((r, version))
                    })
                    .collect::<Result<Vec<_>, crate::store::StoreError>>()
            })
            .await
            .map_err(Problem::taxii)?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next = more.then(|| rows.last().map(|(r, _)| r.seq.to_string())).flatten();
            let wants = |which: &str| filters.versions.as_ref().map_or(which == "last", |v| v.iter().any(|x| x == which || x == "all"));
            let objects = rows
                .iter()
                .filter_map(|(r, version)| {
                    let object = match version {
                        Version::Alert { superseded } => {
                            stix::indicator(r).filter(|o| wants("first") || (!superseded && wants("last")) || exact(filters, o))
                        }
                        Version::Revokes(alert) => stix::revoked(alert, r).filter(|o| wants("last") || exact(filters, o)),
                        Version::Orphan => None,
                    }?;
                    Some((r.added_ms, object))
                })
                .filter(|(_, o)| keep(filters, o))
                .collect();
            Ok(Page { objects, more, next })
        }
    }
}

/// Which version of an alert's indicator a stored row is.
enum Version {
    /// The alert as its publisher sent it; `superseded` once withdrawn.
    Alert { superseded: bool },
    /// A retraction: the alert (stored) revoked.
    Revokes(crate::store::StoredEvent),
    /// A retraction of an alert the gateway never stored: nothing to serve.
    Orphan,
}

/// Whether `match[version]` names `object`'s version exactly.
fn exact(filters: &Filters, object: &Value) -> bool {
    filters.versions.as_ref().is_some_and(|v| v.contains(&version(object)))
}

/// An object's version: `modified`, or `created` for an object that is never modified (marking definitions).
fn version(object: &Value) -> String {
    object["modified"].as_str().or(object["created"].as_str()).unwrap_or_default().to_owned()
}

fn with_dates(mut response: Response, page: &Page) -> Response {
    if let (Some(first), Some(last)) = (page.objects.first(), page.objects.last()) {
        for (name, ms) in [("X-TAXII-Date-Added-First", first.0), ("X-TAXII-Date-Added-Last", last.0)] {
            response.headers_mut().insert(name, HeaderValue::from_str(&stix::timestamp(ms)).expect("a timestamp is a header value"));
        }
    }
    response
}

/// The TAXII envelope (or manifest) of `page` holding `entries`, with the date headers.
fn answer(page: &Page, entries: Vec<Value>) -> Response {
    let mut body = json!({ "more": page.more });
    if let Some(next) = &page.next {
        body["next"] = json!(next);
    }
    if !entries.is_empty() {
        body["objects"] = json!(entries);
    }
    with_dates(taxii(StatusCode::OK, body), page)
}

fn objects_of(page: &Page) -> Vec<Value> {
    page.objects.iter().map(|(_, o)| o.clone()).collect()
}

async fn objects(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let caller = reader(&state, &headers)?;
    let holds = find(&state, &caller, &id)?;
    let page = page(&state, holds, &filters(&state, &query)?).await?;
    Ok(answer(&page, objects_of(&page)))
}

/// The page holding object `object_id` of collection `id` (404 when it is not there).
async fn one_object(
    state: &AppState,
    headers: &HeaderMap,
    id: &str,
    object_id: &str,
    query: &HashMap<String, String>,
) -> Result<Page, Problem> {
    let caller = reader(state, headers)?;
    let holds = find(state, &caller, id)?;
    let mut filters = filters(state, query)?;
    filters.ids = Some(vec![object_id.to_owned()]);
    let page = page(state, holds, &filters).await?;
    if page.objects.is_empty() {
        return Err(Problem::not_found(format!("no object {object_id:?} in collection {id}")).taxii());
    }
    Ok(page)
}

async fn object(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, object_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let page = one_object(&state, &headers, &id, &object_id, &query).await?;
    Ok(answer(&page, objects_of(&page)))
}

async fn manifest(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let caller = reader(&state, &headers)?;
    let holds = find(&state, &caller, &id)?;
    let page = page(&state, holds, &filters(&state, &query)?).await?;
    let records = page
        .objects
        .iter()
        .map(|(added, o)| json!({"id": o["id"], "date_added": stix::timestamp(*added), "version": version(o), "media_type": stix::STIX}))
        .collect();
    Ok(answer(&page, records))
}

/// Get Object Versions (TAXII 2.1 §5.8): each object has exactly one version.
async fn versions(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((id, object_id)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, Problem> {
    let page = one_object(&state, &headers, &id, &object_id, &query).await?;
    let body = json!({"more": false, "versions": page.objects.iter().map(|(_, o)| version(o)).collect::<Vec<_>>()});
    Ok(with_dates(taxii(StatusCode::OK, body), &page))
}

/// Every collection is read-only: a write is refused with a TAXII error (403), not an empty 405.
async fn read_only(State(state): State<AppState>, headers: HeaderMap) -> Result<Response, Problem> {
    reader(&state, &headers)?;
    Err(Problem::new(StatusCode::FORBIDDEN, "read_only", "every collection of this server is read-only (can_write is false)").taxii())
}
