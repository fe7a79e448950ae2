//! The web UI in a real browser: headless Chromium driven by playwright-core (`tests/ui/ui.test.mjs`)
//! against `sluice serve` on a small ShopFlow demo project, with authentication on (a token made
//! here, entered on the UI's sign-in page).
//!
//! Needs Debian's Chromium (`/usr/bin/chromium`, or `SLUICE_CHROMIUM`), Node.js and
//! `npm ci` in `crates/sluice/tests/ui` (`.ci/run` does both). Without them the test prints why and
//! passes, except under `CI=true`, where it fails. Screenshots go to
//! `$CARGO_TARGET_TMPDIR/ui-screenshots` (or `SLUICE_UI_SCREENSHOTS`).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Kills the server when the test ends, however it ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What is missing for the browser test, if anything.
fn missing(ui_dir: &Path, chromium: &Path) -> Option<String> {
    if !chromium.exists() {
        return Some(format!(
            "no Chromium at {} (apt-get install chromium, or set SLUICE_CHROMIUM)",
            chromium.display()
        ));
    }
    if !ui_dir.join("node_modules/playwright-core").exists() {
        return Some(format!(
            "playwright-core is not installed (run `npm ci` in {})",
            ui_dir.display()
        ));
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => None,
        _ => Some("no `node` on PATH".into()),
    }
}

#[test]
fn web_ui_in_headless_chromium() {
    let ui_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ui");
    let chromium = PathBuf::from(
        std::env::var_os("SLUICE_CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into()),
    );
    if let Some(why) = missing(&ui_dir, &chromium) {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("the browser test cannot run under CI: {why}");
        }
        eprintln!("SKIPPED web_ui_in_headless_chromium: {why}");
        return;
    }

    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("shopflow");
    common::demo(&project, "0.2", "7");
    // With a token, the server requires authentication: the test signs in through the UI.
    let token = common::sluice_ok(
        &project,
        &[
            "auth", "token", "create", "--user", "ui", "--role", "operator",
        ],
    )
    .trim()
    .to_string();

    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .arg("--project")
        .arg(&project)
        .args([
            "serve",
            "--http",
            "127.0.0.1:0",
            "--no-pg",
            "--no-flight",
            "--no-scheduler",
        ])
        .env("SLUICE_LOG", "error")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start sluice serve");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let server = Server(child);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|s| s.split('/').next())
        .unwrap_or_else(|| panic!("no address in the server's first line: {line:?}"))
        .to_string();
    // Keep reading the server's output so a full pipe never blocks it.
    std::thread::spawn(move || {
        let mut sink = Vec::new();
        let _ = stdout.read_to_end(&mut sink);
    });

    let shots = std::env::var_os("SLUICE_UI_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_TARGET_TMPDIR")).join("ui-screenshots"));
    let out = Command::new("node")
        .current_dir(&ui_dir)
        .arg("ui.test.mjs")
        .arg(format!("http://{addr}"))
        .arg(&shots)
        .env("SLUICE_CHROMIUM", &chromium)
        .env("SLUICE_UI_TOKEN", &token)
        .output()
        .expect("run node");
    drop(server);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}{stderr}");
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{stderr}"
    );
    for name in [
        "signin",
        "graph",
        "asset",
        "run",
        "dashboard-finance",
        "dashboard-executive",
    ] {
        assert!(
            shots.join(format!("{name}.png")).exists(),
            "no screenshot {name}.png"
        );
    }
}
