//! The `sluice-ballista` binary as scripts use it: a scheduler on a free port announces its
//! address, and executors announce when the scheduler has accepted them (docs/distributed.md).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// A child process killed when dropped, and the lines of its standard output.
struct Proc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(args: &[&str]) -> Proc {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice-ballista"))
        .args(args)
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start sluice-ballista");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Proc { child, lines }
}

/// The first line of `p`, waited for (a closed stream or two minutes: a failure).
fn first_line(p: &Proc) -> String {
    p.lines
        .recv_timeout(Duration::from_secs(120))
        .expect("a readiness line")
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn a_scheduler_and_two_executors_announce_they_are_ready() {
    let scheduler = spawn(&["scheduler", "--bind", "127.0.0.1", "--port", "0"]);
    let line = first_line(&scheduler);
    let addr = line
        .strip_prefix("sluice-ballista scheduler listening on ")
        .unwrap_or_else(|| panic!("{line}"))
        .to_string();
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
    let work = tempfile::tempdir().unwrap();
    let executors: Vec<Proc> = (0..2)
        .map(|i| {
            let (flight, grpc) = (free_port().to_string(), free_port().to_string());
            let dir = work.path().join(format!("executor-{i}"));
            std::fs::create_dir_all(&dir).unwrap();
            spawn(&[
                "executor",
                "--scheduler",
                &addr,
                "--port",
                &flight,
                "--grpc-port",
                &grpc,
                "--vcores",
                "1",
                "--work-dir",
                dir.to_str().unwrap(),
            ])
        })
        .collect();
    for e in &executors {
        let line = first_line(e);
        assert!(
            line.starts_with("sluice-ballista executor ready: id "),
            "{line}"
        );
    }
}

#[test]
fn a_bad_scheduler_address_is_refused() {
    let out = Command::new(env!("CARGO_BIN_EXE_sluice-ballista"))
        .args(["executor", "--scheduler", "no-port-here"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("expected HOST:PORT"), "{err}");
}
