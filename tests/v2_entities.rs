//! The contract-v2 entity rules, read through the reference model (`support::reference`):
//! answer SLA, smileys, spend days, lead temperature, roster and stage as of an instant.

mod support;

use chrono::{DateTime, NaiveDate, Utc};
use perfect_order::domain::event::{ClaimStage, Temperature};
use perfect_order::domain::{decode, Decoded, EntityBatch, Event};
use support::reference::*;

fn at(local: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(&format!("{local}+03:00"))
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_default()
}

fn event(id: &str, type_name: &str, local: &str, data: &str) -> Event {
    let json = format!(
        r#"{{"specversion":"1.0","id":"{id}","source":"/t","type":"{type_name}","time":"{local}+03:00","data":{data}}}"#
    );
    match decode(json.as_bytes()) {
        Ok(Decoded::Known(e)) => e,
        other => panic!("{json} should decode: {other:?}"),
    }
}

#[test]
fn a_review_answered_after_25_hours_misses_the_24_hour_sla_and_one_at_24_meets_it() {
    let sla = chrono::TimeDelta::hours(24);
    let batch = EntityBatch::fold([
        event(
            "1",
            "review.posted",
            "2026-10-31T12:00:00",
            r#"{"review_id":"R-1","rating":2,"courier_id":"D-1"}"#,
        ),
        event(
            "2",
            "review.answered",
            "2026-11-01T13:00:00",
            r#"{"review_id":"R-1"}"#,
        ),
        event(
            "3",
            "review.posted",
            "2026-10-31T12:00:00",
            r#"{"review_id":"R-2","rating":4,"courier_id":"D-1"}"#,
        ),
        event(
            "4",
            "review.answered",
            "2026-11-01T12:00:00",
            r#"{"review_id":"R-2"}"#,
        ),
    ]);
    let (late, on_time) = (&batch.reviews["R-1"], &batch.reviews["R-2"]);
    assert_eq!(late.answer_seconds(), Some(25 * 3600));
    assert_eq!(late.answered_within(sla), Some(false));
    assert_eq!(on_time.answered_within(sla), Some(true));
    assert!(late.is_negative() && !on_time.is_negative());
    assert_eq!(late.yellow_smiley(4), None, "rated 2: no smiley");
    assert_eq!(on_time.yellow_smiley(4), Some("D-1"));
}

#[test]
fn a_spend_from_25_sep_to_4_oct_has_six_days_in_september_and_four_in_october() {
    let batch = EntityBatch::fold([event(
        "1",
        "marketing.spend",
        "2026-09-25T09:00:00",
        r#"{"spend_id":"S","amount":"1000","currency":"RUB","from":"2026-09-25","to":"2026-10-04"}"#,
    )]);
    let (months, total) = batch.spends["S"].days_by_month();
    let day = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap_or_default();
    assert_eq!(months, vec![(day("2026-09-01"), 6), (day("2026-10-01"), 4)]);
    assert_eq!(total, 10);
}

#[test]
fn a_lead_captured_cold_and_changed_to_hot_is_hot_at_month_end_and_absent_before_capture() {
    let lead = EntityBatch::fold([
        event(
            "2",
            "lead.changed",
            "2026-10-20T10:00:00",
            r#"{"lead_id":"L","temperature":"hot"}"#,
        ),
        event(
            "1",
            "lead.captured",
            "2026-10-02T10:00:00",
            r#"{"lead_id":"L","temperature":"cold"}"#,
        ),
    ])
    .leads
    .remove("L")
    .unwrap_or_default();
    assert_eq!(
        lead.temperature_before(at("2026-11-01T00:00:00")),
        Some(Temperature::Hot)
    );
    assert_eq!(
        lead.temperature_before(at("2026-10-10T00:00:00")),
        Some(Temperature::Cold)
    );
    assert_eq!(lead.temperature_before(at("2026-10-01T00:00:00")), None);
}

#[test]
fn a_roster_change_applies_from_its_event_time_and_a_stage_from_its_own() {
    let batch = EntityBatch::fold([
        event(
            "1",
            "courier.rostered",
            "2026-09-01T09:00:00",
            r#"{"courier_id":"D","team_id":"T-1"}"#,
        ),
        event(
            "2",
            "courier.rostered",
            "2026-10-20T00:00:00",
            r#"{"courier_id":"D","team_id":"T-2"}"#,
        ),
        event(
            "3",
            "claim.updated",
            "2026-10-10T11:00:00",
            r#"{"claim_id":"K","order_id":"A","stage":"investigating"}"#,
        ),
    ]);
    let courier = &batch.couriers["D"];
    assert_eq!(courier.team_at(at("2026-10-19T23:59:59")), Some("T-1"));
    assert_eq!(courier.team_at(at("2026-10-20T00:00:00")), Some("T-2"));
    assert_eq!(
        courier.current().map(|(_, _, r)| r.team_id.as_str()),
        Some("T-2")
    );
    let claim = &batch.claims["K"];
    assert_eq!(
        claim.stage_before(at("2026-10-10T11:00:00")),
        ClaimStage::Registered
    );
    assert_eq!(
        claim.stage_before(at("2026-11-01T00:00:00")),
        ClaimStage::Investigating
    );
}
