//! The HTTP surface: metrics, probes and the on-call list. One router per resource.

pub mod serve;

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use crate::domain::Rules;
use crate::ingest::Readiness;
use crate::metrics::Metrics;
use crate::store::{LateOrder, Store};

/// What the handlers share.
pub struct AppState<S> {
    pub store: S,
    pub metrics: Arc<Metrics>,
    pub readiness: Arc<Readiness>,
    pub rules: Rules,
}

/// An HTTP error; 500s log the cause and answer with generic text.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 503: a dependency is down.
    #[error("{0}")]
    Unavailable(String),
    /// 400: a request the API cannot answer (the message says which parameter and why).
    #[error("{0}")]
    BadRequest(String),
    /// 404: nothing stored by that name (the message says what was looked for).
    #[error("{0}")]
    NotFound(String),
    /// 500: the database failed while answering.
    #[error("internal error")]
    Store(#[from] crate::store::Error),
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Unavailable(why) => (StatusCode::SERVICE_UNAVAILABLE, why).into_response(),
            Error::BadRequest(why) => json_error(StatusCode::BAD_REQUEST, why),
            Error::NotFound(what) => json_error(StatusCode::NOT_FOUND, what),
            Error::Store(e) => {
                tracing::error!(error = %e, "request failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response()
            }
        }
    }
}

/// A client error as the API answers it: `{"error": "…"}`.
fn json_error(status: StatusCode, message: String) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// The whole router.
pub fn router<S: Store + Clone>(state: Arc<AppState<S>>) -> Router {
    Router::new()
        .route("/metrics", get(metrics::<S>))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz::<S>))
        .route("/", get(console))
        .route("/api/dashboard", get(dashboard::<S>))
        .route("/api/late-orders", get(late_orders::<S>))
        .route("/api/service", get(service::<S>))
        .route("/api/open-claims", get(open_claims::<S>))
        .route("/api/orders/{order_id}", get(order::<S>))
        .route("/api/days/{day}/orders", get(day_orders::<S>))
        .route("/api/months/{month}/orders", get(month_orders::<S>))
        .route("/api/restatements", get(restatements::<S>))
        .route("/days/{day}/orders", get(console))
        .route("/months/{month}/orders", get(console))
        .route("/orders/{order_id}", get(console))
        .route(
            "/api/unanswered-negative-reviews",
            get(unanswered_negative_reviews::<S>),
        )
        .with_state(state)
}

async fn metrics<S: Store>(State(state): State<Arc<AppState<S>>>) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

/// The web console: one self-contained page (no CDN, no network), embedded in the binary.
const CONSOLE: &str = include_str!("console.html");

async fn console() -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        CONSOLE,
    )
}

async fn dashboard<S: Store>(
    State(state): State<Arc<AppState<S>>>,
) -> Result<Json<crate::store::Dashboard>, Error> {
    Ok(Json(
        state
            .store
            .dashboard(&state.rules, chrono::Utc::now())
            .await?,
    ))
}

/// How long `/readyz` waits for the database: a probe must get its answer within a second.
pub const READY_PING_TIMEOUT: std::time::Duration = std::time::Duration::from_millis(800);

/// 200 when the database answers within [`READY_PING_TIMEOUT`], a broker answered within
/// `kafka.broker_silence` and the consumer has joined its group; else 503 naming each check
/// that fails. The `perfect_order_ready_check` gauge follows every answer.
async fn readyz<S: Store>(State(state): State<Arc<AppState<S>>>) -> Result<&'static str, Error> {
    let ping = tokio::time::timeout(READY_PING_TIMEOUT, state.store.ping()).await;
    let database = match ping {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("database unreachable: {e}")),
        Err(_) => Err(format!(
            "database unreachable: no answer within {} ms",
            READY_PING_TIMEOUT.as_millis()
        )),
    };
    let checks = state.readiness.checks(database.is_ok(), chrono::Utc::now());
    state
        .metrics
        .record_ready(checks.ready(), &checks.labelled());
    if checks.ready() {
        return Ok("ready\n");
    }
    let mut why = Vec::new();
    if let Err(e) = database {
        why.push(e);
    }
    if !checks.broker {
        why.push(format!(
            "no Kafka broker has answered for kafka.broker_silence = {}",
            humantime::format_duration(state.readiness.broker_silence())
        ));
    }
    if !checks.assignment {
        why.push("no partition assignment received yet from the consumer group".into());
    }
    Err(Error::Unavailable(format!("{}\n", why.join("; "))))
}

#[derive(Deserialize)]
struct LateQuery {
    limit: Option<i64>,
}

#[derive(Serialize)]
struct LateOrders {
    sla_seconds: i64,
    count: usize,
    orders: Vec<LateOrder>,
}

async fn late_orders<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Query(q): Query<LateQuery>,
) -> Result<Json<LateOrders>, Error> {
    let limit = q.limit.unwrap_or(500).clamp(1, 10_000);
    let orders = state
        .store
        .late_orders(&state.rules, chrono::Utc::now(), limit)
        .await?;
    Ok(Json(LateOrders {
        sla_seconds: state.rules.confirmation_sla.num_seconds(),
        count: orders.len(),
        orders,
    }))
}

/// Months of monthly views the console shows.
const SERVICE_MONTHS: u32 = 6;

/// The contract-v2 KPIs for the console: live figures, the last months of every monthly
/// view, and the two lists for people (oldest first, 100 each).
#[derive(Serialize)]
struct Service {
    figures: crate::store::service::ServiceFigures,
    months: crate::store::service::ServiceMonths,
    lists: crate::store::service::ServiceLists,
    review_answer_sla_seconds: i64,
    smiley_min_rating: u8,
    team_size: u32,
}

async fn service<S: Store>(State(state): State<Arc<AppState<S>>>) -> Result<Json<Service>, Error> {
    let now = chrono::Utc::now();
    let month = state.rules.month_of(now);
    let since = month
        .checked_sub_months(chrono::Months::new(SERVICE_MONTHS - 1))
        .unwrap_or(month);
    Ok(Json(Service {
        figures: state.store.service_figures(&state.rules, now).await?,
        months: state.store.service_months(since).await?,
        lists: crate::store::service::ServiceLists {
            open_claims: state.store.open_claims(100).await?,
            unanswered_negative_reviews: state.store.unanswered_negative_reviews(100).await?,
        },
        review_answer_sla_seconds: state.rules.review_answer_sla.num_seconds(),
        smiley_min_rating: state.rules.smiley_min_rating,
        team_size: state.rules.team_size,
    }))
}

/// The filters of a drill-down list.
#[derive(Deserialize)]
struct ListQuery {
    verdict: Option<String>,
    category: Option<String>,
    /// The previous page's `next`.
    after: Option<String>,
    limit: Option<i64>,
}

/// A page of a drill-down list, with the cursor of the next page (`None` on the last).
#[derive(Serialize)]
struct OrderPage {
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    verdict: Option<&'static str>,
    category: Option<&'static str>,
    orders: Vec<crate::store::service::ListedOrder>,
    next: Option<String>,
}

const PAGE: i64 = 100;
const PAGE_MAX: i64 = 1000;

/// The orders a shop-zone day counts (`YYYY-MM-DD`, by delivery day).
async fn day_orders<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    axum::extract::Path(day): axum::extract::Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<OrderPage>, Error> {
    let day = chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d").map_err(|_| {
        Error::BadRequest(format!(
            "the day {day:?} is not a date: write it as YYYY-MM-DD"
        ))
    })?;
    order_page(&state.store, day, day, q).await.map(Json)
}

/// The orders a shop-zone month counts (`YYYY-MM`, by delivery day).
async fn month_orders<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    axum::extract::Path(month): axum::extract::Path<String>,
    Query(q): Query<ListQuery>,
) -> Result<Json<OrderPage>, Error> {
    let first =
        chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d").map_err(|_| {
            Error::BadRequest(format!(
                "the month {month:?} is not a month: write it as YYYY-MM"
            ))
        })?;
    let last = first
        .checked_add_months(chrono::Months::new(1))
        .and_then(|next| next.pred_opt())
        .unwrap_or(first);
    order_page(&state.store, first, last, q).await.map(Json)
}

async fn order_page<S: Store>(
    store: &S,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    q: ListQuery,
) -> Result<OrderPage, Error> {
    use crate::domain::{Category, Verdict};
    let verdict = match q.verdict.as_deref() {
        None | Some("") | Some("all") => None,
        Some("perfect") => Some(Verdict::Perfect),
        Some("imperfect") => Some(Verdict::Imperfect),
        Some(other) => {
            return Err(Error::BadRequest(format!(
                "verdict={other:?}: a day's or a month's orders are perfect or imperfect \
                 (leave it out for both)"
            )))
        }
    };
    let category = match q.category.as_deref() {
        None | Some("") => None,
        Some(name) => Some(
            Category::ALL
                .into_iter()
                .find(|c| c.as_str() == name)
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "category={name:?}: one of quality, completeness, delivery, service"
                    ))
                })?,
        ),
    };
    let after = match q.after.as_deref() {
        None | Some("") => None,
        Some(cursor) => Some(
            cursor
                .split_once('/')
                .and_then(|(day, id)| {
                    let day = chrono::NaiveDate::parse_from_str(day, "%Y-%m-%d").ok()?;
                    Some((day, id.to_owned()))
                })
                .ok_or_else(|| {
                    Error::BadRequest(format!(
                        "after={cursor:?}: pass the `next` of the previous page as it is"
                    ))
                })?,
        ),
    };
    let limit = q.limit.unwrap_or(PAGE).clamp(1, PAGE_MAX);
    let filter = crate::store::service::OrderFilter {
        from,
        to,
        verdict,
        category,
        after,
        limit: limit + 1,
    };
    let mut orders = store.listed_orders(&filter).await?;
    let next = if orders.len() as i64 > limit {
        orders.truncate(limit as usize);
        orders
            .last()
            .map(|o| format!("{}/{}", o.delivered_day, o.order_id))
    } else {
        None
    };
    Ok(OrderPage {
        from,
        to,
        verdict: verdict.map(Verdict::as_str),
        category: category.map(Category::as_str),
        orders,
        next,
    })
}

/// Which month's restatement, and which page of its orders.
#[derive(Deserialize)]
struct RestatementQuery {
    /// `YYYY-MM`; last month when left out.
    month: Option<String>,
    /// The previous page's `next`.
    after: Option<String>,
    limit: Option<i64>,
}

/// A month's rate at month end next to today's, the causes and a page of the restated
/// orders (see [`crate::store::MonthRestatement`]).
async fn restatements<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Query(q): Query<RestatementQuery>,
) -> Result<Json<crate::store::MonthRestatement>, Error> {
    let month = match q.month.as_deref() {
        None | Some("") => {
            let this = state.rules.month_of(chrono::Utc::now());
            this.checked_sub_months(chrono::Months::new(1))
                .unwrap_or(this)
        }
        Some(month) => chrono::NaiveDate::parse_from_str(&format!("{month}-01"), "%Y-%m-%d")
            .map_err(|_| {
                Error::BadRequest(format!(
                    "month={month:?} is not a month: write it as YYYY-MM (or leave it out for \
                     last month)"
                ))
            })?,
    };
    let limit = q.limit.unwrap_or(PAGE).clamp(1, PAGE_MAX);
    let after = q.after.unwrap_or_default();
    Ok(Json(
        crate::store::month_restatement(&state.store, month, &after, limit).await?,
    ))
}

/// One order explained: its verdict, each criterion with the deciding event, its timeline.
async fn order<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    axum::extract::Path(order_id): axum::extract::Path<String>,
) -> Result<Json<crate::store::OrderStory>, Error> {
    crate::store::order_story(&state.store, &state.rules, &order_id, chrono::Utc::now())
        .await?
        .map(Json)
        .ok_or_else(|| {
            Error::NotFound(format!(
                "no order {order_id:?} is stored: check the id (order ids are case-sensitive), \
                 or wait until its events are consumed"
            ))
        })
}

async fn open_claims<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Query(q): Query<LateQuery>,
) -> Result<Json<Vec<crate::store::service::OpenClaim>>, Error> {
    let limit = q.limit.unwrap_or(500).clamp(1, 10_000);
    Ok(Json(state.store.open_claims(limit).await?))
}

async fn unanswered_negative_reviews<S: Store>(
    State(state): State<Arc<AppState<S>>>,
    Query(q): Query<LateQuery>,
) -> Result<Json<Vec<crate::store::service::UnansweredReview>>, Error> {
    let limit = q.limit.unwrap_or(500).clamp(1, 10_000);
    Ok(Json(state.store.unanswered_negative_reviews(limit).await?))
}
