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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DispatchMonth {
    pub month: NaiveDate,
    pub shipped: i64,
    pub dispatch_p50_seconds: Option<i64>,
    pub dispatch_p95_seconds: Option<i64>,
}

/// A row of `acquisition_monthly`.
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpenClaim {
    pub claim_id: String,
    pub order_id: String,
    pub category: String,
    pub stage: String,
    pub filed_at: DateTime<Utc>,
    pub age_seconds: f64,
}

/// A review rated 2 or lower with no answer (`unanswered_negative_reviews`).
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// The v2 reads of [`super::Store`], the same SQL on both stores (only the pool's type
/// differs), expanded inside each store's `impl Store`.
macro_rules! service_reads {
    () => {
        /// Live v2 figures at `now` (see [`super::service::ServiceFigures`]).
        async fn service_figures(
            &self,
            rules: &crate::domain::Rules,
            now: chrono::DateTime<chrono::Utc>,
        ) -> Result<super::service::ServiceFigures, super::Error> {
            use sqlx::Row;
            let today = rules.day_of(now);
            let month = rules.month_of(now);
            let open_claims = sqlx::query(
                "SELECT category, count(*) FROM claims
                 WHERE filed_at IS NOT NULL AND resolved_at IS NULL AND category IS NOT NULL
                 GROUP BY category",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(super::step("read open claims from claims"))?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
            let unanswered_negative_reviews: i64 =
                sqlx::query_scalar("SELECT count(*) FROM unanswered_negative_reviews")
                    .fetch_one(&self.pool)
                    .await
                    .map_err(super::step("read unanswered_negative_reviews"))?;
            let leads = sqlx::query(
                "SELECT temperature, count(*) FROM leads WHERE captured_at IS NOT NULL
                 GROUP BY temperature",
            )
            .fetch_all(&self.pool)
            .await
            .map_err(super::step("read leads by temperature"))?
            .into_iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
            let repeat = sqlx::query(
                "WITH w AS (
                     SELECT DISTINCT customer_id FROM orders
                     WHERE customer_id IS NOT NULL AND created_day > $1 AND created_day <= $2
                 )
                 SELECT count(*),
                        count(*) FILTER (WHERE EXISTS (
                            SELECT 1 FROM orders o
                            WHERE o.customer_id = w.customer_id AND o.created_day <= $1))
                 FROM w",
            )
            .bind(today - chrono::TimeDelta::days(30))
            .bind(today)
            .fetch_one(&self.pool)
            .await
            .map_err(super::step("read repeat customers of the last 30 days from orders"))?;
            // This month's contest, read for this month only (the view computes every month;
            // the timer runs every few seconds), ranked by the view's rules.
            let smileys: Vec<(String, i64, i64)> = sqlx::query(
                "WITH s AS (
                     SELECT v.courier_id, v.posted_at AS time, 1 AS yellow
                     FROM reviews v CROSS JOIN service_settings st
                     WHERE v.posted_month = $1 AND v.rating >= st.smiley_min_rating
                       AND v.courier_id IS NOT NULL AND v.posted_at IS NOT NULL
                     UNION ALL
                     SELECT courier_id, time, 0 FROM courier_violations WHERE month = $1
                 ), t AS (
                     SELECT (SELECT r.team_id FROM courier_rosters r
                             WHERE r.courier_id = s.courier_id AND r.time <= s.time
                             ORDER BY r.time DESC, r.source DESC, r.id DESC LIMIT 1) AS team_id,
                            yellow
                     FROM s
                 )
                 SELECT team_id, CAST(sum(yellow) AS bigint), CAST(count(*) - sum(yellow) AS bigint)
                 FROM t WHERE team_id IS NOT NULL GROUP BY team_id",
            )
            .bind(month)
            .fetch_all(&self.pool)
            .await
            .map_err(super::step("read this month's smileys from reviews and courier_violations"))?
            .into_iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
            let any_smiley: i64 = sqlx::query_scalar(
                "SELECT (SELECT count(*) FROM reviews v CROSS JOIN service_settings st
                         WHERE v.posted_month = $1 AND v.rating >= st.smiley_min_rating
                           AND v.courier_id IS NOT NULL)
                      + (SELECT count(*) FROM courier_violations WHERE month = $1)",
            )
            .bind(month)
            .fetch_one(&self.pool)
            .await
            .map_err(super::step("count this month's smileys"))?;
            let sizes: Vec<(String, i64)> = if any_smiley > 0 {
                sqlx::query(
                    "SELECT team_id, count(*) FROM (
                         SELECT (SELECT r.team_id FROM courier_rosters r
                                 WHERE r.courier_id = c.courier_id AND r.month <= $1
                                 ORDER BY r.time DESC, r.source DESC, r.id DESC LIMIT 1) AS team_id
                         FROM (SELECT DISTINCT courier_id FROM courier_rosters) c
                     ) x WHERE team_id IS NOT NULL GROUP BY team_id",
                )
                .bind(month)
                .fetch_all(&self.pool)
                .await
                .map_err(super::step("read team sizes from courier_rosters"))?
                .into_iter()
                .map(|r| (r.get(0), r.get(1)))
                .collect()
            } else {
                Vec::new()
            };
            let teams = super::service::rank_teams(month, rules.team_size, smileys, sizes);
            Ok(super::service::ServiceFigures {
                month: Some(month),
                open_claims,
                unanswered_negative_reviews,
                leads,
                customers_30d: repeat.get(0),
                returning_customers_30d: repeat.get(1),
                teams,
            })
        }

        /// Every monthly v2 view from `since` (a month's first day) on, oldest first.
        async fn service_months(
            &self,
            since: chrono::NaiveDate,
        ) -> Result<super::service::ServiceMonths, super::Error> {
            use sqlx::Row;
            let rows = |sql: &'static str, what: &'static str| {
                let pool = &self.pool;
                async move {
                    sqlx::query(sql)
                        .bind(since)
                        .fetch_all(pool)
                        .await
                        .map_err(super::step(what))
                }
            };
            let claims_journal = rows(
                "SELECT month, category, filed, resolved, open_at_month_end, open_registered,
                        open_investigating, open_action_taken, resolve_p50_seconds,
                        resolve_p95_seconds
                 FROM claims_journal_monthly WHERE month >= $1 ORDER BY month, category",
                "read claims_journal_monthly",
            )
            .await?
            .into_iter()
            .map(|r| super::service::ClaimsJournalRow {
                month: r.get(0),
                category: r.get(1),
                filed: r.get(2),
                resolved: r.get(3),
                open_at_month_end: r.get(4),
                open_registered: r.get(5),
                open_investigating: r.get(6),
                open_action_taken: r.get(7),
                resolve_p50_seconds: r.get(8),
                resolve_p95_seconds: r.get(9),
            })
            .collect();
            let team_ranking = rows(
                "SELECT month, team_id, yellow, red, friendliness_index, team_size, size_flagged,
                        rank, winner
                 FROM team_ranking_monthly WHERE month >= $1 ORDER BY month, rank",
                "read team_ranking_monthly",
            )
            .await?
            .into_iter()
            .map(|r| crate::team_row!(r))
            .collect();
            let couriers = rows(
                "SELECT month, courier_id, team_id, yellow, red, friendliness_index
                 FROM courier_smileys_monthly WHERE month >= $1 ORDER BY month, courier_id",
                "read courier_smileys_monthly",
            )
            .await?
            .into_iter()
            .map(|r| super::service::CourierMonth {
                month: r.get(0),
                courier_id: r.get(1),
                team_id: r.get(2),
                yellow: r.get(3),
                red: r.get(4),
                friendliness_index: r.get(5),
            })
            .collect();
            let reviews = rows(
                "SELECT month, reviews, answered, answered_within_sla, within_sla_share,
                        answer_p50_seconds, answer_p95_seconds, negative, unanswered_negative
                 FROM review_response_monthly WHERE month >= $1 ORDER BY month",
                "read review_response_monthly",
            )
            .await?
            .into_iter()
            .map(|r| super::service::ReviewMonth {
                month: r.get(0),
                reviews: r.get(1),
                answered: r.get(2),
                answered_within_sla: r.get(3),
                within_sla_share: r.get(4),
                answer_p50_seconds: r.get(5),
                answer_p95_seconds: r.get(6),
                negative: r.get(7),
                unanswered_negative: r.get(8),
            })
            .collect();
            let repeat_customers = rows(
                "SELECT month, customers, returning_customers, returning_customer_share, orders,
                        returning_orders, returning_order_share
                 FROM repeat_customers_monthly WHERE month >= $1 ORDER BY month",
                "read repeat_customers_monthly",
            )
            .await?
            .into_iter()
            .map(|r| super::service::RepeatMonth {
                month: r.get(0),
                customers: r.get(1),
                returning_customers: r.get(2),
                returning_customer_share: r.get(3),
                orders: r.get(4),
                returning_orders: r.get(5),
                returning_order_share: r.get(6),
            })
            .collect();
            let dispatch = rows(
                "SELECT month, shipped, dispatch_p50_seconds, dispatch_p95_seconds
                 FROM order_dispatch_monthly WHERE month >= $1 ORDER BY month",
                "read order_dispatch_monthly",
            )
            .await?
            .into_iter()
            .map(|r| super::service::DispatchMonth {
                month: r.get(0),
                shipped: r.get(1),
                dispatch_p50_seconds: r.get(2),
                dispatch_p95_seconds: r.get(3),
            })
            .collect();
            let acquisition = rows(
                "SELECT month, channel, CAST(spend AS double precision), new_customers,
                        CAST(cac AS double precision), fulfilled_orders,
                        CAST(revenue AS double precision), CAST(aov AS double precision),
                        CAST(cac_to_aov AS double precision)
                 FROM acquisition_monthly WHERE month >= $1 ORDER BY month, channel",
                "read acquisition_monthly",
            )
            .await?
            .into_iter()
            .map(|r| super::service::AcquisitionMonth {
                month: r.get(0),
                channel: r.get(1),
                spend: r.get::<Option<f64>, _>(2).unwrap_or(0.0),
                new_customers: r.get(3),
                cac: r.get(4),
                fulfilled_orders: r.get(5),
                revenue: r.get::<Option<f64>, _>(6).unwrap_or(0.0),
                aov: r.get(7),
                cac_to_aov: r.get(8),
            })
            .collect();
            let leads = rows(
                "SELECT month, leads, new_leads, cold, warm, hot, warm_hot_share, growth,
                        converted, new_conversions
                 FROM lead_base_monthly WHERE month >= $1 ORDER BY month",
                "read lead_base_monthly",
            )
            .await?
            .into_iter()
            .map(|r| super::service::LeadMonth {
                month: r.get(0),
                leads: r.get(1),
                new_leads: r.get(2),
                cold: r.get(3),
                warm: r.get(4),
                hot: r.get(5),
                warm_hot_share: r.get(6),
                growth: r.get(7),
                converted: r.get(8),
                new_conversions: r.get(9),
            })
            .collect();
            Ok(super::service::ServiceMonths {
                claims_journal,
                team_ranking,
                couriers,
                reviews,
                repeat_customers,
                dispatch,
                acquisition,
                leads,
            })
        }

        /// Open claims and unanswered negative reviews, oldest first, at most `limit` each.
        async fn service_lists(
            &self,
            limit: i64,
        ) -> Result<super::service::ServiceLists, super::Error> {
            use sqlx::Row;
            let open_claims = sqlx::query(
                "SELECT claim_id, order_id, category, stage, filed_at, age_seconds
                 FROM open_claims LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(super::step("read open_claims"))?
            .into_iter()
            .map(|r| super::service::OpenClaim {
                claim_id: r.get(0),
                order_id: r.get(1),
                category: r.get(2),
                stage: r.get(3),
                filed_at: r.get(4),
                age_seconds: r.get(5),
            })
            .collect();
            let unanswered_negative_reviews = sqlx::query(
                "SELECT review_id, CAST(rating AS bigint), order_id, courier_id, posted_at,
                        age_seconds
                 FROM unanswered_negative_reviews LIMIT $1",
            )
            .bind(limit)
            .fetch_all(&self.pool)
            .await
            .map_err(super::step("read unanswered_negative_reviews"))?
            .into_iter()
            .map(|r| super::service::UnansweredReview {
                review_id: r.get(0),
                rating: r.get(1),
                order_id: r.get(2),
                courier_id: r.get(3),
                posted_at: r.get(4),
                age_seconds: r.get(5),
            })
            .collect();
            Ok(super::service::ServiceLists {
                open_claims,
                unanswered_negative_reviews,
            })
        }
    };
}

pub(crate) use service_reads;

/// The friendly-driver ranking of one month, by the rules of `team_ranking_monthly`: every
/// team with smileys or members, by yellow smileys (ties: the lowest `team_id`), the first the
/// winner, sizes other than `team_size` flagged.
pub(crate) fn rank_teams(
    month: NaiveDate,
    team_size: u32,
    smileys: Vec<(String, i64, i64)>,
    sizes: Vec<(String, i64)>,
) -> Vec<TeamRow> {
    let mut teams: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for (team, yellow, red) in smileys {
        let t = teams.entry(team).or_default();
        t.0 += yellow;
        t.1 += red;
    }
    for (team, size) in sizes {
        teams.entry(team).or_default().2 = size;
    }
    let mut rows: Vec<(String, (i64, i64, i64))> = teams.into_iter().collect();
    rows.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then_with(|| a.0.cmp(&b.0)));
    rows.into_iter()
        .enumerate()
        .map(|(i, (team_id, (yellow, red, size)))| TeamRow {
            month,
            team_id,
            yellow,
            red,
            friendliness_index: (yellow + red > 0).then(|| yellow as f64 / (yellow + red) as f64),
            team_size: size,
            size_flagged: size != i64::from(team_size),
            rank: i as i64 + 1,
            winner: i == 0,
        })
        .collect()
}

/// Builds a [`TeamRow`] from a row of `team_ranking_monthly` (same columns on both stores).
#[macro_export]
#[doc(hidden)]
macro_rules! team_row {
    ($r:expr) => {{
        let r = $r;
        $crate::store::service::TeamRow {
            month: r.get(0),
            team_id: r.get(1),
            yellow: r.get(2),
            red: r.get(3),
            friendliness_index: r.get(4),
            team_size: r.get(5),
            size_flagged: r.get(6),
            rank: r.get(7),
            winner: r.get(8),
        }
    }};
}
