//! Which process does something (holds a lease, executes a run), precisely enough to tell from another
//! process on the same machine that it is gone: the kernel's boot id, the PID namespace and the PID
//! (Linux), plus the process's start time to see through a reused PID.

use std::io::ErrorKind;

/// A process, as recorded in the state database (`boot pid pid-namespace`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessId {
    pub(crate) boot: String,
    pub(crate) pid_namespace: String,
    pub(crate) pid: u32,
}

/// What `/proc` says about a recorded process, seen from this one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// It runs.
    Alive,
    /// It is certainly gone; the text says how (after "the process … (pid N)").
    Gone(&'static str),
    /// Another boot, machine or PID namespace, or `/proc` does not say.
    CannotTell,
}

impl ProcessId {
    /// This process, or `None` where `/proc` does not say (then leases only expire).
    pub(crate) fn current() -> Option<ProcessId> {
        let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
        let pid_namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
        Some(ProcessId {
            boot: boot.trim().to_string(),
            pid_namespace: pid_namespace.to_string_lossy().into_owned(),
            pid: std::process::id(),
        })
    }

    pub(crate) fn parse(s: &str) -> Option<ProcessId> {
        let mut parts = s.splitn(3, ' ');
        let boot = parts.next()?.to_string();
        let pid = parts.next()?.parse().ok()?;
        let pid_namespace = parts.next()?.to_string();
        Some(ProcessId {
            boot,
            pid_namespace,
            pid,
        })
    }

    /// Whether this process is certainly gone, as seen from `me`: only a process of the same boot and
    /// PID namespace can be looked up; anything else (another machine, container or boot) counts as
    /// alive, and its lease expires instead. A reused PID also counts as alive.
    pub(crate) fn is_gone_seen_from(&self, me: &ProcessId) -> bool {
        self.boot == me.boot
            && self.pid_namespace == me.pid_namespace
            && self.pid != me.pid
            && !std::path::Path::new(&format!("/proc/{}", self.pid)).exists()
    }

    /// Whether this process still runs, as seen from `me`. `start_ticks` is its recorded start time
    /// ([`start_ticks`]); when given, a process with the same PID started at another time is a newer
    /// one that reused the PID.
    pub(crate) fn verdict_from(&self, me: &ProcessId, start_ticks: Option<u64>) -> Verdict {
        if self.boot != me.boot || self.pid_namespace != me.pid_namespace {
            return Verdict::CannotTell;
        }
        match proc_stat(self.pid) {
            Probe::Missing => Verdict::Gone("is gone"),
            // Killed but not yet waited for by its parent.
            Probe::Found {
                state: 'Z' | 'X' | 'x',
                ..
            } => Verdict::Gone("has exited"),
            Probe::Found { start, .. } if start_ticks.is_some_and(|t| t != start) => {
                Verdict::Gone("is gone (a newer process has its PID)")
            }
            Probe::Found { .. } => Verdict::Alive,
            Probe::Unreadable => Verdict::CannotTell,
        }
    }
}

impl std::fmt::Display for ProcessId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} {}", self.boot, self.pid, self.pid_namespace)
    }
}

/// When process `pid` started, in clock ticks after boot (`/proc/<pid>/stat`, field 22).
pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    match proc_stat(pid) {
        Probe::Found { start, .. } => Some(start),
        _ => None,
    }
}

enum Probe {
    Missing,
    Found { state: char, start: u64 },
    Unreadable,
}

fn proc_stat(pid: u32) -> Probe {
    let text = match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(t) => t,
        // ESRCH: the process ended while being read.
        Err(e) if e.kind() == ErrorKind::NotFound || e.raw_os_error() == Some(3) => {
            return Probe::Missing;
        }
        Err(_) => return Probe::Unreadable,
    };
    // The command name (field 2) is in parentheses and may hold spaces or ')': fields follow the last.
    let parsed = text.rfind(')').and_then(|i| {
        let mut fields = text[i + 1..].split_whitespace();
        let state = fields.next()?.chars().next()?;
        // Field 3 was the state; field 22 is 19 further.
        let start = fields.nth(18)?.parse().ok()?;
        Some((state, start))
    });
    match parsed {
        Some((state, start)) => Probe::Found { state, start },
        None => Probe::Unreadable,
    }
}

/// A process of this boot and PID namespace that has exited (a child that ran and was waited
/// for), or `None` where `/proc` does not identify processes (tests skip then).
#[cfg(test)]
pub(crate) fn exited_process() -> Option<ProcessId> {
    let me = ProcessId::current()?;
    let mut child = std::process::Command::new("true").spawn().ok()?;
    let pid = child.id();
    child.wait().ok()?;
    Some(ProcessId { pid, ..me })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_an_exited_child_is_gone() {
        let Some(me) = ProcessId::current() else {
            eprintln!("skipping: /proc does not identify processes here");
            return;
        };
        let mine = start_ticks(me.pid);
        assert!(mine.is_some());
        assert_eq!(me.verdict_from(&me, mine), Verdict::Alive);
        assert_eq!(
            me.verdict_from(&me, mine.map(|t| t + 1)),
            Verdict::Gone("is gone (a newer process has its PID)")
        );
        let gone = exited_process().unwrap();
        assert_eq!(gone.verdict_from(&me, None), Verdict::Gone("is gone"));
        let elsewhere = ProcessId {
            pid_namespace: "pid:[1]".into(),
            ..gone
        };
        assert_eq!(elsewhere.verdict_from(&me, None), Verdict::CannotTell);
    }
}
