use std::path::Path;
use std::sync::Arc;

use sluice_core::Project;
use sluice_transform::{Engine, compile};

use super::*;
use crate::runner::{NodeStatus, RunOptions, run};

fn write(dir: &Path, rel: &str, text: &str) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

fn maintain_runs(state: &StateStore) -> Vec<RunRecord> {
    state
        .runs(100)
        .unwrap()
        .into_iter()
        .filter(|r| r.command == "maintain")
        .collect()
}

#[tokio::test]
async fn the_policy_compacts_a_table_after_n_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "sluice.yml",
        "name: upkeep\nmaintenance:\n  silver:\n    after_commits: 3\n",
    );
    write(
        dir,
        "models/silver/events.sql",
        "{{ config(materialized='incremental') }}\nselect 1 as x",
    );
    let project = Project::load(dir).unwrap_or_else(|e| panic!("{e}"));
    let compiled = Arc::new(compile(Arc::new(project)).unwrap_or_else(|e| panic!("{e:?}")));
    let lake = Lake::open(&compiled.project.lake_location()).unwrap();
    let engine = Engine::open(&lake, Some(&compiled)).await.unwrap();
    let state = Arc::new(StateStore::open(&compiled.project.state_location().unwrap()).unwrap());
    let id = TableId::silver("events");
    let all = targets(&compiled, None);
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].table, id);
    assert_eq!(all[0].policy.after_commits, Some(3));

    for n in 1..=3u64 {
        let summary = run(
            compiled.clone(),
            engine.clone(),
            state.clone(),
            RunOptions::default(),
        )
        .await
        .unwrap();
        assert_eq!(summary.node("events").unwrap().status, NodeStatus::Success);
        let files = lake.file_stats(&id, 1 << 20).await.unwrap().unwrap().files;
        if n < 3 {
            assert_eq!(files, n, "one file per run before the policy is due");
            assert!(maintain_runs(&state).is_empty());
            // A dry run by hand reports and records nothing.
            let dry = MaintainOptions {
                dry_run: true,
                ..MaintainOptions::default()
            };
            let pass = maintain(&compiled, &lake, &state, &all, &dry)
                .await
                .unwrap();
            assert_eq!(pass.run_id, None);
            assert_eq!(pass.tables.len(), 1);
        } else {
            assert_eq!(
                files, 1,
                "the third commit made the policy compact the table"
            );
        }
    }
    let runs = maintain_runs(&state);
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, "success");
    let nodes = state.nodes_of_run(&runs[0].run_id).unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0].node, "maintain:events");
    assert_eq!((nodes[0].rows_in, nodes[0].rows_out), (Some(3), Some(1)));
    let latest = lake.history(&id, 1).await.unwrap();
    assert_eq!(latest[0].operation.as_deref(), Some("OPTIMIZE"));
    assert_eq!(
        latest[0].metadata.get("sluice.run_id"),
        Some(&serde_json::Value::String(runs[0].run_id.clone()))
    );
    // Nothing new since: by policy, nothing is due.
    let due_now = due(&lake, &all[0]).await.unwrap();
    assert_eq!(due_now, None);
}
