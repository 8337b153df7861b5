//! Explaining one order over HTTP (`GET /api/orders/{id}`, the console's order page) and in
//! the terminal (`perfect-order explain`), from a store the product's batch transaction wrote.

mod support;

use std::process::Command;
use std::sync::Arc;

use perfect_order::batch::{prepare, Record};
use perfect_order::domain::Rules;
use perfect_order::store::{AnyStore, Store};
use support::events::*;
use tower::ServiceExt as _;

/// A SQLite store holding order A-7, confirmed 41 minutes after its creation (SLA 30).
async fn store_with_a_late_confirmation(dir: &std::path::Path) -> (AnyStore, String) {
    let url = format!("sqlite://{}", dir.join("shop.db").display());
    let store = AnyStore::connect(&url, 2).await.expect("connect");
    store.migrate().await.expect("migrate");
    store
        .write_settings(&Rules::default())
        .await
        .expect("settings");
    let t = t0();
    commit(
        &store,
        0,
        vec![
            created("A-7", t),
            confirmed("A-7", t + minutes(41)),
            shipped("A-7", t + minutes(90)),
            delivered("A-7", t + minutes(180)),
        ],
    )
    .await;
    (store, url)
}

/// Commits `events` to partition 2 of shop.orders from `first_offset` on.
async fn commit(store: &AnyStore, first_offset: i64, events: Vec<String>) {
    let records: Vec<Record> = events
        .into_iter()
        .enumerate()
        .map(|(i, value)| Record {
            topic: Arc::from("shop.orders"),
            partition: 2,
            offset: first_offset + i as i64,
            key: Some(b"A-7".to_vec()),
            payload: Some(value.into_bytes()),
            headers: Vec::new(),
        })
        .collect();
    let limits = perfect_order::config::Settings::load_from(None, Vec::<(String, String)>::new())
        .expect("default settings")
        .decode
        .limits(chrono::Utc::now());
    store
        .commit_batch(&prepare(records, &limits), &Rules::default())
        .await
        .expect("commit");
}

fn app(store: AnyStore) -> axum::Router {
    perfect_order::http::router(Arc::new(perfect_order::http::AppState {
        store,
        metrics: perfect_order::metrics::Metrics::new(3).expect("metrics"),
        readiness: Arc::new(perfect_order::ingest::Readiness::new(
            std::time::Duration::from_secs(30),
        )),
        rules: Rules::default(),
    }))
}

async fn get(app: &axum::Router, path: &str) -> (u16, String) {
    let request = axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .expect("request");
    let response = app.clone().oneshot(request).await.expect("answer");
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .expect("body");
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn the_order_api_names_the_deciding_event_and_an_unknown_id_answers_404() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, _) = store_with_a_late_confirmation(dir.path()).await;
    let app = app(store);

    let (status, body) = get(&app, "/api/orders/A-7").await;
    assert_eq!(status, 200, "{body}");
    let order: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(order["verdict"], "imperfect");
    assert_eq!(order["maturity"]["state"], "final");
    let confirmation = &order["criteria"][0];
    assert_eq!(confirmation["name"], "confirmation");
    assert_eq!(confirmation["outcome"], "fail");
    assert_eq!(confirmation["measured"], "confirmed after 41 min");
    assert_eq!(confirmation["rule"], "SLA 30 min");
    assert_eq!(confirmation["deciding"]["type"], "order.confirmed");
    assert_eq!(confirmation["deciding"]["id"], "A-7-confirmed");
    assert_eq!(confirmation["deciding"]["read"]["topic"], "shop.orders");
    assert_eq!(confirmation["deciding"]["read"]["partition"], 2);
    assert_eq!(confirmation["deciding"]["read"]["offset"], 1);
    assert_eq!(order["timeline"].as_array().map(Vec::len), Some(4));
    assert!(order["timeline"][0]["stored_at"].is_string());

    let (status, body) = get(&app, "/api/orders/A-8").await;
    assert_eq!(status, 404);
    let error: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert!(
        error["error"]
            .as_str()
            .is_some_and(|e| e.contains("\"A-8\"") && e.contains("check the id")),
        "{body}"
    );

    // The console answers the order's page (it reads the API above).
    let (status, page) = get(&app, "/orders/A-7").await;
    assert_eq!(status, 200);
    assert!(page.contains("perfect-order"));
}

#[tokio::test]
async fn explain_prints_each_criterion_with_its_deciding_event_and_the_timeline() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, url) = store_with_a_late_confirmation(dir.path()).await;
    drop(store);
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_perfect-order"))
            .arg("explain")
            .args(args)
            .env("PERFECT_ORDER__DATABASE__URL", &url)
            .env("PERFECT_ORDER__LOG__LEVEL", "warn")
            .output()
            .expect("run explain")
    };
    let out = run(&["A-7"]);
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("order A-7: imperfect (final)"), "{text}");
    assert!(
        text.contains("FAIL") && text.contains("confirmed after 41 min (rule: SLA 30 min)"),
        "{text}"
    );
    assert!(
        text.contains("decided by order.confirmed at 2026-")
            && text.contains("read from shop.orders partition 2 offset 1"),
        "{text}"
    );
    assert_eq!(
        text.lines()
            .skip_while(|l| !l.starts_with("timeline"))
            .filter(|l| l.contains(" stored 20"))
            .count(),
        4,
        "the timeline's four events, each with its arrival: {text}"
    );

    let json = run(&["A-7", "--json"]);
    let order: serde_json::Value = serde_json::from_slice(&json.stdout).expect("JSON");
    assert_eq!(order["criteria"][0]["outcome"], "fail");

    let unknown = run(&["A-8"]);
    assert!(!unknown.status.success());
    let error = String::from_utf8_lossy(&unknown.stderr);
    assert!(error.contains("no order \"A-8\" is stored"), "{error}");
}

/// A day's and a month's figures lead to their orders: filtered by verdict and category, a
/// page at a time with the cursor of the next page; a malformed filter names itself.
#[tokio::test]
async fn the_orders_of_a_day_or_a_month_come_filtered_and_a_page_at_a_time() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, _) = store_with_a_late_confirmation(dir.path()).await;
    let t = t0();
    let mut later = Vec::new();
    for order in ["A-1", "A-2", "A-3"] {
        later.extend([
            created(order, t),
            confirmed(order, t + minutes(5)),
            delivered(order, t + minutes(180)),
        ]);
    }
    commit(&store, 4, later).await;
    let app = app(store);
    let day = Rules::default().day_of(t + minutes(180));
    let ids = |page: &serde_json::Value| -> Vec<String> {
        page["orders"]
            .as_array()
            .expect("orders")
            .iter()
            .map(|o| o["order_id"].as_str().expect("id").to_owned())
            .collect()
    };

    let (status, body) = get(
        &app,
        &format!("/api/days/{day}/orders?verdict=imperfect&category=service"),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let page: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(ids(&page), ["A-7"]);
    assert!(page["next"].is_null());

    let month = &day.to_string()[..7];
    let mut seen = Vec::new();
    let mut path = format!("/api/months/{month}/orders?verdict=perfect&limit=2");
    loop {
        let (status, body) = get(&app, &path).await;
        assert_eq!(status, 200, "{body}");
        let page: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        seen.extend(ids(&page));
        match page["next"].as_str() {
            Some(next) => {
                path = format!("/api/months/{month}/orders?verdict=perfect&limit=2&after={next}")
            }
            None => break,
        }
    }
    assert_eq!(seen, ["A-1", "A-2", "A-3"], "two pages, nothing twice");

    for (query, names) in [
        ("/api/days/2026-02-30/orders", "YYYY-MM-DD"),
        ("/api/months/2026-13/orders", "YYYY-MM"),
        (
            &format!("/api/days/{day}/orders?verdict=late") as &str,
            "verdict=",
        ),
        (
            &format!("/api/days/{day}/orders?category=speed"),
            "category=",
        ),
        (&format!("/api/days/{day}/orders?after=nonsense"), "after="),
    ] {
        let (status, body) = get(&app, query).await;
        assert_eq!(status, 400, "{query}");
        assert!(body.contains(names), "{query}: {body}");
    }
    let (status, _) = get(&app, &format!("/days/{day}/orders?verdict=imperfect")).await;
    assert_eq!(status, 200, "the console's list page");
}

/// A month's restatement over HTTP and on the order's page and in the terminal: order M-1,
/// delivered on 30 October and perfect at month end, got a claim filed on 3 November.
#[tokio::test]
async fn a_claim_filed_after_the_month_shows_as_its_restatement_in_the_api_the_order_page_and_explain(
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let (store, url) = store_with_a_late_confirmation(dir.path()).await;
    let mut events = perfect_lifecycle("M-1", msk("2026-10-30T10:00:00"));
    events.push(claim("M-1", "K-9", "quality", msk("2026-11-03T09:00:00")));
    commit(&store, 4, events).await;
    let app = app(store);

    let (status, body) = get(&app, "/api/restatements?month=2026-10").await;
    assert_eq!(status, 200, "{body}");
    let month: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(month["restated_orders"], 1);
    let restated = &month["orders"][0];
    assert_eq!(restated["order_id"], "M-1");
    assert_eq!(
        (&restated["first_verdict"], &restated["now_verdict"]),
        (&"perfect".into(), &"imperfect".into())
    );
    assert_eq!(restated["cause_type"], "claim.filed");
    assert_eq!(restated["cause_id"], "K-9-filed");
    assert_eq!(
        (&restated["topic"], &restated["offset"]),
        (&"shop.orders".into(), &8.into()),
        "where the claim was read"
    );
    assert!(
        month["summary"]
            .as_str()
            .is_some_and(|s| s.ends_with("1 order, 1 claim filed in November 2026")),
        "{body}"
    );

    let (status, body) = get(&app, "/api/restatements?month=2026-13").await;
    assert_eq!(status, 400);
    assert!(body.contains("YYYY-MM"), "{body}");

    let (_, body) = get(&app, "/api/orders/M-1").await;
    let order: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    let kinds: Vec<&str> = order["restatements"]
        .as_array()
        .expect("restatements")
        .iter()
        .filter_map(|r| r["period_kind"].as_str())
        .collect();
    assert_eq!(kinds, ["day", "month"]);
    assert_eq!(order["restatements"][1]["cause"]["read"]["offset"], 8);

    let out = Command::new(env!("CARGO_BIN_EXE_perfect-order"))
        .args(["explain", "M-1"])
        .env("PERFECT_ORDER__DATABASE__URL", &url)
        .env("PERFECT_ORDER__LOG__LEVEL", "warn")
        .output()
        .expect("run explain");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "the month 2026-10: perfect at its end, imperfect now; changed by claim.filed at \
             2026-11-03 06:00:00 UTC"
        ),
        "{text}"
    );
}
