//! Static checks of everything under deploy/ and the Dockerfile (no Docker engine runs here),
//! plus promtool's own checks and the alert-rule unit tests.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn yaml(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

fn promtool(args: &[&str]) {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(root())
        .output()
        .expect("promtool is on PATH (Debian package prometheus; scripts/test installs it)");
    assert!(
        out.status.success(),
        "promtool {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_check() {
    promtool(&["check", "rules", "deploy/prometheus/alerts.yml"]);
}

#[test]
fn alert_rule_unit_tests_cover_every_alert_firing_and_not_firing() {
    promtool(&["test", "rules", "deploy/prometheus/tests/alerts_test.yml"]);
    let rules = yaml(&root().join("deploy/prometheus/alerts.yml"));
    let tests = yaml(&root().join("deploy/prometheus/tests/alerts_test.yml"));
    let cases: Vec<&Value> = tests["tests"]
        .as_sequence()
        .expect("tests")
        .iter()
        .flat_map(|t| {
            t["alert_rule_test"]
                .as_sequence()
                .expect("alert_rule_test")
                .iter()
        })
        .collect();
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("alert name");
            let of_rule: Vec<&&Value> = cases
                .iter()
                .filter(|c| c["alertname"].as_str() == Some(name))
                .collect();
            let firing = of_rule
                .iter()
                .any(|c| c["exp_alerts"].as_sequence().is_some_and(|a| !a.is_empty()));
            let silent = of_rule
                .iter()
                .any(|c| c["exp_alerts"].as_sequence().is_some_and(|a| a.is_empty()));
            assert!(
                firing && silent,
                "{name} needs a firing and a not-firing test case"
            );
        }
    }
}

#[test]
fn every_alert_has_summary_description_runbook_and_severity() {
    let rules = yaml(&root().join("deploy/prometheus/alerts.yml"));
    let runbooks =
        std::fs::read_to_string(root().join("docs/runbooks.md")).expect("docs/runbooks.md");
    for group in rules["groups"].as_sequence().expect("groups") {
        for rule in group["rules"].as_sequence().expect("rules") {
            let name = rule["alert"].as_str().expect("alert name");
            for key in ["summary", "description", "runbook_url"] {
                assert!(
                    rule["annotations"][key]
                        .as_str()
                        .is_some_and(|s| !s.is_empty()),
                    "{name} lacks {key}"
                );
            }
            assert!(
                matches!(
                    rule["labels"]["severity"].as_str(),
                    Some("page" | "warning" | "ticket")
                ),
                "{name} lacks a severity"
            );
            let anchor = rule["annotations"]["runbook_url"]
                .as_str()
                .and_then(|u| u.split_once("docs/runbooks.md#"))
                .map(|(_, a)| a);
            let anchor = anchor
                .unwrap_or_else(|| panic!("{name}: runbook_url must point into docs/runbooks.md"));
            assert_eq!(anchor, name.to_lowercase(), "{name}: runbook anchor");
            assert!(
                runbooks.contains(&format!("## {name}")),
                "docs/runbooks.md lacks a section for {name}"
            );
        }
    }
}

#[test]
fn kubernetes_prometheus_rule_carries_exactly_the_shipped_rules() {
    let rules = yaml(&root().join("deploy/prometheus/alerts.yml"));
    let crd = yaml(&root().join("deploy/kubernetes/base/prometheusrule.yaml"));
    assert_eq!(crd["kind"].as_str(), Some("PrometheusRule"));
    assert_eq!(
        crd["spec"]["groups"], rules["groups"],
        "regenerate prometheusrule.yaml from alerts.yml"
    );
}

#[test]
fn compose_prometheus_config_passes_promtool_and_scrapes_the_job_the_alerts_expect() {
    promtool(&["check", "config", "deploy/prometheus/prometheus.yml"]);
    let config = yaml(&root().join("deploy/prometheus/prometheus.yml"));
    let jobs: Vec<&str> = config["scrape_configs"]
        .as_sequence()
        .expect("scrape_configs")
        .iter()
        .filter_map(|j| j["job_name"].as_str())
        .collect();
    assert!(jobs.contains(&"perfect-order"));
}

#[test]
fn compose_file_brings_up_the_whole_stack_on_loopback() {
    let deploy = root().join("deploy");
    let compose = yaml(&deploy.join("docker-compose.yml"));
    let services = compose["services"].as_mapping().expect("services");
    for name in [
        "kafka",
        "postgres",
        "perfect-order",
        "prometheus",
        "alertmanager",
        "grafana",
    ] {
        assert!(services.contains_key(name), "compose lacks {name}");
    }
    for (name, service) in services {
        for volume in service["volumes"].as_sequence().into_iter().flatten() {
            let spec = volume.as_str().expect("short volume syntax");
            if let Some(host) = spec.split(':').next().filter(|h| h.starts_with("./")) {
                assert!(deploy.join(host).exists(), "{name:?} mounts missing {host}");
            }
        }
        for port in service["ports"].as_sequence().into_iter().flatten() {
            assert!(
                port.as_str().is_some_and(|p| p.starts_with("127.0.0.1:")),
                "{name:?} publishes {port:?} beyond loopback"
            );
        }
    }
    let po = &compose["services"]["perfect-order"];
    assert_eq!(po["build"]["dockerfile"].as_str(), Some("Dockerfile"));
    assert!(root()
        .join(
            po["build"]["context"]
                .as_str()
                .map(|c| deploy.join(c))
                .expect("context")
        )
        .join("Dockerfile")
        .exists());
    for key in [
        "PERFECT_ORDER__KAFKA__BROKERS",
        "PERFECT_ORDER__DATABASE__URL",
        "PERFECT_ORDER__HTTP__LISTEN",
    ] {
        assert!(
            po["environment"][key].as_str().is_some(),
            "perfect-order service lacks {key}"
        );
    }
    let topics = compose["services"]["kafka-topics"]["command"][0]
        .as_str()
        .expect("topic command");
    assert!(topics.contains(
        po["environment"]["PERFECT_ORDER__KAFKA__TOPICS"]
            .as_str()
            .expect("topics")
    ));
}

#[test]
fn dockerfile_is_multi_stage_non_root_with_a_healthcheck() {
    let text = std::fs::read_to_string(root().join("Dockerfile")).expect("Dockerfile");
    assert!(
        text.matches("\nFROM ").count() + usize::from(text.starts_with("FROM ")) >= 2,
        "multi-stage"
    );
    assert!(text.contains("COPY --from=build"));
    let user = text
        .lines()
        .find(|l| l.starts_with("USER "))
        .expect("a USER line");
    assert!(!user.contains("root") && !user.contains(" 0"), "{user}");
    assert!(text.contains("HEALTHCHECK") && text.contains("/healthz"));
    for copied in ["Cargo.toml", "Cargo.lock", "build.rs", "src", "migrations"] {
        assert!(
            root().join(copied).exists(),
            "Dockerfile copies missing {copied}"
        );
    }
}

#[test]
fn kubernetes_base_is_complete_and_probed() {
    let base = root().join("deploy/kubernetes/base");
    let kustomization = yaml(&base.join("kustomization.yaml"));
    let resources: Vec<&str> = kustomization["resources"]
        .as_sequence()
        .expect("resources")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    let mut kinds = Vec::new();
    for r in &resources {
        let doc = yaml(&base.join(r));
        kinds.push(doc["kind"].as_str().expect("kind").to_owned());
    }
    for kind in [
        "Deployment",
        "Service",
        "ConfigMap",
        "ServiceMonitor",
        "PrometheusRule",
    ] {
        assert!(
            kinds.iter().any(|k| k == kind),
            "kustomize base lacks a {kind}"
        );
    }
    let deployment = yaml(&base.join("deployment.yaml"));
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(
        container["livenessProbe"]["httpGet"]["path"].as_str(),
        Some("/healthz")
    );
    assert_eq!(
        container["readinessProbe"]["httpGet"]["path"].as_str(),
        Some("/readyz")
    );
    // SIGTERM ends within the stated bound; Kubernetes must not kill the pod before it.
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    let drain = perfect_order::config::Settings::load_from(None, Vec::<(String, String)>::new())
        .expect("default settings")
        .kafka
        .drain_timeout;
    let bound = perfect_order::Service::shutdown_bound(drain);
    assert!(
        grace as f64 > bound.as_secs_f64(),
        "terminationGracePeriodSeconds {grace} must exceed the shutdown bound {bound:?}"
    );
    for k in ["requests", "limits"] {
        assert!(
            container["resources"][k]["memory"].as_str().is_some(),
            "resources.{k}"
        );
    }
    assert_eq!(
        deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"].as_bool(),
        Some(true)
    );
    let service = yaml(&base.join("service.yaml"));
    let monitor = yaml(&base.join("servicemonitor.yaml"));
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"], service["metadata"]["labels"],
        "the ServiceMonitor selects the Service"
    );
    assert_eq!(
        service["metadata"]["name"].as_str(),
        Some("perfect-order"),
        "job label expected by the alerts"
    );
}

#[test]
fn every_dashboard_panel_uses_a_provisioned_data_source() {
    let grafana = root().join("deploy/grafana");
    let sources = yaml(&grafana.join("provisioning/datasources/datasources.yaml"));
    let uids: Vec<&str> = sources["datasources"]
        .as_sequence()
        .expect("datasources")
        .iter()
        .filter_map(|d| d["uid"].as_str())
        .collect();
    let mut seen_uids = std::collections::HashSet::new();
    let mut panels = 0;
    for entry in std::fs::read_dir(grafana.join("dashboards")).expect("dashboards") {
        let path = entry.expect("entry").path();
        let dashboard: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
                .expect("dashboard JSON");
        assert!(
            seen_uids.insert(dashboard["uid"].as_str().expect("uid").to_owned()),
            "duplicate uid in {}",
            path.display()
        );
        for panel in dashboard["panels"].as_array().expect("panels") {
            panels += 1;
            let uid = panel["datasource"]["uid"]
                .as_str()
                .expect("panel data source");
            assert!(
                uids.contains(&uid),
                "{}: panel {} uses unknown data source {uid}",
                path.display(),
                panel["title"]
            );
            assert!(!panel["targets"].as_array().expect("targets").is_empty());
        }
    }
    assert_eq!(seen_uids.len(), 4);
    assert!(panels >= 20);
    let provider = yaml(&grafana.join("provisioning/dashboards/dashboards.yaml"));
    let path = provider["providers"][0]["options"]["path"]
        .as_str()
        .expect("provider path");
    let compose =
        std::fs::read_to_string(root().join("deploy/docker-compose.yml")).expect("compose");
    assert!(
        compose.contains(&format!("./grafana/dashboards:{path}")),
        "compose mounts the dashboards where the provider reads"
    );
}

/// Every figure leads to its orders: the perfect-order dashboard's days and months link to the
/// console's drill-down lists, through a variable naming the console's address, with the day
/// or month taken from a field the panel's query selects.
#[test]
fn the_days_and_months_of_the_dashboard_link_to_their_orders_in_the_console() {
    let path = root().join("deploy/grafana/dashboards/perfect-order.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).expect("read")).expect("JSON");
    let variables: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    assert!(variables.contains(&"console"), "{variables:?}");
    for (title, route, field) in [
        ("PO rate per day (60 days)", "/days/", "day"),
        ("PO rate per month", "/months/", "month"),
    ] {
        let panel = dashboard["panels"]
            .as_array()
            .expect("panels")
            .iter()
            .find(|p| p["title"] == title)
            .unwrap_or_else(|| panic!("panel {title}"));
        let url = panel["fieldConfig"]["defaults"]["links"][0]["url"]
            .as_str()
            .unwrap_or_else(|| panic!("{title} has a data link"));
        assert_eq!(
            url,
            format!("${{console}}{route}${{__data.fields.{field}}}/orders?verdict=imperfect")
        );
        let sql = panel["targets"][0]["rawSql"].as_str().expect("SQL");
        assert!(
            sql.contains(&format!("AS {field},")),
            "{title} selects the {field} its link names: {sql}"
        );
    }
}
