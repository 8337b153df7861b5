//! The web console in a real browser (Debian's headless Chromium): the tiles show the numbers
//! the API returns, the on-call table lists the stuck order; a screenshot is saved to
//! target/console.png for a person to look at.

mod support;

use std::process::Command;

use support::*;

fn chromium(args: &[String]) -> String {
    let binary = std::env::var("CHROMIUM").unwrap_or_else(|_| "chromium".into());
    let profile = tempfile::tempdir().expect("profile dir");
    let out = Command::new(&binary)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
        ])
        .args([
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .args(["--window-size=1400,1100", "--virtual-time-budget=8000"])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{binary} must be on PATH (Debian package chromium; scripts/test installs it): {e}"
            )
        });
    assert!(
        out.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The text inside the element with this id in a dumped DOM.
fn element_text<'a>(dom: &'a str, id: &str) -> &'a str {
    let marker = format!("id=\"{id}\"");
    let start = dom
        .find(&marker)
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let open = start + dom[start..].find('>').expect("tag end") + 1;
    let close = open + dom[open..].find('<').expect("element end");
    dom[open..close].trim()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_tiles_show_the_numbers_the_api_returns() {
    // Arrange: one perfect and one late order delivered in the last hours, one stuck order.
    let fixture = console_fixture("STUCK-42").await;
    let service = &fixture.service;
    let (_, body) = http_get(service.http_addr, "/api/dashboard").await;
    let api: serde_json::Value = serde_json::from_str(&body).expect("dashboard JSON");
    let url = format!("http://{}/", service.http_addr);

    // Act: a real browser renders the page and runs its script.
    let dom = tokio::task::spawn_blocking({
        let url = url.clone();
        move || chromium(&["--dump-dom".into(), url])
    })
    .await
    .expect("browser ran");
    let screenshot = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("console.png");
    tokio::task::spawn_blocking({
        let arg = format!("--screenshot={}", screenshot.display());
        move || chromium(&[arg, url])
    })
    .await
    .expect("browser ran");

    // Assert
    assert!(
        dom.contains("data-loaded=\"true\""),
        "the console's script loaded the API"
    );
    let rate_7d = api["po_rate"]["7d"].as_f64().expect("a 7-day rate");
    assert_eq!(
        element_text(&dom, "tile-po-7d"),
        format!("{:.1} %", rate_7d * 100.0)
    );
    assert_eq!(
        element_text(&dom, "tile-awaiting"),
        api["awaiting_confirmation"].to_string()
    );
    let index = api["components_30d"]["index"].as_f64().expect("the index");
    assert_eq!(
        element_text(&dom, "component-index"),
        format!("{:.1} %", index * 100.0),
        "the components' card shows the multiplicative index"
    );
    assert!(element_text(&dom, "tile-over-sla").starts_with(&format!("{} ·", api["over_sla"])));
    let link = "<a href=\"/orders/STUCK-42\">STUCK-42</a>";
    assert!(
        dom.contains(&format!("<td>{link}</td>")),
        "the on-call table lists the stuck order, linked to its page"
    );
    // The seeds' other KPIs: the tile, the contest and the list show what /api/service says.
    let (_, body) = http_get(service.http_addr, "/api/service").await;
    let v2: serde_json::Value = serde_json::from_str(&body).expect("service JSON");
    assert_eq!(
        element_text(&dom, "tile-unanswered"),
        v2["figures"]["unanswered_negative_reviews"].to_string()
    );
    assert_eq!(v2["figures"]["unanswered_negative_reviews"], 1);
    assert!(
        dom.contains("<td>T-1</td>"),
        "the contest table lists team T-1"
    );
    assert!(
        dom.contains("<td>R-2</td>"),
        "the unanswered negative review is listed"
    );
    assert!(
        std::fs::metadata(&screenshot)
            .map(|m| m.len() > 10_000)
            .unwrap_or(false),
        "screenshot saved"
    );
    fixture.service.stop().await;
}

/// The DOM of `url` once the page's script has run.
async fn dump_dom(url: String) -> String {
    tokio::task::spawn_blocking(move || chromium(&["--dump-dom".into(), url]))
        .await
        .expect("browser ran")
}

/// From the on-call list to one order's page: the page a person reaches by clicking the stuck
/// order says why it stands where it does (open, its confirmation not yet known) with its
/// timeline; an unknown id says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_order_page_opens_from_the_on_call_list_and_a_days_orders_from_its_chart_point() {
    let fixture = console_fixture("STUCK-43").await;
    let base = format!("http://{}", fixture.service.http_addr);
    let console = dump_dom(format!("{base}/")).await;
    let on_call = &console[console
        .find("id=\"late-orders\"")
        .expect("the on-call list")..];
    let start = on_call.find("<a href=\"").expect("a linked order") + "<a href=\"".len();
    let href = &on_call[start..start + on_call[start..].find('"').expect("link end")];
    assert_eq!(href, "/orders/STUCK-43");

    let page = dump_dom(format!("{base}{href}")).await;
    assert!(
        page.contains("data-loaded=\"true\""),
        "the order page loaded the API"
    );
    assert_eq!(element_text(&page, "order-title"), "Order STUCK-43");
    assert_eq!(element_text(&page, "order-verdict-value"), "open");
    assert!(
        page.contains("not confirmed") && page.contains("… not yet known"),
        "the confirmation criterion waits for its event"
    );
    assert!(
        page.contains("order.created"),
        "the timeline lists the order's creation"
    );

    // From a day of the perfect-order chart to the imperfect orders behind it.
    let start = console
        .find("<a href=\"/days/")
        .expect("the chart's days link to their orders")
        + "<a href=\"".len();
    let href =
        console[start..start + console[start..].find('"').expect("link end")].replace("&amp;", "&");
    assert!(href.ends_with("/orders?verdict=imperfect"), "{href}");
    let days = console.matches("<a href=\"/days/").count();
    // The chart's points as drawn (the page's script holds the template once, with `${`).
    let points =
        console.matches("<circle cx=\"").count() - console.matches("<circle cx=\"${").count();
    let last = console.rfind("<a href=\"/days/").expect("a day") + "<a href=\"".len();
    let last_day =
        console[last..last + console[last..].find('"').expect("link end")].replace("&amp;", "&");
    assert_eq!(
        days, points,
        "every point of the chart links to its day's orders"
    );
    let list = dump_dom(format!("{base}{last_day}")).await;
    assert!(
        list.contains("data-loaded=\"true\""),
        "the list loaded the API"
    );
    assert!(
        element_text(&list, "list-title").contains("imperfect"),
        "{}",
        element_text(&list, "list-title")
    );
    assert!(
        list.contains("<a href=\"/orders/"),
        "the day's imperfect orders are listed, each linked to its page"
    );

    let missing = dump_dom(format!("{base}/orders/NO-SUCH-ORDER")).await;
    assert!(
        element_text(&missing, "order-missing").contains("no order"),
        "an unknown id says so"
    );
    fixture.service.stop().await;
}

/// README's picture of the console: the demo's console in a real browser once its history
/// is in, every section filled. Saved to target/demo-console.png, and to docs/console.png
/// when PERFECT_ORDER_UPDATE_DOCS=1 (how the picture in the repository is made).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_console_fills_every_section_and_is_screenshotted_for_the_readme() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_perfect-order"))
        .args([
            "demo",
            "--days",
            "45",
            "--orders-per-minute",
            "1",
            "--speedup",
            "60",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("demo"))
        .env_remove("PERFECT_ORDER__DATABASE__URL")
        .env("PERFECT_ORDER__HTTP__LISTEN", "127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the demo");
    let stdout = child.stdout.take().expect("stdout");
    let demo = Killed(child);
    let mut lines = std::io::BufReader::new(stdout)
        .lines()
        .map_while(Result::ok);
    let console = lines
        .find(|l| l.contains("console:"))
        .and_then(|l| l.split_whitespace().last().map(str::to_owned))
        .expect("the demo names its console");
    let addr: std::net::SocketAddr = console
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("host:port");
    // The history consumed and the service figures in: the status line follows.
    let (tx, status) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        if let Some(line) = lines.find(|l| l.starts_with("status:")) {
            let _ = tx.send(line);
        }
    });
    status
        .recv_timeout(std::time::Duration::from_secs(240))
        .expect("the demo consumes its history and reports its status within 4 minutes");
    eventually(
        "the service figures",
        std::time::Duration::from_secs(60),
        || async move {
            let (status, body) = http_get(addr, "/api/service").await;
            (status == 200 && body.contains("\"winner\":true")).then_some(())
        },
    )
    .await;

    let dom = dump_dom(console.clone()).await;
    assert!(dom.contains("data-loaded=\"true\""));
    for tile in [
        "tile-po-30d",
        "tile-po-month",
        "tile-open-claims",
        "tile-leads",
    ] {
        assert_ne!(element_text(&dom, tile), "—", "{tile} is filled");
    }
    // The restatements panel says what the API says of last month, and links its orders.
    let (_, body) = http_get(addr, "/api/restatements").await;
    let restated: serde_json::Value = serde_json::from_str(&body).expect("restatements JSON");
    let summary = restated["summary"].as_str().expect("a summary");
    assert_eq!(element_text(&dom, "restatement-summary"), summary);
    if let Some(first) = restated["orders"][0]["order_id"].as_str() {
        assert!(
            dom.contains(&format!("/orders/{first}\">{first}</a>")),
            "the restated order {first} links to its page"
        );
    }
    let shot = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("demo-console.png");
    tokio::task::spawn_blocking({
        let arg = format!("--screenshot={}", shot.display());
        move || chromium(&["--window-size=1400,1900".into(), arg, console])
    })
    .await
    .expect("browser ran");
    let bytes = std::fs::read(&shot).expect("the screenshot");
    assert!(bytes.starts_with(b"\x89PNG") && bytes.len() > 50_000);
    if std::env::var("PERFECT_ORDER_UPDATE_DOCS").as_deref() == Ok("1") {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/console.png");
        std::fs::write(docs, &bytes).expect("write docs/console.png");
    }
    drop(demo);
}
