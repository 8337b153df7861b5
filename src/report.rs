//! `perfect-order report`: the monthly KPI table in the terminal, from the SQL views.

use std::fmt::Write;

use crate::store::service::{MonthRow, ServiceMonths};

const CATEGORIES: [&str; 4] = ["quality", "completeness", "delivery", "service"];

fn change(change: Option<f64>) -> String {
    change.map_or("—".into(), |c| format!("{:+.0}%", c * 100.0))
}

/// Renders the two tables: perfect order per month, and claims per category with the
/// month-over-month change (the seed's "quality −21 %" view).
pub fn render(rows: &[MonthRow]) -> String {
    let mut out = String::new();
    if rows.is_empty() {
        return "No data yet: no order has been delivered and no claim filed.\n".into();
    }
    let _ = writeln!(out, "Perfect order by month of delivery");
    let _ = writeln!(
        out,
        "{:<8} {:>9} {:>8} {:>8} {:>7} {:>8} {:>12} {:>8} {:>8} {:>9}",
        "month",
        "fulfilled",
        "perfect",
        "PO rate",
        "Δ pp",
        "quality",
        "completeness",
        "delivery",
        "service",
        "cancelled"
    );
    let mut previous_rate: Option<f64> = None;
    for r in rows {
        let rate = r
            .po_rate
            .map_or("—".into(), |v| format!("{:.1}%", v * 100.0));
        let delta = match (r.po_rate, previous_rate) {
            (Some(now), Some(before)) => format!("{:+.1}", (now - before) * 100.0),
            _ => "—".into(),
        };
        let _ = writeln!(
            out,
            "{:<8} {:>9} {:>8} {:>8} {:>7} {:>8} {:>12} {:>8} {:>8} {:>9}",
            r.month.format("%Y-%m"),
            r.fulfilled,
            r.perfect,
            rate,
            delta,
            r.deviations[0],
            r.deviations[1],
            r.deviations[2],
            r.deviations[3],
            r.cancelled
        );
        previous_rate = r.po_rate.or(previous_rate);
    }
    let _ = writeln!(
        out,
        "\nPerfect-order components by month of delivery (share of fulfilled orders)"
    );
    let _ = writeln!(
        out,
        "{:<8} {:>16} {:>8} {:>8} {:>11} {:>8} {:>9}",
        "month", "confirmed in SLA", "on time", "in full", "claim-free", "PO rate", "PO index"
    );
    let share = |v: Option<f64>| v.map_or("—".into(), |v| format!("{:.1}%", v * 100.0));
    for r in rows {
        let _ = writeln!(
            out,
            "{:<8} {:>16} {:>8} {:>8} {:>11} {:>8} {:>9}",
            r.month.format("%Y-%m"),
            share(r.components[0]),
            share(r.components[1]),
            share(r.components[2]),
            share(r.components[3]),
            share(r.po_rate),
            share(r.po_index)
        );
    }
    let _ = writeln!(
        out,
        "PO rate: orders with no deviation at all; PO index: the product of the four rates \
         (APQC/SCOR style), above the rate when deviations fall on different orders, below it \
         when they fall on the same ones."
    );
    let _ = writeln!(
        out,
        "\nClaims by month of filing (change vs previous month)"
    );
    let _ = write!(out, "{:<8}", "month");
    for c in CATEGORIES {
        let _ = write!(out, " {c:>19}");
    }
    let _ = writeln!(out);
    for r in rows {
        let _ = write!(out, "{:<8}", r.month.format("%Y-%m"));
        for (n, c) in r.claims.iter().zip(r.claims_change) {
            let cell = format!("{n} ({})", change(c));
            let _ = write!(out, " {cell:>19}");
        }
        let _ = writeln!(out);
    }
    out
}

/// `12.3 h`, `45 min`, `30 s`: a whole-second duration for the terminal.
fn secs(v: Option<i64>) -> String {
    match v {
        None => "—".into(),
        Some(s) if s.abs() >= 86_400 => format!("{:.1} d", s as f64 / 86_400.0),
        Some(s) if s.abs() >= 3_600 => format!("{:.1} h", s as f64 / 3_600.0),
        Some(s) if s.abs() >= 60 => format!("{} min", s / 60),
        Some(s) => format!("{s} s"),
    }
}

fn share(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{:.1}%", v * 100.0))
}

fn money(v: Option<f64>) -> String {
    v.map_or("—".into(), |v| format!("{v:.2}"))
}

/// One terminal table: a title, the column headers (a leading `<` aligns left, else right)
/// and the rows, or `empty` when there are none.
fn table(out: &mut String, title: &str, empty: &str, columns: &[&str], rows: Vec<Vec<String>>) {
    let _ = writeln!(out, "\n{title}");
    if rows.is_empty() {
        let _ = writeln!(out, "  {empty}");
        return;
    }
    let names: Vec<&str> = columns.iter().map(|c| c.trim_start_matches('<')).collect();
    let widths: Vec<usize> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            rows.iter()
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .chain([name.chars().count()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: Vec<&str>| {
        let parts: Vec<String> = cells
            .iter()
            .zip(columns.iter().zip(&widths))
            .map(|(cell, (column, width))| {
                if column.starts_with('<') {
                    format!("{cell:<width$}")
                } else {
                    format!("{cell:>width$}")
                }
            })
            .collect();
        parts.join(" ").trim_end().to_owned()
    };
    let _ = writeln!(out, "{}", line(names.clone()));
    for row in &rows {
        let _ = writeln!(out, "{}", line(row.iter().map(String::as_str).collect()));
    }
}

/// The restatements of the report's months: each month's rate at month end next to today's,
/// and why they differ.
pub fn render_restatements(months: &[crate::store::MonthRestatement]) -> String {
    let mut out = String::new();
    let rows = months
        .iter()
        .map(|m| {
            vec![
                year_month(&m.month),
                share(m.at_month_end.po_rate),
                share(m.now.po_rate),
                m.change_points
                    .filter(|_| m.restated_orders > 0)
                    .map_or("—".into(), |p| format!("{p:+.1} pp")),
                m.restated_orders.to_string(),
                if m.restated_orders == 0 {
                    "—".into()
                } else {
                    crate::store::causes_text(&m.causes)
                },
            ]
        })
        .collect();
    table(
        &mut out,
        "Restatements: the perfect-order rate at month end (facts up to it) and now \
         (perfect-order explain ORDER_ID for one order; GET /api/restatements?month=YYYY-MM \
         for the orders)",
        "no months",
        &[
            "<month",
            "at month end",
            "now",
            "change",
            "restated orders",
            "<why",
        ],
        rows,
    );
    out
}

/// Renders the contract-v2 monthly views (the seeds' other KPIs), one table each.
pub fn render_service(m: &ServiceMonths) -> String {
    let mut out = String::new();
    claims_journal_table(&mut out, m);
    team_ranking_table(&mut out, m);
    reviews_table(&mut out, m);
    repeat_customers_table(&mut out, m);
    acquisition_table(&mut out, m);
    leads_table(&mut out, m);
    out
}

/// A month as `YYYY-MM`.
fn year_month(d: &chrono::NaiveDate) -> String {
    d.format("%Y-%m").to_string()
}

/// The claims journal.
fn claims_journal_table(out: &mut String, m: &ServiceMonths) {
    table(
        out,
        "Claims journal (claims_journal_monthly)",
        "no claims",
        &[
            "<month",
            "<category",
            "filed",
            "resolved",
            "open",
            "registered",
            "investigating",
            "action_taken",
            "p50",
            "p95",
        ],
        m.claims_journal
            .iter()
            .map(|r| {
                vec![
                    year_month(&r.month),
                    r.category.clone(),
                    r.filed.to_string(),
                    r.resolved.to_string(),
                    r.open_at_month_end.to_string(),
                    r.open_registered.to_string(),
                    r.open_investigating.to_string(),
                    r.open_action_taken.to_string(),
                    secs(r.resolve_p50_seconds),
                    secs(r.resolve_p95_seconds),
                ]
            })
            .collect(),
    );
}

/// The friendly-driver contest.
fn team_ranking_table(out: &mut String, m: &ServiceMonths) {
    table(
        out,
        "Friendly-driver contest (team_ranking_monthly)",
        "no smileys",
        &[
            "<month", "rank", "<team", "yellow", "red", "index", "size", "<",
        ],
        m.team_ranking
            .iter()
            .map(|r| {
                let note = match (r.winner, r.size_flagged) {
                    (true, true) => "winner (size flagged)",
                    (true, false) => "winner",
                    (false, true) => "(size flagged)",
                    (false, false) => "",
                };
                vec![
                    year_month(&r.month),
                    r.rank.to_string(),
                    r.team_id.clone(),
                    r.yellow.to_string(),
                    r.red.to_string(),
                    r.friendliness_index
                        .map_or("—".into(), |v| format!("{v:.2}")),
                    r.team_size.to_string(),
                    note.to_owned(),
                ]
            })
            .collect(),
    );
}

/// Review response.
fn reviews_table(out: &mut String, m: &ServiceMonths) {
    table(
        out,
        "Review response (review_response_monthly)",
        "no reviews",
        &[
            "<month",
            "reviews",
            "answered",
            "within SLA",
            "p50",
            "p95",
            "negative",
            "unanswered negative",
        ],
        m.reviews
            .iter()
            .map(|r| {
                vec![
                    year_month(&r.month),
                    r.reviews.to_string(),
                    r.answered.to_string(),
                    share(Some(r.within_sla_share)),
                    secs(r.answer_p50_seconds),
                    secs(r.answer_p95_seconds),
                    r.negative.to_string(),
                    r.unanswered_negative.to_string(),
                ]
            })
            .collect(),
    );
}

/// Repeat customers, with order to dispatch.
fn repeat_customers_table(out: &mut String, m: &ServiceMonths) {
    table(
        out,
        "Repeat customers and order to dispatch (repeat_customers_monthly, order_dispatch_monthly)",
        "no orders",
        &[
            "<month",
            "customers",
            "returning",
            "share",
            "orders",
            "their share",
            "dispatch p50",
            "dispatch p95",
        ],
        m.repeat_customers
            .iter()
            .map(|r| {
                let d = m.dispatch.iter().find(|d| d.month == r.month);
                vec![
                    year_month(&r.month),
                    r.customers.to_string(),
                    r.returning_customers.to_string(),
                    share(Some(r.returning_customer_share)),
                    r.orders.to_string(),
                    share(Some(r.returning_order_share)),
                    secs(d.and_then(|d| d.dispatch_p50_seconds)),
                    secs(d.and_then(|d| d.dispatch_p95_seconds)),
                ]
            })
            .collect(),
    );
}

/// CAC against the average order value.
fn acquisition_table(out: &mut String, m: &ServiceMonths) {
    table(
        out,
        "CAC vs average order value (acquisition_monthly)",
        "no spend and no orders",
        &[
            "<month",
            "<channel",
            "spend",
            "new",
            "CAC",
            "fulfilled",
            "revenue",
            "AOV",
            "CAC/AOV",
        ],
        m.acquisition
            .iter()
            .map(|r| {
                vec![
                    year_month(&r.month),
                    r.channel.clone(),
                    format!("{:.2}", r.spend),
                    r.new_customers.to_string(),
                    money(r.cac),
                    r.fulfilled_orders.to_string(),
                    format!("{:.2}", r.revenue),
                    money(r.aov),
                    money(r.cac_to_aov),
                ]
            })
            .collect(),
    );
}

/// The lead base at each month end.
fn leads_table(out: &mut String, m: &ServiceMonths) {
    table(
        out,
        "Lead base at month end (lead_base_monthly)",
        "no leads",
        &[
            "<month",
            "leads",
            "new",
            "hot",
            "warm",
            "cold",
            "warm+hot",
            "growth",
            "converted",
        ],
        m.leads
            .iter()
            .map(|r| {
                vec![
                    year_month(&r.month),
                    r.leads.to_string(),
                    r.new_leads.to_string(),
                    r.hot.to_string(),
                    r.warm.to_string(),
                    r.cold.to_string(),
                    share(Some(r.warm_hot_share)),
                    r.growth
                        .map_or("—".into(), |g| format!("{:+.1}%", g * 100.0)),
                    r.converted.to_string(),
                ]
            })
            .collect(),
    );
}

/// A deciding fact: "order.confirmed at … (source …, id …, read from … offset …)".
fn deciding(d: &crate::domain::explain::Deciding) -> String {
    let read = d.read.as_ref().map_or_else(String::new, |r| {
        format!(
            ", read from {} partition {} offset {}, stored {}",
            r.topic,
            r.partition,
            r.offset,
            r.stored_at.format("%Y-%m-%d %H:%M:%S UTC")
        )
    });
    format!(
        "{} at {} (source {}, id {}{read})",
        d.event_type,
        d.time.format("%Y-%m-%d %H:%M:%S UTC"),
        d.source,
        d.id
    )
}

/// `perfect-order explain`: one order's verdict, each criterion with the event that decided
/// it and where it was read, and the order's timeline with each event's arrival.
pub fn render_order(story: &crate::store::OrderStory) -> String {
    use crate::domain::explain::{Maturity, Outcome};
    let e = &story.explanation;
    let mut out = String::new();
    let maturity = match e.maturity {
        Maturity::Open => "open: waiting for the delivery".to_owned(),
        Maturity::Provisional { until } => {
            format!(
                "provisional until {}",
                until.format("%Y-%m-%d %H:%M:%S UTC")
            )
        }
        Maturity::Final => "final".to_owned(),
    };
    let _ = writeln!(
        out,
        "order {}: {} ({maturity})",
        e.order_id,
        e.verdict.as_str()
    );
    if let Some(day) = e.counts_for_day {
        let _ = writeln!(
            out,
            "counts for the day {day} (its delivery day, shop zone)"
        );
    }
    let _ = writeln!(out);
    for c in &e.criteria {
        let mark = match c.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::NotYetKnown => "not yet known",
        };
        let _ = writeln!(
            out,
            "  {:<13} {mark:<13} {} (rule: {})",
            c.name, c.measured, c.rule
        );
        if let Some(d) = &c.deciding {
            let _ = writeln!(out, "  {:<13} decided by {}", "", deciding(d));
        }
    }
    if !e.restatements.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "restated (counted differently today than when its period was first complete):"
        );
    }
    for r in &e.restatements {
        let period = match r.period_kind {
            crate::domain::restatement::Period::Day => format!("the day {}", r.period),
            crate::domain::restatement::Period::Month => {
                format!("the month {}", r.period.format("%Y-%m"))
            }
        };
        let _ = writeln!(
            out,
            "  {period}: {} at its end, {} now; changed by {}",
            r.first.as_str(),
            r.now.as_str(),
            deciding(&r.cause)
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "timeline (event time order; stored = when it arrived):"
    );
    for t in &story.timeline {
        let late = t.stored_at - t.time;
        let dups = match t.duplicates {
            0 => String::new(),
            n => format!(", {n} duplicate(s) dropped"),
        };
        let _ = writeln!(
            out,
            "  {}  {:<16} stored {} ({} after){dups}  {}#{}  {} [{}] @{}",
            t.time.format("%Y-%m-%d %H:%M:%S"),
            t.event_type,
            t.stored_at.format("%Y-%m-%d %H:%M:%S"),
            crate::domain::explain::duration(late),
            t.source,
            t.id,
            t.topic,
            t.partition,
            t.offset
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn month(
        m: u32,
        fulfilled: i64,
        perfect: i64,
        claims: [i64; 4],
        claims_change: [Option<f64>; 4],
    ) -> MonthRow {
        MonthRow {
            month: chrono::NaiveDate::from_ymd_opt(2026, m, 1).expect("valid"),
            fulfilled,
            perfect,
            po_rate: (fulfilled > 0).then(|| perfect as f64 / fulfilled as f64),
            deviations: [0; 4],
            cancelled: 0,
            claims,
            claims_change,
            components: [Some(0.96), Some(0.9), Some(0.98), Some(0.95)],
            po_index: Some(0.96 * 0.9 * 0.98 * 0.95),
        }
    }

    #[test]
    fn the_report_shows_each_months_rate_at_month_end_next_to_now_and_why_it_moved() {
        use crate::store::{CauseCount, Figure, MonthRestatement};
        let figure = Figure::of;
        let day = |m: u32| chrono::NaiveDate::from_ymd_opt(2026, m, 1).expect("valid");
        let restated = MonthRestatement {
            month: day(10),
            summary: String::new(),
            at_month_end: figure(951, 1000),
            now: figure(948, 1000),
            change_points: Some(-0.3),
            restated_orders: 3,
            causes: vec![
                CauseCount {
                    cause_type: "claim.filed".into(),
                    month: day(11),
                    orders: 2,
                },
                CauseCount {
                    cause_type: "order.cancelled".into(),
                    month: day(11),
                    orders: 1,
                },
            ],
            days: Vec::new(),
            orders: Vec::new(),
            next: None,
        };
        let quiet = MonthRestatement {
            month: day(11),
            at_month_end: figure(90, 100),
            now: figure(90, 100),
            change_points: Some(0.0),
            restated_orders: 0,
            causes: Vec::new(),
            ..restated.clone()
        };
        let text = render_restatements(&[restated, quiet]);
        let lines: Vec<&str> = text.lines().skip(3).collect();
        assert_eq!(
            lines,
            [
                "2026-10        95.1% 94.8% -0.3 pp               3 2 claims filed in November 2026, 1 cancellation in November 2026",
                "2026-11        90.0% 90.0%       —               0 —",
            ],
            "{text}"
        );
    }

    #[test]
    fn the_report_shows_the_components_next_to_both_formulas() {
        let text = render(&[month(10, 200, 190, [0; 4], [None; 4])]);
        let line = text
            .lines()
            .skip_while(|l| !l.starts_with("Perfect-order components"))
            .nth(2)
            .expect("a month's components");
        assert_eq!(
            line.split_whitespace().collect::<Vec<_>>(),
            ["2026-10", "96.0%", "90.0%", "98.0%", "95.0%", "95.0%", "80.4%"]
        );
        assert!(text.contains("PO index: the product of the four rates"));
    }

    #[test]
    fn report_shows_rates_and_month_over_month_claim_changes() {
        let text = render(&[
            month(9, 100, 92, [100, 50, 40, 20], [None; 4]),
            month(
                10,
                200,
                190,
                [79, 18, 31, 15],
                [Some(-0.21), Some(-0.64), Some(-0.225), Some(-0.25)],
            ),
        ]);
        assert!(text.contains("92.0%") && text.contains("95.0%"), "{text}");
        assert!(text.contains("+3.0"), "rate change in points: {text}");
        assert!(
            text.contains("79 (-21%)") && text.contains("18 (-64%)"),
            "{text}"
        );
    }

    #[test]
    fn the_service_report_shows_every_v2_view_and_says_when_one_is_empty() {
        use crate::store::service::*;
        let month = chrono::NaiveDate::from_ymd_opt(2026, 10, 1).expect("valid");
        let months = ServiceMonths {
            team_ranking: vec![TeamRow {
                month,
                team_id: "T-09".into(),
                yellow: 2,
                red: 0,
                friendliness_index: Some(1.0),
                team_size: 9,
                size_flagged: true,
                rank: 1,
                winner: true,
            }],
            reviews: vec![ReviewMonth {
                month,
                reviews: 4,
                answered: 3,
                answered_within_sla: 2,
                within_sla_share: 0.5,
                answer_p50_seconds: Some(86_400),
                answer_p95_seconds: Some(90_000),
                negative: 2,
                unanswered_negative: 1,
            }],
            ..ServiceMonths::default()
        };
        let text = render_service(&months);
        assert!(text.contains("winner (size flagged)"), "{text}");
        assert!(text.contains("50.0%") && text.contains("1.0 d"), "{text}");
        assert!(
            text.contains("no claims") && text.contains("no leads"),
            "{text}"
        );
    }

    #[test]
    fn an_empty_database_says_so() {
        assert!(render(&[]).starts_with("No data yet"));
    }
}
