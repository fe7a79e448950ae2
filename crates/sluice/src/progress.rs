//! Progress bars for runs.

use std::sync::Mutex;

use indicatif::{ProgressBar, ProgressStyle};
use sluice_orchestrate::{NodeResult, NodeStatus, RunObserver};

/// Draws one bar for the run, with the running nodes as its message.
pub struct RunProgress {
    bar: ProgressBar,
    running: Mutex<Vec<String>>,
}

impl RunProgress {
    /// A hidden-until-started bar.
    pub fn new() -> Self {
        let bar = ProgressBar::hidden();
        Self {
            bar,
            running: Mutex::new(Vec::new()),
        }
    }

    fn refresh(&self) {
        let running = self
            .running
            .lock()
            .map(|r| r.join(", "))
            .unwrap_or_default();
        self.bar.set_message(running);
    }

    /// Clears the bar.
    pub fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl RunObserver for RunProgress {
    fn run_started(&self, run_id: &str, total: usize) {
        self.bar.set_length(total as u64);
        if console_is_tty() {
            self.bar
                .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        let style =
            ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> ");
        self.bar.set_style(style);
        self.bar.set_prefix(format!("run {run_id}"));
    }

    fn node_started(&self, node: &str) {
        if let Ok(mut r) = self.running.lock() {
            r.push(node.to_string());
        }
        self.refresh();
    }

    fn node_finished(&self, result: &NodeResult) {
        if let Ok(mut r) = self.running.lock() {
            r.retain(|n| n != &result.node);
        }
        self.bar.inc(1);
        if result.status == NodeStatus::Failed {
            self.bar.println(format!(
                "  ✗ {} failed: {}",
                result.node,
                result.error.as_deref().unwrap_or("")
            ));
        }
        self.refresh();
    }
}

fn console_is_tty() -> bool {
    use std::io::IsTerminal;
    std::io::stderr().is_terminal()
}
