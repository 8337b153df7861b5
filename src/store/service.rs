//! Reads of the contract-v2 KPIs (the seeds' other KPIs) for the metrics, the console and
//! `report`: the same SQL on both stores (the views have the same columns), written once in
//! [`service_reads!`] and expanded inside each store's `impl`.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// Live figures for the gauges and the console's tiles (shop-wide, from the tables).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceFigures {
    /// The current shop-zone month (first day).
    pub month: Option<NaiveDate>,
    /// Claims filed and not resolved, per category.
    pub open_claims: BTreeMap<String, i64>,
    /// Reviews rated 2 or lower with no answer yet.
    pub unanswered_negative_reviews: i64,
    /// Leads captured so far by their temperature now.
    pub leads: BTreeMap<String, i64>,
    /// Customers with an order created in the last 30 shop-zone days, and those of them who
    /// had ordered before that window.
    pub customers_30d: i64,
    pub returning_customers_30d: i64,
    /// This month's friendly-driver contest, in rank order.
    pub teams: Vec<TeamRow>,
}

impl ServiceFigures {
    /// Returning / all customers of the last 30 days (`None` without customers).
    pub fn repeat_customer_ratio_30d(&self) -> Option<f64> {
        (self.customers_30d > 0)
            .then(|| self.returning_customers_30d as f64 / self.customers_30d as f64)
    }
}

/// A row of `team_ranking_monthly`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct TeamRow {
    pub month: NaiveDate,
    pub team_id: String,
    pub yellow: i64,
    pub red: i64,
    pub friendliness_index: Option<f64>,
    pub team_size: i64,
    pub size_flagged: bool,
    pub rank: i64,
    pub winner: bool,
}

/// A row of `claims_journal_monthly`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ClaimsJournalRow {
    pub month: NaiveDate,
    pub category: String,
    pub filed: i64,
    pub resolved: i64,
    pub open_at_month_end: i64,
    pub open_registered: i64,
    pub open_investigating: i64,
    pub open_action_taken: i64,
    pub resolve_p50_seconds: Option<i64>,
    pub resolve_p95_seconds: Option<i64>,
}

/// A row of `review_response_monthly`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ReviewMonth {
    pub month: NaiveDate,
    pub reviews: i64,
    pub answered: i64,
    pub answered_within_sla: i64,
    pub within_sla_share: f64,
    pub answer_p50_seconds: Option<i64>,
    pub answer_p95_seconds: Option<i64>,
    pub negative: i64,
    pub unanswered_negative: i64,
}

/// A row of `repeat_customers_monthly`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RepeatMonth {
    pub month: NaiveDate,
    pub customers: i64,
    pub returning_customers: i64,
    pub returning_customer_share: f64,
    pub orders: i64,
    pub returning_orders: i64,
    pub returning_order_share: f64,
}

/// A row of `order_dispatch_monthly`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct DispatchMonth {
    pub month: NaiveDate,
    pub shipped: i64,
    pub dispatch_p50_seconds: Option<i64>,
    pub dispatch_p95_seconds: Option<i64>,
}

/// A row of `acquisition_monthly`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct AcquisitionMonth {
    pub month: NaiveDate,
    pub channel: String,
    pub spend: f64,
    pub new_customers: i64,
    pub cac: Option<f64>,
    pub fulfilled_orders: i64,
    pub revenue: f64,
    pub aov: Option<f64>,
    pub cac_to_aov: Option<f64>,
}

/// A row of `lead_base_monthly`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct LeadMonth {
    pub month: NaiveDate,
    pub leads: i64,
    pub new_leads: i64,
    pub cold: i64,
    pub warm: i64,
    pub hot: i64,
    pub warm_hot_share: f64,
    pub growth: Option<f64>,
    pub converted: i64,
    pub new_conversions: i64,
}

/// A row of `courier_smileys_monthly`.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct CourierMonth {
    pub month: NaiveDate,
    pub courier_id: String,
    pub team_id: Option<String>,
    pub yellow: i64,
    pub red: i64,
    pub friendliness_index: Option<f64>,
}

/// Every monthly v2 view from a month on, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceMonths {
    pub claims_journal: Vec<ClaimsJournalRow>,
    pub team_ranking: Vec<TeamRow>,
    pub couriers: Vec<CourierMonth>,
    pub reviews: Vec<ReviewMonth>,
    pub repeat_customers: Vec<RepeatMonth>,
    pub dispatch: Vec<DispatchMonth>,
    pub acquisition: Vec<AcquisitionMonth>,
    pub leads: Vec<LeadMonth>,
}

/// A claim filed and not resolved (`open_claims`).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct OpenClaim {
    pub claim_id: String,
    pub order_id: String,
    pub category: String,
    pub stage: String,
    pub filed_at: DateTime<Utc>,
    pub age_seconds: f64,
}

/// A review rated 2 or lower with no answer (`unanswered_negative_reviews`).
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct UnansweredReview {
    pub review_id: String,
    pub rating: i64,
    pub order_id: Option<String>,
    pub courier_id: Option<String>,
    pub posted_at: DateTime<Utc>,
    pub age_seconds: f64,
}

/// The lists for people: open claims and unanswered negative reviews, oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServiceLists {
    pub open_claims: Vec<OpenClaim>,
    pub unanswered_negative_reviews: Vec<UnansweredReview>,
}

/// One month of `po_monthly` with the claims of `claims_monthly`.
#[derive(Debug, Clone, PartialEq)]
pub struct MonthRow {
    pub month: chrono::NaiveDate,
    pub fulfilled: i64,
    pub perfect: i64,
    pub po_rate: Option<f64>,
    pub deviations: [i64; 4],
    pub cancelled: i64,
    /// Claims filed in the month per category (quality, completeness, delivery, service).
    pub claims: [i64; 4],
    /// The view's change against the previous calendar month (null without one).
    pub claims_change: [Option<f64>; 4],
    /// The component rates: confirmed within the SLA, on time, in full, claim-free (null
    /// when nothing was fulfilled).
    pub components: [Option<f64>; 4],
    /// Their product: the multiplicative index (not the perfect-order rate).
    pub po_index: Option<f64>,
}

/// The monthly table from `po_monthly` and `claims_monthly`: the same SQL on both stores
/// (`claims_monthly` has one row per month and category, so `max` picks it).
pub(crate) const MONTHLY_QUERY: &str = "WITH claims AS (
         SELECT month,
                COALESCE(max(claims) FILTER (WHERE category = 'quality'), 0) AS q,
                COALESCE(max(claims) FILTER (WHERE category = 'completeness'), 0) AS c,
                COALESCE(max(claims) FILTER (WHERE category = 'delivery'), 0) AS d,
                COALESCE(max(claims) FILTER (WHERE category = 'service'), 0) AS s,
                max(change) FILTER (WHERE category = 'quality') AS qx,
                max(change) FILTER (WHERE category = 'completeness') AS cx,
                max(change) FILTER (WHERE category = 'delivery') AS dx,
                max(change) FILTER (WHERE category = 'service') AS sx
         FROM claims_monthly GROUP BY month
     ), recent AS (
         SELECT month FROM (SELECT month FROM po_monthly UNION SELECT month FROM claims) m
         ORDER BY month DESC LIMIT $1
     )
     SELECT r.month, COALESCE(p.fulfilled, 0), COALESCE(p.perfect, 0), p.po_rate,
            COALESCE(p.deviation_quality, 0), COALESCE(p.deviation_completeness, 0),
            COALESCE(p.deviation_delivery, 0), COALESCE(p.deviation_service, 0),
            COALESCE(p.cancelled, 0),
            COALESCE(c.q, 0), COALESCE(c.c, 0), COALESCE(c.d, 0), COALESCE(c.s, 0),
            c.qx, c.cx, c.dx, c.sx,
            p.confirmed_in_sla_rate, p.on_time_rate, p.in_full_rate, p.claim_free_rate,
            p.po_index
     FROM recent r LEFT JOIN po_monthly p USING (month) LEFT JOIN claims c USING (month)
     ORDER BY r.month";

/// One stored event of an order, for its timeline: what it is, where it was read, when it
/// was stored, and how many later copies of it were dropped as duplicates.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct StoredEvent {
    #[serde(rename = "type")]
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub time: DateTime<Utc>,
    pub source: String,
    pub id: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub stored_at: DateTime<Utc>,
    pub duplicates: i64,
}

/// Which orders a drill-down list shows: those a day or a month counts (by delivery day),
/// optionally only one verdict and one deviation category, a page at a time.
#[derive(Debug, Clone)]
pub struct OrderFilter {
    /// The first and the last delivery day (inclusive).
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub verdict: Option<crate::domain::Verdict>,
    pub category: Option<crate::domain::Category>,
    /// Orders after this (delivery day, order id) only: the previous page's last.
    pub after: Option<(NaiveDate, String)>,
    pub limit: i64,
}

/// One order of a drill-down list.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct ListedOrder {
    pub order_id: String,
    pub verdict: String,
    pub delivered_day: NaiveDate,
    pub delivered_at: Option<DateTime<Utc>>,
    pub deviation_quality: bool,
    pub deviation_completeness: bool,
    pub deviation_delivery: bool,
    pub deviation_service: bool,
    pub confirmation_seconds: Option<f64>,
    pub delivery_lateness_seconds: Option<f64>,
}

/// A row of the `restatements` view: a day's or a month's perfect-order figure as first
/// complete (facts up to the period end) next to today's, and its restated orders by cause.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct PeriodRestatement {
    pub period_kind: String,
    pub period: NaiveDate,
    pub restated_orders: i64,
    pub perfect_first: i64,
    pub fulfilled_first: i64,
    pub po_rate_first: Option<f64>,
    pub perfect_now: i64,
    pub fulfilled_now: i64,
    pub po_rate_now: Option<f64>,
    pub by_claims: i64,
    pub by_cancellations: i64,
    pub by_confirmations: i64,
    pub by_other: i64,
}

/// One restated order of a period: how it counted then and now, the fact that changed it
/// and where that fact was read.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow)]
pub struct RestatedOrder {
    pub order_id: String,
    pub first_verdict: String,
    pub now_verdict: String,
    pub cause_type: String,
    pub cause_time: DateTime<Utc>,
    pub cause_day: NaiveDate,
    pub cause_source: String,
    pub cause_id: String,
    pub topic: Option<String>,
    pub partition: Option<i32>,
    pub offset: Option<i64>,
}

/// An order as stored: its projection (`orders.state`) and its events in event-time order.
#[derive(Debug, Clone)]
pub struct StoredOrder {
    pub state: String,
    pub events: Vec<StoredEvent>,
}

/// The v2 reads of [`super::Store`], the same SQL on both stores (only the pool's type
/// differs), expanded inside each store's `impl Store`. Rows decode by column name into the
/// `sqlx::FromRow` types above.
macro_rules! service_reads {
    () => {
        /// Live v2 figures at `now` (see [`super::service::ServiceFigures`]).
        async fn service_figures(
            &self,
            rules: &crate::domain::Rules,
            now: chrono::DateTime<chrono::Utc>,
        ) -> Result<super::service::ServiceFigures, super::Error> {
            let today = rules.day_of(now);
            let month = rules.month_of(now);
            let open_claims: Vec<(String, i64)> = sqlx::query_as(
                "SELECT category, count(*) FROM claims
                 WHERE filed_at IS NOT NULL AND resolved_at IS NULL AND category IS NOT NULL
                 GROUP BY category",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(super::step("read open claims from claims"))?;
            let unanswered_negative_reviews: i64 =
                sqlx::query_scalar("SELECT count(*) FROM unanswered_negative_reviews")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(super::step("read unanswered_negative_reviews"))?;
            // The lead base's changes summed over every month: each captured lead in the
            // temperature of its latest event (a row per month and shard, not per lead).
            let (cold, warm, hot): (i64, i64, i64) = sqlx::query_as(
                "SELECT CAST(COALESCE(sum(cold), 0) AS bigint), CAST(COALESCE(sum(warm), 0) AS bigint),
                        CAST(COALESCE(sum(hot), 0) AS bigint)
                 FROM lead_base_shards",
            )
            .fetch_one(&self.pool)
            .await
            .map_err(super::step("read leads by temperature from lead_base_shards"))?;
            let leads = [("cold".to_owned(), cold), ("warm".to_owned(), warm), ("hot".to_owned(), hot)];
            // Each customer of the window counted once, at their first day in it (see
            // customer_order_gaps): a bounded read of the window's days.
            let (customers_30d, returning_customers_30d): (i64, i64) = sqlx::query_as(
                "SELECT CAST(COALESCE(sum(customers), 0) AS bigint),
                        CAST(COALESCE(sum(CASE WHEN previous_day < day THEN customers ELSE 0 END), 0)
                             AS bigint)
                 FROM customer_order_gaps
                 WHERE day > $1 AND day <= $2 AND (previous_day = day OR previous_day <= $1)",
            )
            .bind(today - chrono::TimeDelta::days(30))
            .bind(today)
            .fetch_one(&self.pool)
            .await
            .map_err(super::step(
                "read repeat customers of the last 30 days from customer_order_gaps",
            ))?;
            let teams = sqlx::query_as(
                "SELECT month, team_id, yellow, red, friendliness_index, team_size, size_flagged,
                        rank, winner
                 FROM team_ranking_monthly WHERE month = $1 ORDER BY rank",
            )
            .bind(month)
            .fetch_all(&self.pool)
            .await
            .map_err(super::step("read this month from team_ranking_monthly"))?;
            Ok(super::service::ServiceFigures {
                month: Some(month),
                open_claims: open_claims.into_iter().collect(),
                unanswered_negative_reviews,
                leads: leads.into_iter().collect(),
                customers_30d,
                returning_customers_30d,
                teams,
            })
        }

        /// Every monthly v2 view from `since` (a month's first day) on, oldest first.
        async fn service_months(
            &self,
            since: chrono::NaiveDate,
        ) -> Result<super::service::ServiceMonths, super::Error> {
            Ok(super::service::ServiceMonths {
                claims_journal: sqlx::query_as(
                    "SELECT month, category, filed, resolved, open_at_month_end, open_registered,
                            open_investigating, open_action_taken, resolve_p50_seconds,
                            resolve_p95_seconds
                     FROM claims_journal_monthly WHERE month >= $1 ORDER BY month, category",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(super::step("read claims_journal_monthly"))?,
                team_ranking: sqlx::query_as(
                    "SELECT month, team_id, yellow, red, friendliness_index, team_size,
                            size_flagged, rank, winner
                     FROM team_ranking_monthly WHERE month >= $1 ORDER BY month, rank",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(super::step("read team_ranking_monthly"))?,
                couriers: sqlx::query_as(
                    "SELECT month, courier_id, team_id, yellow, red, friendliness_index
                     FROM courier_smileys_monthly WHERE month >= $1 ORDER BY month, courier_id",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(super::step("read courier_smileys_monthly"))?,
                reviews: sqlx::query_as(
                    "SELECT month, reviews, answered, answered_within_sla, within_sla_share,
                            answer_p50_seconds, answer_p95_seconds, negative, unanswered_negative
                     FROM review_response_monthly WHERE month >= $1 ORDER BY month",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(super::step("read review_response_monthly"))?,
                repeat_customers: sqlx::query_as(
                    "SELECT month, customers, returning_customers, returning_customer_share,
                            orders, returning_orders, returning_order_share
                     FROM repeat_customers_monthly WHERE month >= $1 ORDER BY month",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(super::step("read repeat_customers_monthly"))?,
                dispatch: sqlx::query_as(
                    "SELECT month, shipped, dispatch_p50_seconds, dispatch_p95_seconds
                     FROM order_dispatch_monthly WHERE month >= $1 ORDER BY month",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(super::step("read order_dispatch_monthly"))?,
                acquisition: sqlx::query_as(
                    "SELECT month, channel,
                            COALESCE(CAST(spend AS double precision), 0) AS spend, new_customers,
                            CAST(cac AS double precision) AS cac, fulfilled_orders,
                            COALESCE(CAST(revenue AS double precision), 0) AS revenue,
                            CAST(aov AS double precision) AS aov,
                            CAST(cac_to_aov AS double precision) AS cac_to_aov
                     FROM acquisition_monthly WHERE month >= $1 ORDER BY month, channel",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(super::step("read acquisition_monthly"))?,
                leads: sqlx::query_as(
                    "SELECT month, leads, new_leads, cold, warm, hot, warm_hot_share, growth,
                            converted, new_conversions
                     FROM lead_base_monthly WHERE month >= $1 ORDER BY month",
                )
                .bind(since)
                .fetch_all(&self.pool)
                .await
                .map_err(super::step("read lead_base_monthly"))?,
            })
        }

        /// One order's stored projection and events (one order's rows: the orders key and
        /// the events' and duplicates' indexes), or `None` for an order never stored.
        async fn stored_order(
            &self,
            order_id: &str,
        ) -> Result<Option<super::service::StoredOrder>, super::Error> {
            let state: Option<String> =
                sqlx::query_scalar("SELECT state FROM orders WHERE order_id = $1")
                    .bind(order_id)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(super::step("read the order from orders"))?;
            let Some(state) = state else {
                return Ok(None);
            };
            let events = sqlx::query_as(
                "SELECT e.type, e.time, e.source, e.id, e.topic, e.partition, e.\"offset\",
                        e.stored_at,
                        (SELECT count(*) FROM duplicate_events d
                         WHERE d.source = e.source AND d.id = e.id) AS duplicates
                 FROM events e WHERE e.order_id = $1
                 ORDER BY e.time, e.source, e.id",
            )
            .bind(order_id)
            .fetch_all(&self.pool)
            .await
            .map_err(super::step("read the order's events from events"))?;
            Ok(Some(super::service::StoredOrder { state, events }))
        }

        /// A page of the orders a day or a month counts (see [`super::service::OrderFilter`]),
        /// in (delivery day, order id) order, read by `orders (delivered_day, order_id)`.
        async fn listed_orders(
            &self,
            filter: &super::service::OrderFilter,
        ) -> Result<Vec<super::service::ListedOrder>, super::Error> {
            // The category is one of four known columns (never text from a request).
            let category = filter
                .category
                .map(|c| format!(" AND deviation_{}", c.as_str()))
                .unwrap_or_default();
            let (after_day, after_id) = match &filter.after {
                Some((day, id)) => (Some(*day), id.as_str()),
                None => (None, ""),
            };
            let sql = format!(
                "SELECT order_id, verdict, delivered_day, delivered_at, deviation_quality,
                        deviation_completeness, deviation_delivery, deviation_service,
                        confirmation_seconds, delivery_lateness_seconds
                 FROM orders
                 WHERE delivered_day >= $1 AND delivered_day <= $2
                   AND verdict IN ('perfect', 'imperfect')
                   AND ($3 IS NULL OR verdict = $3){category}
                   AND ($4 IS NULL OR delivered_day > $4 OR (delivered_day = $4 AND order_id > $5))
                 ORDER BY delivered_day, order_id LIMIT $6"
            );
            sqlx::query_as(&sql)
                .bind(filter.from)
                .bind(filter.to)
                .bind(filter.verdict.map(|v| v.as_str()))
                .bind(after_day)
                .bind(after_id)
                .bind(filter.limit)
                .fetch_all(&self.pool)
                .await
                .map_err(super::step("read a page of orders from orders"))
        }

        /// The `restatements` rows of one period kind from `from` to `to` (inclusive).
        async fn restatement_rows(
            &self,
            kind: crate::domain::restatement::Period,
            from: chrono::NaiveDate,
            to: chrono::NaiveDate,
        ) -> Result<Vec<super::service::PeriodRestatement>, super::Error> {
            sqlx::query_as(
                "SELECT period_kind, period, restated_orders, perfect_first, fulfilled_first,
                        po_rate_first, perfect_now, fulfilled_now, po_rate_now, by_claims,
                        by_cancellations, by_confirmations, by_other
                 FROM restatements
                 WHERE period_kind = $1 AND period >= $2 AND period <= $3
                 ORDER BY period",
            )
            .bind(kind.as_str())
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await
            .map_err(super::step("read the restatements view"))
        }

        /// A page of a period's restated orders in order-id order (after `after`), each
        /// cause with where it was read (the events key).
        async fn restated_orders(
            &self,
            kind: crate::domain::restatement::Period,
            period: chrono::NaiveDate,
            after: &str,
            limit: i64,
        ) -> Result<Vec<super::service::RestatedOrder>, super::Error> {
            sqlx::query_as(
                "SELECT r.order_id, r.first_verdict, r.now_verdict, r.cause_type, r.cause_time,
                        r.cause_day, r.cause_source, r.cause_id, e.topic, e.partition,
                        e.\"offset\"
                 FROM restated_orders r
                 LEFT JOIN events e ON e.source = r.cause_source AND e.id = r.cause_id
                 WHERE r.period_kind = $1 AND r.period = $2 AND r.order_id > $3
                 ORDER BY r.order_id LIMIT $4",
            )
            .bind(kind.as_str())
            .bind(period)
            .bind(after)
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(super::step("read a page of restated_orders"))
        }

        /// A period's restated orders counted per cause type and shop-zone day of the cause.
        async fn restatement_causes(
            &self,
            kind: crate::domain::restatement::Period,
            period: chrono::NaiveDate,
        ) -> Result<Vec<(String, chrono::NaiveDate, i64)>, super::Error> {
            sqlx::query_as(
                "SELECT cause_type, cause_day, count(*) FROM restated_orders
                 WHERE period_kind = $1 AND period = $2
                 GROUP BY cause_type, cause_day ORDER BY cause_day, cause_type",
            )
            .bind(kind.as_str())
            .bind(period)
            .fetch_all(&self.pool)
            .await
            .map_err(super::step("read the causes of restated_orders"))
        }

        /// `(perfect, fulfilled)` of the delivery days from `from` to `to` (inclusive).
        async fn period_counts(
            &self,
            from: chrono::NaiveDate,
            to: chrono::NaiveDate,
        ) -> Result<(i64, i64), super::Error> {
            let counts: (Option<i64>, Option<i64>) = sqlx::query_as(
                "SELECT CAST(sum(perfect) AS bigint), CAST(sum(fulfilled) AS bigint)
                 FROM daily_kpi_shards WHERE day >= $1 AND day <= $2",
            )
            .bind(from)
            .bind(to)
            .fetch_one(&self.pool)
            .await
            .map_err(super::step("read a period's counts from daily_kpi_shards"))?;
            Ok((counts.0.unwrap_or(0), counts.1.unwrap_or(0)))
        }

        /// Claims filed and not resolved, oldest first, at most `limit`.
        async fn open_claims(
            &self,
            limit: i64,
        ) -> Result<Vec<super::service::OpenClaim>, super::Error> {
            sqlx::query_as(
                "SELECT claim_id, order_id, category, stage, filed_at, age_seconds
                 FROM open_claims LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(super::step("read open_claims"))
        }

        /// Reviews rated 2 or lower with no answer, oldest first, at most `limit`.
        async fn unanswered_negative_reviews(
            &self,
            limit: i64,
        ) -> Result<Vec<super::service::UnansweredReview>, super::Error> {
            sqlx::query_as(
                "SELECT review_id, CAST(rating AS bigint) AS rating, order_id, courier_id,
                        posted_at, age_seconds
                 FROM unanswered_negative_reviews LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(super::step("read unanswered_negative_reviews"))
        }
    };
}

pub(crate) use service_reads;
