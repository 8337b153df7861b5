//! The live reads, composed once for every database: the SLA watch with the rolling windows
//! (the gauges' [`ShopFigures`]) and the console's [`Dashboard`]. A database only says how
//! each bounded read is asked ([`Reads`]); which reads make a figure, and over which days,
//! is decided here.

use std::collections::{BTreeMap, HashMap};
use std::future::Future;

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};

use super::{
    ClaimsMonth, Dashboard, DayPoint, Error, ShopFigures, WindowFigures, CHART_DAYS,
    CONFIRMATION_DAYS, CONFIRMATION_MINUTES, WINDOWS,
};
use crate::domain::{Category, Rules};

/// The SLA watch at an instant.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(crate) struct Watch {
    pub awaiting: i64,
    pub over_sla: i64,
    /// When the oldest awaiting order was created.
    pub oldest: Option<DateTime<Utc>>,
}

/// Sums of `daily_kpi` over a window: fulfilled, perfect, then the deviations in
/// [`Category::ALL`] order.
pub(crate) type WindowSums = [i64; 10];

/// The bounded reads of the live figures, per database.
pub(crate) trait Reads: Sync {
    /// Orders awaiting confirmation, created after `horizon_start`; those created before
    /// `sla_start` are over the SLA.
    fn watch(
        &self,
        horizon_start: DateTime<Utc>,
        sla_start: DateTime<Utc>,
    ) -> impl Future<Output = Result<Watch, Error>> + Send;

    /// `daily_kpi` summed over the days in `(today - days, today]`, for each of `days`.
    fn window_sums(
        &self,
        today: NaiveDate,
        days: &[i64],
    ) -> impl Future<Output = Result<Vec<WindowSums>, Error>> + Send;

    /// `po_monthly.po_rate` of `month`.
    fn month_rate(
        &self,
        month: NaiveDate,
    ) -> impl Future<Output = Result<Option<f64>, Error>> + Send;

    /// `(fulfilled, perfect)` of the `daily_kpi` rows in `(after, until]`.
    fn chart_days(
        &self,
        after: NaiveDate,
        until: NaiveDate,
    ) -> impl Future<Output = Result<HashMap<NaiveDate, (i64, i64)>, Error>> + Send;

    /// `claims_monthly` rows of the months after `after`, in month and category order.
    fn claims_months(
        &self,
        after: NaiveDate,
    ) -> impl Future<Output = Result<Vec<ClaimsMonth>, Error>> + Send;

    /// Orders created on the shop days after `after` with a known confirmation latency,
    /// counted per bucket (how many of [`super::CONFIRMATION_MINUTES`] are at or below the
    /// latency in minutes), from the maintained distribution: a read of those days only.
    fn confirmation_buckets(
        &self,
        after: NaiveDate,
    ) -> impl Future<Output = Result<Vec<(i64, i64)>, Error>> + Send;
}

/// The live reads whose SQL is the same on both stores (only the pool's type differs),
/// written once and expanded inside each store's `impl Reads`.
macro_rules! same_sql_live_reads {
    () => {
        async fn month_rate(
            &self,
            month: chrono::NaiveDate,
        ) -> Result<Option<f64>, crate::store::Error> {
            Ok(
                sqlx::query_scalar("SELECT po_rate FROM po_monthly WHERE month = $1")
                    .bind(month)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(crate::store::step("read this month from po_monthly"))?
                    .flatten(),
            )
        }

        async fn chart_days(
            &self,
            after: chrono::NaiveDate,
            until: chrono::NaiveDate,
        ) -> Result<std::collections::HashMap<chrono::NaiveDate, (i64, i64)>, crate::store::Error> {
            use sqlx::Row;
            Ok(sqlx::query(
                "SELECT day, fulfilled, perfect FROM daily_kpi WHERE day > $1 AND day <= $2",
            )
            .bind(after)
            .bind(until)
            .fetch_all(&self.pool)
            .await
            .map_err(crate::store::step("read po_daily from daily_kpi"))?
            .into_iter()
            .map(|r| (r.get(0), (r.get(1), r.get(2))))
            .collect())
        }

        async fn claims_months(
            &self,
            after: chrono::NaiveDate,
        ) -> Result<Vec<crate::store::ClaimsMonth>, crate::store::Error> {
            use sqlx::Row;
            Ok(sqlx::query(
                "SELECT month, category, claims, change FROM claims_monthly
             WHERE month > $1 ORDER BY month, category",
            )
            .bind(after)
            .fetch_all(&self.pool)
            .await
            .map_err(crate::store::step("read claims_monthly"))?
            .into_iter()
            .map(|r| crate::store::ClaimsMonth {
                month: r.get(0),
                category: r.get(1),
                claims: r.get(2),
                change: r.get(3),
            })
            .collect())
        }
    };
}
pub(super) use same_sql_live_reads;

/// The shop-wide live figures at wall-clock `now`.
pub(crate) async fn shop_figures<R: Reads>(
    db: &R,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<ShopFigures, Error> {
    let watch = db
        .watch(rules.horizon_start(now), rules.sla_start(now))
        .await?;
    let days: Vec<i64> = WINDOWS.iter().map(|(_, d)| *d).collect();
    let sums = db.window_sums(rules.day_of(now), &days).await?;
    let windows = WINDOWS
        .iter()
        .zip(sums)
        .map(|((label, days), s)| WindowFigures {
            label,
            days: *days,
            fulfilled: s[0],
            perfect: s[1],
            deviations: Category::ALL
                .iter()
                .enumerate()
                .map(|(i, c)| (*c, s[2 + i]))
                .collect(),
            missing: [s[6], s[7], s[8], s[9]],
        })
        .collect();
    let oldest = watch.oldest.map_or(0.0, |t| {
        (rules.confirmation_wait(t, now).num_milliseconds() as f64 / 1000.0).max(0.0)
    });
    Ok(ShopFigures {
        awaiting_confirmation: watch.awaiting,
        over_sla: watch.over_sla,
        oldest_awaiting_seconds: oldest,
        windows,
    })
}

/// What the web console shows, at wall-clock `now`.
pub(crate) async fn dashboard<R: Reads>(
    db: &R,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<Dashboard, Error> {
    let figures = shop_figures(db, rules, now).await?;
    let today = rules.day_of(now);
    let month_start = today.with_day0(0).unwrap_or(today);
    let month_rate = db.month_rate(month_start).await?;
    let days = db
        .chart_days(today - TimeDelta::days(CHART_DAYS), today)
        .await?;
    let six_months_back = month_start
        .checked_sub_months(Months::new(6))
        .unwrap_or(month_start);
    let claims_monthly = db.claims_months(six_months_back).await?;
    let buckets = db
        .confirmation_buckets(today - TimeDelta::days(CONFIRMATION_DAYS))
        .await?;
    Ok(Dashboard {
        today,
        sla_seconds: rules.confirmation_sla.num_seconds(),
        po_rate: po_rates(&figures, month_rate),
        components_30d: figures
            .windows
            .iter()
            .find(|w| w.days == 30)
            .and_then(super::WindowFigures::component_rates)
            .map(|rates| {
                super::COMPONENTS
                    .iter()
                    .copied()
                    .zip(rates)
                    .chain([("index", rates.iter().product())])
                    .collect()
            })
            .unwrap_or_default(),
        awaiting_confirmation: figures.awaiting_confirmation,
        over_sla: figures.over_sla,
        oldest_awaiting_seconds: figures.oldest_awaiting_seconds,
        po_daily: po_daily(today, &days),
        deviations_30d: deviations_30d(&figures),
        claims_monthly,
        confirmation_minutes: confirmation_minutes(buckets),
    })
}

/// The perfect-order rate of each rolling window and of this month (null when nothing was
/// fulfilled).
fn po_rates(figures: &ShopFigures, month_rate: Option<f64>) -> BTreeMap<&'static str, Option<f64>> {
    let mut rates: BTreeMap<&'static str, Option<f64>> = figures
        .windows
        .iter()
        .map(|w| (w.label, Figure::of(w.perfect, w.fulfilled).po_rate))
        .collect();
    rates.insert("month", month_rate);
    rates
}

/// The chart's days up to `today`, oldest first, with zeros for days without a row.
fn po_daily(today: NaiveDate, days: &HashMap<NaiveDate, (i64, i64)>) -> Vec<DayPoint> {
    (0..CHART_DAYS)
        .rev()
        .map(|back| {
            let day = today - TimeDelta::days(back);
            let (fulfilled, perfect) = days.get(&day).copied().unwrap_or((0, 0));
            DayPoint {
                day,
                fulfilled,
                perfect,
                po_rate: Figure::of(perfect, fulfilled).po_rate,
            }
        })
        .collect()
}

/// Fulfilled orders with a deviation of each category over the 30-day window.
fn deviations_30d(figures: &ShopFigures) -> BTreeMap<&'static str, i64> {
    figures
        .windows
        .iter()
        .find(|w| w.label == "30d")
        .map(|w| w.deviations.iter().map(|(c, n)| (c.as_str(), *n)).collect())
        .unwrap_or_default()
}

/// `[upper bound in minutes, orders]` per bucket, the last (bound null) being "longer";
/// `minutes` counts orders per whole minute of latency (`confirmation_ms_buckets`). The
/// bounds are whole minutes, so every latency of a minute falls in one bucket: the number of
/// bounds at or below the minute's start.
fn confirmation_minutes(minutes: Vec<(i64, i64)>) -> Vec<(Option<i64>, i64)> {
    let mut out: Vec<(Option<i64>, i64)> = CONFIRMATION_MINUTES
        .iter()
        .map(|b| (Some(*b), 0))
        .chain([(None, 0)])
        .collect();
    for (minute, n) in minutes {
        let at_or_below = CONFIRMATION_MINUTES
            .iter()
            .filter(|b| minute >= **b)
            .count();
        if let Some(slot) = out.get_mut(at_or_below) {
            slot.1 += n;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    /// A minute of latency falls in the histogram bucket of its first millisecond: a latency
    /// of exactly 5 minutes is in "up to 10", one a millisecond under it in "up to 5".
    #[test]
    fn each_minute_of_latency_falls_in_the_histogram_bucket_of_its_start() {
        // (minute, orders): 4:59.999 is minute 4, 5:00.000 minute 5, an hour minute 60.
        let out =
            super::confirmation_minutes(vec![(4, 1), (5, 2), (9, 1), (59, 3), (60, 4), (-1, 1)]);
        let counts: Vec<i64> = out.iter().map(|(_, n)| *n).collect();
        assert_eq!(counts, vec![2, 3, 0, 0, 0, 0, 0, 3, 4]);
        assert_eq!(out[0].0, Some(5));
        assert_eq!(out[8].0, None);
    }
}

/// One order explained: why it has its verdict ([`crate::domain::explain`]), each deciding
/// fact with where it was read, and its timeline of stored events.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OrderStory {
    #[serde(flatten)]
    pub explanation: crate::domain::explain::Explanation,
    /// Every stored event of the order in event-time order, with its arrival.
    pub timeline: Vec<super::service::StoredEvent>,
}

/// Explains `order_id` as of `now` from its stored rows (one order's rows); `None` for an
/// order never stored.
pub async fn order_story<S: super::Store>(
    store: &S,
    rules: &Rules,
    order_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<OrderStory>, Error> {
    let Some(stored) = store.stored_order(order_id).await? else {
        return Ok(None);
    };
    let projection = super::rows::decode_state(order_id, &stored.state)?;
    let mut explanation = crate::domain::explain::explain(&projection, rules, now);
    let causes = explanation.restatements.iter_mut().map(|r| &mut r.cause);
    for deciding in explanation
        .criteria
        .iter_mut()
        .filter_map(|c| c.deciding.as_mut())
        .chain(causes)
    {
        deciding.read = stored
            .events
            .iter()
            .find(|e| e.source == deciding.source && e.id == deciding.id)
            .map(|e| crate::domain::explain::Location {
                topic: e.topic.clone(),
                partition: e.partition,
                offset: e.offset,
                stored_at: e.stored_at,
            });
    }
    Ok(Some(OrderStory {
        explanation,
        timeline: stored.events,
    }))
}

/// A perfect-order figure: perfect and fulfilled orders and their rate.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Figure {
    pub perfect: i64,
    pub fulfilled: i64,
    pub po_rate: Option<f64>,
}

impl Figure {
    /// The figure of `perfect` of `fulfilled` orders (no rate without a fulfilled order).
    pub fn of(perfect: i64, fulfilled: i64) -> Figure {
        Figure {
            perfect,
            fulfilled,
            po_rate: (fulfilled > 0).then(|| perfect as f64 / fulfilled as f64),
        }
    }
}

/// A figure as first complete next to today's, and how many orders differ.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Change {
    pub first: Figure,
    pub now: Figure,
    pub restated_orders: i64,
}

impl Change {
    /// Today's rate minus the first one, in percentage points (`None` without both).
    pub fn points(&self) -> Option<f64> {
        Some((self.now.po_rate? - self.first.po_rate?) * 100.0)
    }
}

/// The perfect-order figure of the delivery days `days` today, and as first complete: each
/// restated period of `kind` in `days` says how its first figure differed (the view
/// `restatements` applies the rule; this sums it over the periods).
async fn change<S: super::Store>(
    store: &S,
    kind: crate::domain::restatement::Period,
    days: (NaiveDate, NaiveDate),
) -> Result<Change, Error> {
    let (perfect, fulfilled) = store.period_counts(days.0, days.1).await?;
    let rows = store.restatement_rows(kind, days.0, days.1).await?;
    let (dp, df, restated) = rows.iter().fold((0, 0, 0), |(p, f, n), r| {
        (
            p + r.perfect_first - r.perfect_now,
            f + r.fulfilled_first - r.fulfilled_now,
            n + r.restated_orders,
        )
    });
    Ok(Change {
        first: Figure::of(perfect + dp, fulfilled + df),
        now: Figure::of(perfect, fulfilled),
        restated_orders: restated,
    })
}

/// The last day of the month that starts on `month`.
fn month_end(month: NaiveDate) -> NaiveDate {
    month
        .checked_add_months(Months::new(1))
        .and_then(|next| next.pred_opt())
        .unwrap_or(month)
}

/// How the rates of this month and the last one moved since first complete: this month's
/// days each since the day ended (the month is not over), last month since the month ended.
/// Labels `current` and `previous` (the gauges'`month` label).
pub async fn restatement_changes<S: super::Store>(
    store: &S,
    rules: &Rules,
    now: DateTime<Utc>,
) -> Result<Vec<(&'static str, Change)>, Error> {
    use crate::domain::restatement::Period;
    let today = rules.day_of(now);
    let this_month = rules.month_of(now);
    let last_month = this_month
        .checked_sub_months(Months::new(1))
        .unwrap_or(this_month);
    let current = change(store, Period::Day, (this_month, today)).await?;
    let last_days = (last_month, month_end(last_month));
    let previous = change(store, Period::Month, last_days).await?;
    Ok(vec![("current", current), ("previous", previous)])
}

/// Restated orders of one cause type whose causes fell in one shop-zone month.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CauseCount {
    #[serde(rename = "type")]
    pub cause_type: String,
    /// The first day of the month the causes fell in.
    pub month: NaiveDate,
    pub orders: i64,
}

/// A month's restatement: its rate at month end next to today's, why they differ (the causes
/// by type and month, and a page of the restated orders), and its days' own restatements.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MonthRestatement {
    /// The month's first day.
    pub month: NaiveDate,
    /// One sentence: "October 2026: 95.1 % at month end → 94.8 % now (-0.3 pp); …".
    pub summary: String,
    pub at_month_end: Figure,
    pub now: Figure,
    /// Today's rate minus the one at month end, in percentage points.
    pub change_points: Option<f64>,
    pub restated_orders: i64,
    pub causes: Vec<CauseCount>,
    /// The month's delivery days whose own figure moved after the day ended.
    pub days: Vec<super::service::PeriodRestatement>,
    /// A page of the month's restated orders, in order-id order.
    pub orders: Vec<super::service::RestatedOrder>,
    /// The `after` of the next page (`None` on the last).
    pub next: Option<String>,
}

/// The restatement of `month` (its first day), with a page of `limit` restated orders after
/// the order id `after`: reads the month's rows only (indexed by period).
pub async fn month_restatement<S: super::Store>(
    store: &S,
    month: NaiveDate,
    after: &str,
    limit: i64,
) -> Result<MonthRestatement, Error> {
    use crate::domain::restatement::Period;
    let last = month_end(month);
    let whole = change(store, Period::Month, (month, last)).await?;
    let days = store.restatement_rows(Period::Day, month, last).await?;
    let mut causes: Vec<CauseCount> = Vec::new();
    for (cause_type, day, orders) in store.restatement_causes(Period::Month, month).await? {
        let cause_month = crate::domain::fact::first_of_month(day);
        match causes
            .iter_mut()
            .find(|c| c.cause_type == cause_type && c.month == cause_month)
        {
            Some(c) => c.orders += orders,
            None => causes.push(CauseCount {
                cause_type,
                month: cause_month,
                orders,
            }),
        }
    }
    let mut orders = store
        .restated_orders(Period::Month, month, after, limit + 1)
        .await?;
    let next = if orders.len() as i64 > limit {
        orders.truncate(limit.max(0) as usize);
        orders.last().map(|o| o.order_id.clone())
    } else {
        None
    };
    Ok(MonthRestatement {
        month,
        summary: summary(month, &whole, &causes),
        at_month_end: whole.first,
        now: whole.now,
        change_points: whole.points(),
        restated_orders: whole.restated_orders,
        causes,
        days,
        orders,
        next,
    })
}

/// "October 2026: 95.1 % at month end → 94.8 % now (-0.3 pp); 12 orders, 12 claims filed in
/// November 2026".
fn summary(month: NaiveDate, change: &Change, causes: &[CauseCount]) -> String {
    let rate = |f: &Figure| {
        f.po_rate
            .map_or_else(|| "no rate".to_owned(), |r| format!("{:.1} %", r * 100.0))
    };
    let name = month.format("%B %Y");
    if change.restated_orders == 0 {
        return format!(
            "{name}: {} at month end and now; no order restated",
            rate(&change.now)
        );
    }
    let points = change
        .points()
        .map(|p| format!(" ({p:+.1} pp)"))
        .unwrap_or_default();
    format!(
        "{name}: {} at month end → {} now{points}; {} order{}, {}",
        rate(&change.first),
        rate(&change.now),
        change.restated_orders,
        if change.restated_orders == 1 { "" } else { "s" },
        causes_text(causes)
    )
}

/// The causes in words: "12 claims filed in November 2026, 1 cancellation in December 2026".
pub fn causes_text(causes: &[CauseCount]) -> String {
    let why: Vec<String> = causes
        .iter()
        .map(|c| {
            let what = match (c.cause_type.as_str(), c.orders) {
                ("claim.filed", 1) => "claim filed".to_owned(),
                ("claim.filed", _) => "claims filed".to_owned(),
                ("order.cancelled", 1) => "cancellation".to_owned(),
                ("order.cancelled", _) => "cancellations".to_owned(),
                ("order.confirmed", 1) => "confirmation".to_owned(),
                ("order.confirmed", _) => "confirmations".to_owned(),
                (other, _) => format!("{other} events"),
            };
            format!("{} {what} in {}", c.orders, c.month.format("%B %Y"))
        })
        .collect();
    why.join(", ")
}
