//! The seeds' other KPIs (contract v2) through the running service on the mock cluster and
//! PostgreSQL: the gauges and histograms, the lists over HTTP, and an entity topic that is
//! not co-partitioned with the orders.

mod support;

use std::time::Duration;

use chrono::{TimeDelta, Utc};
use rdkafka::mocking::MockCluster;
use support::events::*;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v2_gauges_histograms_and_lists_follow_the_events_and_teams_past_the_cap_are_other() {
    // Arrange: orders on a 3-partition topic, reviews, couriers and leads on a 2-partition
    // entity topic (kafka.entity_topics: not co-partitioned, and that is allowed).
    let cluster = MockCluster::new(1).expect("mock cluster");
    cluster.create_topic("orders", 3, 1).expect("topic");
    cluster.create_topic("entities", 2, 1).expect("topic");
    let brokers = cluster.bootstrap_servers();
    let db = TestDb::create().await;
    let now = Utc::now();
    let ago = |minutes: i64| now - TimeDelta::minutes(minutes);
    // The smileys count for this month's contest, also just after midnight on the 1st.
    let smiley_at = |minutes: i64| same_shop_day(now, ago(minutes));
    let p = producer(&brokers);
    let entities: Vec<(String, Vec<u8>)> = vec![
        (
            "D-1".into(),
            rostered("D-1", "T-1", ago(60 * 24 * 40)).into_bytes(),
        ),
        (
            "D-2".into(),
            rostered("D-2", "T-2", ago(60 * 24 * 40)).into_bytes(),
        ),
        (
            "D-3".into(),
            rostered("D-3", "T-3", ago(60 * 24 * 40)).into_bytes(),
        ),
        // T-1: a yellow and a red smiley (index 0.5); T-2 and T-3 one yellow each.
        (
            "R-1".into(),
            review_posted("R-1", 5, Some("D-1"), smiley_at(3)).into_bytes(),
        ),
        (
            "R-1".into(),
            review_answered("R-1", smiley_at(3) + TimeDelta::minutes(2)).into_bytes(),
        ),
        (
            "D-1".into(),
            violation("D-1", "V-1", smiley_at(2)).into_bytes(),
        ),
        (
            "R-2".into(),
            review_posted("R-2", 5, Some("D-2"), smiley_at(3)).into_bytes(),
        ),
        (
            "R-3".into(),
            review_posted("R-3", 4, Some("D-3"), smiley_at(3)).into_bytes(),
        ),
        // A negative review nobody answered.
        (
            "R-4".into(),
            review_posted("R-4", 1, None, ago(5)).into_bytes(),
        ),
        (
            "L-1".into(),
            lead_captured("L-1", "cold", None, ago(50)).into_bytes(),
        ),
        (
            "L-1".into(),
            lead_changed("L-1", "hot", ago(40)).into_bytes(),
        ),
        (
            "L-2".into(),
            lead_captured("L-2", "warm", None, ago(30)).into_bytes(),
        ),
    ];
    produce(&p, "entities", &entities);
    let orders = vec![
        keyed(
            "A-1",
            created_by("A-1", "C-1", "10.00", "web", ago(60 * 24 * 40)),
        ),
        keyed(
            "A-2",
            created_by("A-2", "C-1", "10.00", "web", ago(60 * 24 * 2)),
        ),
        keyed(
            "A-3",
            created_by("A-3", "C-2", "10.00", "web", ago(60 * 24)),
        ),
        keyed("A-2", claim("A-2", "K-1", "quality", ago(180))),
        keyed("A-3", claim("A-3", "K-2", "delivery", ago(120))),
        keyed("A-3", resolved("A-3", "K-2", ago(60))),
        keyed(
            "A-2",
            claim_updated("A-2", "K-1", "investigating", ago(100)),
        ),
    ];
    produce(&p, "orders", &orders);
    let service = perfect_order::Service::start(settings(
        &brokers,
        &["orders"],
        &db.url,
        &[
            ("PERFECT_ORDER__KAFKA__ENTITY_TOPICS", "entities"),
            ("PERFECT_ORDER__WATCH__TEAM_LABELS", "2"),
        ],
    ))
    .await
    .expect("the service starts with an entity topic of another partition count");

    // Act + Assert: the gauges.
    let text = eventually("the v2 gauges", Duration::from_secs(30), || async {
        let (_, text) = http_get(service.http_addr, "/metrics").await;
        (metric(&text, "perfect_order_leads{temperature=\"warm\"}") == Some(1.0)
            && metric(&text, "perfect_order_leads{temperature=\"hot\"}") == Some(1.0)
            && metric(&text, "perfect_order_open_claims{category=\"quality\"}") == Some(1.0)
            && metric(
                &text,
                "perfect_order_team_friendliness_index{team=\"other\"}",
            )
            .is_some())
        .then_some(text)
    })
    .await;
    let m = |series: &str| metric(&text, series);
    assert_eq!(
        m("perfect_order_open_claims{category=\"delivery\"}"),
        Some(0.0)
    );
    assert_eq!(m("perfect_order_unanswered_negative_reviews"), Some(1.0));
    assert_eq!(m("perfect_order_leads{temperature=\"hot\"}"), Some(1.0));
    assert_eq!(m("perfect_order_leads{temperature=\"cold\"}"), Some(0.0));
    assert_eq!(m("perfect_order_repeat_customer_ratio"), Some(0.5));
    assert_eq!(
        m("perfect_order_team_friendliness_index{team=\"T-1\"}"),
        Some(0.5)
    );
    assert_eq!(
        m("perfect_order_team_friendliness_index{team=\"T-2\"}"),
        Some(1.0)
    );
    assert_eq!(
        m("perfect_order_team_friendliness_index{team=\"T-3\"}"),
        None,
        "past watch.team_labels, a team is summed under other"
    );
    assert_eq!(
        m("perfect_order_team_friendliness_index{team=\"other\"}"),
        Some(1.0)
    );
    assert_eq!(m("perfect_order_review_answer_seconds_count"), Some(1.0));
    assert_eq!(m("perfect_order_review_answer_seconds_sum"), Some(120.0));
    assert_eq!(m("perfect_order_claim_resolution_seconds_count"), Some(1.0));
    assert_eq!(
        m("perfect_order_claim_resolution_seconds_sum"),
        Some(3600.0)
    );
    assert!(
        !text.contains("courier=") && !text.contains("review_id"),
        "no id ever becomes a label"
    );

    // Every metric the service-KPI dashboard queries exists in the exposition.
    let dashboard = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy/grafana/dashboards/service-kpis.json");
    {
        let json = std::fs::read_to_string(dashboard).expect("read the dashboard");
        for (i, _) in json.match_indices("perfect_order_") {
            let name: String = json[i..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let base = ["_bucket", "_count", "_sum"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(&name);
            assert!(
                text.contains(&format!("# TYPE {base} ")),
                "a dashboard queries {name}, which the service does not export"
            );
        }
    }

    // The lists for people.
    let (status, body) = http_get(service.http_addr, "/api/open-claims").await;
    assert_eq!(status, 200);
    let open: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(open[0]["claim_id"], "K-1");
    assert_eq!(open[0]["stage"], "investigating");
    assert_eq!(open.as_array().map(Vec::len), Some(1));
    let (_, body) = http_get(service.http_addr, "/api/unanswered-negative-reviews").await;
    let unanswered: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(unanswered[0]["review_id"], "R-4");
    assert!(unanswered[0]["age_seconds"]
        .as_f64()
        .is_some_and(|a| a >= 290.0));
    service.stop().await;
}
