//! Channels: retries and failures of webhooks, commands, owners without a channel, validation.

use sluice_orchestrate::schedule::ManualClock;

use super::*;
use crate::{DeliveryStatus, validate};

#[tokio::test]
async fn a_webhook_answering_503_is_retried() {
    let (rx, addr) = Receiver::start().await;
    rx.fail_next(2);
    let dir = tempfile::tempdir().unwrap();
    let compiled = project(dir.path(), &webhook_owners(addr));
    let clock = ManualClock::new(t0());
    let m = monitor(&compiled, &clock);
    let sent = m
        .after_run(&summary("r1", &[("broken", NodeStatus::Failed)]))
        .await
        .unwrap();
    assert_eq!(sent[0].outcome.status, DeliveryStatus::Sent);
    assert_eq!(sent[0].outcome.attempts, 3);
    assert_eq!((rx.requests(), rx.bodies().len()), (3, 1));
}

#[tokio::test]
async fn an_unreachable_webhook_is_recorded_not_raised() {
    // A port nobody listens on.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let compiled = project(dir.path(), &webhook_owners(addr));
    let clock = ManualClock::new(t0());
    let m = monitor(&compiled, &clock);
    let sent = m
        .after_run(&summary("r1", &[("broken", NodeStatus::Failed)]))
        .await
        .unwrap();
    assert_eq!(sent[0].outcome.status, DeliveryStatus::Failed);
    assert_eq!(sent[0].outcome.attempts, 3);
    let err = sent[0].outcome.error.as_deref().unwrap();
    assert!(
        err.contains("webhook request failed") && !err.contains(&addr.to_string()),
        "{err}"
    );
    let id = m.incidents().open_incidents().unwrap()[0].id;
    let d = m.incidents().deliveries(id).unwrap();
    assert_eq!((d[0].status.as_str(), d[0].attempts), ("failed", 3));
    // A failed delivery is not retried at every run: no alert storm against a dead endpoint.
    let again = m
        .after_run(&summary("r2", &[("broken", NodeStatus::Failed)]))
        .await
        .unwrap();
    assert!(again.is_empty());
}

#[tokio::test]
async fn a_command_gets_the_alert_on_stdin_and_in_variables() {
    let dir = tempfile::tempdir().unwrap();
    let owners = "owners:\n  default:\n    command: 'cat > alert.json; echo \"$SLUICE_ALERT_STATUS $SLUICE_ALERT_KIND $SLUICE_ALERT_ASSET $SLUICE_ALERT_OWNER\" >> env.txt'\n";
    let compiled = project(dir.path(), owners);
    let clock = ManualClock::new(t0());
    let m = monitor(&compiled, &clock);
    let sent = m
        .after_run(&summary("r1", &[("broken", NodeStatus::Failed)]))
        .await
        .unwrap();
    assert_eq!(
        sent[0].outcome.status,
        DeliveryStatus::Sent,
        "{:?}",
        sent[0].outcome
    );
    assert_eq!(
        sent[0].outcome.route.as_deref(),
        Some("default"),
        "finance falls back to default"
    );
    let body: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("alert.json")).unwrap())
            .unwrap();
    assert_eq!(body["asset"], "broken");
    assert_eq!(body["kind"], "failure");
    m.after_run(&summary("r2", &[("broken", NodeStatus::Success)]))
        .await
        .unwrap();
    let env = std::fs::read_to_string(dir.path().join("env.txt")).unwrap();
    assert_eq!(
        env,
        "open failure broken finance\nresolved failure broken finance\n"
    );
}

#[tokio::test]
async fn a_failing_command_is_recorded_with_its_stderr() {
    let dir = tempfile::tempdir().unwrap();
    let owners = "owners:\n  finance: {command: 'echo no route to pager >&2; exit 3'}\n";
    let compiled = project(dir.path(), owners);
    let m = monitor(&compiled, &ManualClock::new(t0()));
    let sent = m
        .after_run(&summary("r1", &[("broken", NodeStatus::Failed)]))
        .await
        .unwrap();
    assert_eq!(sent[0].outcome.status, DeliveryStatus::Failed);
    let err = sent[0].outcome.error.as_deref().unwrap();
    assert!(
        err.contains("no route to pager") && err.contains('3'),
        "{err}"
    );
}

#[tokio::test]
async fn an_owner_without_a_channel_is_tracked_but_not_sent() {
    let dir = tempfile::tempdir().unwrap();
    let compiled = project(dir.path(), "owners:\n  ops: {command: 'true'}\n");
    let m = monitor(&compiled, &ManualClock::new(t0()));
    let sent = m
        .after_run(&summary("r1", &[("broken", NodeStatus::Failed)]))
        .await
        .unwrap();
    assert_eq!(sent[0].outcome.status, DeliveryStatus::Skipped);
    assert_eq!(m.incidents().open_incidents().unwrap().len(), 1);
    let problems = validate(&compiled);
    assert!(problems.errors.is_empty(), "{problems:?}");
    assert_eq!(problems.warnings.len(), 1, "{problems:?}");
    assert!(
        problems.warnings[0].contains("owner `finance`"),
        "{problems:?}"
    );
}

#[test]
fn validation_reports_bad_channels_and_slas_with_their_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "sources/shop.yml",
        "kind: sqlite\nconnection: x.db\nfreshness: {warn_after: 1h}\ntables:\n  - name: orders\n    freshness: {warn_after: soon}\n",
    );
    let owners = "owners:\n  finance: {webhook: 'http://x', command: 'true'}\n  ops: {webhook: 'ftp://x'}\n  sales: {webhook: '${SLUICE_TEST_UNSET_HOOK}'}\n";
    // A malformed source SLA stops the project from loading, at its place.
    write(d, "sluice.yml", &format!("name: t\n{owners}"));
    let err = sluice_core::Project::load(d).unwrap_err().to_string();
    assert!(
        err.contains("shop.yml:6:16: field `tables[0].freshness`: invalid duration `soon`"),
        "{err}"
    );
    write(
        d,
        "sources/shop.yml",
        "kind: sqlite\nconnection: x.db\nfreshness: {warn_after: 1h}\ntables:\n  - name: orders\n",
    );
    let compiled = project(d, owners);
    let p = validate(&compiled);
    assert_eq!(p.errors.len(), 2, "{p:?}");
    assert!(
        p.errors
            .iter()
            .any(|e| e.contains("owners.finance") && e.contains("not both")),
        "{p:?}"
    );
    assert!(
        p.errors
            .iter()
            .any(|e| e.contains("owners.ops") && e.contains("http://")),
        "{p:?}"
    );
    assert!(
        p.warnings
            .iter()
            .any(|w| w.contains("SLUICE_TEST_UNSET_HOOK")),
        "{p:?}"
    );
}

#[test]
fn source_tables_inherit_the_source_sla_and_may_override_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        "sources/shop.yml",
        "kind: sqlite\nconnection: x.db\nowner: app\nfreshness: {warn_after: 1h}\ntables:\n  - name: orders\n  - name: payments\n    freshness: {error_after: {count: 2, period: day}}\n",
    );
    let compiled = project(d, "");
    let cfg = crate::AlertConfig::from_project(&compiled);
    let orders = cfg.assets["shop.orders"].sla.unwrap();
    assert_eq!(orders.warn_after, Some(hours(1.0)));
    let payments = cfg.assets["shop.payments"].sla.unwrap();
    assert_eq!(
        (payments.warn_after, payments.error_after),
        (None, Some(hours(48.0)))
    );
    assert_eq!(cfg.assets["shop.orders"].owner.as_deref(), Some("app"));
    assert_eq!(
        cfg.assets["sales"].sla.unwrap().error_after,
        Some(hours(6.0))
    );
    // SLAs but no `owners:`: one warning, no error.
    let p = validate(&compiled);
    assert!(p.errors.is_empty() && p.warnings.len() == 1, "{p:?}");
}

#[test]
fn a_model_sla_is_checked_when_the_project_loads() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "sluice.yml", "name: shop\n");
    write(d, "models/gold/sales.sql", "select 1 as id");
    write(
        d,
        "models/gold/schema.yml",
        "version: 2\nmodels:\n  - name: sales\n    freshness: {warn_after: 6h, error_after: 2h}\n",
    );
    let err = sluice_core::Project::load(d).unwrap_err().to_string();
    assert!(
        err.contains("schema.yml")
            && err.contains("models[sales].freshness")
            && err.contains("longer"),
        "{err}"
    );
    // With a column it stays a check on that column's newest value.
    write(
        d,
        "models/gold/schema.yml",
        "version: 2\nmodels:\n  - name: sales\n    freshness: {column: ts, warn_after: 6h}\n",
    );
    let p = sluice_core::Project::load(d).unwrap();
    assert_eq!(p.checks.len(), 1);
    assert_eq!(p.checks[0].kind, "freshness");
}
