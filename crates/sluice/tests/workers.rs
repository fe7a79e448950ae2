//! Several workers share one schedule: three `sluice serve` processes over one PostgreSQL state
//! database and one lake. A model scheduled every 2 s runs its ticks on whichever worker claims
//! them; the worker building one is SIGKILLed mid-run. Afterwards every claimed tick was built
//! exactly once (the dead worker's by a survivor that took its run over), no node ran twice at
//! once, and the survivors' HTTP APIs show the same runs.
//!
//! Against the server at `SLUICE_TEST_STATE_URL` (default: the local trust server); skipped
//! without one, except under `CI=true`.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use common::{http, write};
use sluice_state::testing::{STATE_URL_VAR, TestSchema};

/// A `sluice serve` worker and its stdout (kept open: a closed pipe would kill it on its next line).
struct Worker {
    child: Child,
    addr: String,
    _stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn start(project: &Path) -> Worker {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
            .arg("--project")
            .arg(project)
            .args([
                "serve",
                "--http",
                "127.0.0.1:0",
                "--no-pg",
                "--no-flight",
                "--sensor-interval",
                "300ms",
            ])
            .env("SLUICE_LOG", "warn")
            .env_remove("SLUICE_STATE_DB")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        assert!(stdout.read_line(&mut first).unwrap() > 0, "serve ended");
        let addr = first
            .split("http://")
            .nth(1)
            .and_then(|s| s.split('/').next())
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_string();
        Worker {
            child,
            addr,
            _stdout: stdout,
        }
    }

    fn get(&self, path: &str) -> serde_json::Value {
        let (code, body) = http(&self.addr, "GET", path, None, "application/json");
        assert_eq!(code, 200, "{path}: {body}");
        serde_json::from_str(&body).unwrap()
    }

    /// SIGTERM, then waits for the graceful exit (runs in flight finish first).
    fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    fn wait_exit(&mut self, deadline: Instant) {
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "worker exited with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "worker did not stop after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The state schema, read with psql (`SET search_path` to the test's schema).
struct State {
    url: String,
    schema: String,
}

impl State {
    fn query(&self, sql: &str) -> Vec<Vec<String>> {
        let out = Command::new("psql")
            .arg(&self.url)
            .args(["-tAq", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c"])
            .arg(format!("SET search_path TO {}; {sql}", self.schema))
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| l.split('\t').map(str::to_string).collect())
            .collect()
    }

    fn count(&self, sql: &str) -> u64 {
        self.query(sql)[0][0].parse().unwrap()
    }
}

fn wait_for(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

const SUCCESSES: &str = "SELECT count(*) FROM node_runs WHERE node = 'slow' AND status = 'success'";

#[test]
fn three_workers_share_the_schedule_and_take_over_a_killed_one() {
    if std::env::var(STATE_URL_VAR).is_err() {
        // SAFETY: the only variable this test binary sets, before it starts any thread of its own.
        unsafe { std::env::set_var(STATE_URL_VAR, "postgres://postgres@127.0.0.1:5432/test") };
    }
    let schema = match TestSchema::from_env("workers") {
        Ok(Some(t)) => t,
        Ok(None) => unreachable!(),
        Err(e) if std::env::var("CI").as_deref() != Ok("true") => {
            eprintln!("skipping: PostgreSQL not reachable: {e}");
            return;
        }
        Err(e) => panic!("PostgreSQL not reachable under CI=true: {e}"),
    };
    let yaml = schema.yaml_value();
    let (base, name) = yaml.split_once("schema=").unwrap();
    let state = State {
        url: base.trim_end_matches(['?', '&']).to_string(),
        schema: name.to_string(),
    };

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(
        dir,
        "sluice.yml",
        &format!("name: workers\nstate: '{yaml}'\nserve:\n  limits:\n    shutdown_grace: 120s\n"),
    );
    // Long enough to be caught running; its downstream joins each of its runs.
    write(
        dir,
        "models/gold/slow.sql",
        "{{ config(materialized='table', schedule='every 2s') }}\n\
         select count(*) as n, sum(value % 7) as total from range(0, 20000000)\n",
    );
    write(
        dir,
        "models/gold/after_slow.sql",
        "select n, total from {{ ref('slow') }}\n",
    );

    let mut workers: Vec<Worker> = (0..3).map(|_| Worker::start(dir)).collect();
    let pids: Vec<u32> = workers.iter().map(|w| w.child.id()).collect();

    // Warm: two ticks built.
    wait_for("two builds of slow", Duration::from_secs(300), || {
        state.count(SUCCESSES) >= 2
    });

    // Catch a worker building slow (it holds slow's lease), and SIGKILL it.
    let mut killed: Option<(String, usize)> = None;
    wait_for("a worker building slow", Duration::from_secs(300), || {
        let rows = state.query(
            "SELECT l.holder, p.process FROM leases l JOIN runs r ON r.run_id = l.holder \
             JOIN run_processes p ON p.run_id = l.holder WHERE l.node = 'slow' \
             AND r.status = 'running'",
        );
        let Some(row) = rows.first() else {
            return false;
        };
        // The process record is "<boot id> <pid> <pid namespace>".
        let pid: u32 = row[1].split_whitespace().nth(1).unwrap().parse().unwrap();
        let index = pids.iter().position(|p| *p == pid).unwrap();
        workers[index].child.kill().unwrap();
        workers[index].child.wait().unwrap();
        killed = Some((row[0].clone(), index));
        true
    });
    let (killed_run, index) = killed.unwrap();
    let dead = workers.remove(index);

    // A survivor marks the run abandoned and builds what it did not finish; two more ticks follow.
    wait_for(
        "the killed run taken over",
        Duration::from_secs(300),
        || {
            state.count(&format!(
                "SELECT count(*) FROM runs WHERE run_id = '{killed_run}' AND status = 'abandoned'"
            )) == 1
        },
    );
    let after_kill = state.count(SUCCESSES);
    wait_for("two more builds of slow", Duration::from_secs(300), || {
        state.count(SUCCESSES) >= after_kill + 2
    });

    // The downstream has caught up with slow (after a takeover it may need a run of its own).
    wait_for("after_slow to catch up", Duration::from_secs(300), || {
        let last = |node: &str, column: &str| {
            state.query(&format!(
                "SELECT coalesce(max({column}), '') FROM node_runs WHERE node = '{node}' \
                 AND status = 'success'"
            ))[0][0]
                .clone()
        };
        last("after_slow", "started_at") >= last("slow", "finished_at")
    });

    // Any worker's API shows the same state.
    let seen: Vec<serde_json::Value> = workers
        .iter()
        .map(|w| w.get(&format!("/api/runs/{killed_run}")))
        .collect();
    assert_eq!(seen[0]["run"]["status"], "abandoned", "{}", seen[0]);
    assert_eq!(seen[0]["run"], seen[1]["run"]);
    assert_eq!(seen[0]["nodes"], seen[1]["nodes"]);

    // Stop the survivors gracefully: the runs they started finish first.
    for w in &mut workers {
        w.stop();
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    for w in &mut workers {
        w.wait_exit(deadline);
    }
    drop(dead);
    assert_eq!(
        state.count("SELECT count(*) FROM runs WHERE status = 'running'"),
        0
    );

    // The dead worker was caught inside slow (holding its lease): its run left slow unfinished.
    let abandoned = state.query(&format!(
        "SELECT status FROM node_runs WHERE run_id = '{killed_run}' AND node = 'slow'"
    ));
    assert_eq!(abandoned, [["abandoned"]], "{abandoned:?}");

    // Every claimed tick was built exactly once.
    let claims = state.count(
        "SELECT count(*) FROM tick_claims WHERE node = 'slow' AND tick NOT LIKE 'upstream:%'",
    );
    assert_eq!(
        state.count(SUCCESSES),
        claims,
        "builds of slow vs ticks claimed"
    );
    // The downstream follows each change once: every build of it reads a build of slow that no
    // earlier build of it read (changes that came while it ran collapse into its next build). That
    // it catches up was waited for above: a run started during shutdown may leave it a change
    // behind, which the next start of a scheduler picks up.
    let times = |node: &str| {
        state.query(&format!(
            "SELECT started_at, finished_at FROM node_runs WHERE node = '{node}' \
             AND status = 'success' ORDER BY started_at"
        ))
    };
    let (slow, after) = (times("slow"), times("after_slow"));
    assert!(!after.is_empty());
    let mut read_from = String::new();
    for build in &after {
        let newest = slow
            .iter()
            .filter(|s| s[1] <= build[0])
            .map(|s| s[1].clone())
            .max()
            .unwrap_or_default();
        assert!(
            newest > read_from,
            "after_slow rebuilt at {} without a new build of slow",
            build[0]
        );
        read_from = newest;
    }
    // Ticks went to more than one worker.
    let holders = state
        .count("SELECT count(DISTINCT holder) FROM tick_claims WHERE tick NOT LIKE 'upstream:%'");
    assert!(holders >= 2, "one worker took every tick");

    // No node ran twice at once: per node, each build starts after the previous one finished.
    for (node, rows) in [("slow", &slow), ("after_slow", &after)] {
        for pair in rows.windows(2) {
            assert!(
                pair[1][0] >= pair[0][1],
                "{node} overlapped: {:?} then {:?}",
                pair[0],
                pair[1]
            );
        }
    }
}
