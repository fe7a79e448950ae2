//! A real S3-protocol server for the tests of this and other crates (docs/object-storage.md).
//!
//! [`S3Server::start`] starts a server process of its own — moto's S3 server from PyPI, which
//! `.ci/run` installs into a virtualenv under `/var/tmp/sluice-tools` — on a free port chosen by the
//! operating system, with a bucket of its own and its data in its own memory, so tests share
//! nothing. The server handles one request at a time, which makes its `If-None-Match: *` check
//! and the write after it one atomic step, as on AWS S3 (a threaded moto could let two racing
//! conditional puts both succeed, which would make the concurrent-writer tests meaningless).
//!
//! The server's Python is `SLUICE_TEST_S3_PYTHON` or [`DEFAULT_PYTHON`]. When it is missing, a test
//! fails under `CI=true` and is skipped with a printed note otherwise. The server exits when the
//! [`S3Server`] is dropped, and also when the test process dies (it watches its stdin).

use std::io::{BufRead as _, BufReader};
use std::process::{Child, ChildStdin, Command, Stdio};

use sluice_core::lake_options::LakeOptions;

/// The variable naming the Python that has `moto[server]` installed.
pub const PYTHON_VAR: &str = "SLUICE_TEST_S3_PYTHON";

/// Where `.ci/run` installs it.
pub const DEFAULT_PYTHON: &str = "/var/tmp/sluice-tools/moto-venv/bin/python";

/// Access key id and secret the server accepts (any are; these are not secrets).
pub const TEST_KEY: &str = "sluice-test";

/// Starts moto's S3 backend on 127.0.0.1, port 0 (the OS picks a free one), creates the bucket
/// `argv[1]`, prints the port, and serves one request at a time until stdin closes.
const LAUNCHER: &str = r#"
import logging, os, sys, threading
from werkzeug.serving import make_server
from moto.core import DEFAULT_ACCOUNT_ID
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
from moto.s3.models import s3_backends
logging.getLogger("werkzeug").setLevel(logging.ERROR)
s3_backends[DEFAULT_ACCOUNT_ID]["aws"].create_bucket(sys.argv[1], "us-east-1")
server = make_server("127.0.0.1", 0, DomainDispatcherApplication(create_backend_app),
                     threaded=False, request_handler=MotoRequestHandler)
def exit_with_parent():
    sys.stdin.read()
    os._exit(0)
threading.Thread(target=exit_with_parent, daemon=True).start()
print(server.server_port, flush=True)
server.serve_forever()
"#;

/// One S3 server process with one bucket; stopped on drop.
#[derive(Debug)]
pub struct S3Server {
    child: Child,
    /// Held open: the server exits when it closes.
    _stdin: Option<ChildStdin>,
    port: u16,
    bucket: String,
}

impl S3Server {
    /// Starts a server holding the empty bucket `bucket`. `None` (after printing why) when the
    /// server is not installed and `CI` is not `true`; under CI that is a panic, a test failure.
    pub fn start(bucket: &str) -> Option<S3Server> {
        let python = std::env::var(PYTHON_VAR)
            .ok()
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| DEFAULT_PYTHON.to_string());
        let installed = Command::new(&python)
            .args(["-c", "import moto.server, werkzeug"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            let why = format!(
                "no S3 test server: {python} cannot import moto (install it with .ci/run, or set \
                 {PYTHON_VAR} to a Python with `moto[server]`)"
            );
            assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
            eprintln!("SKIPPED: {why}");
            return None;
        }
        let mut child = Command::new(&python)
            .args(["-c", LAUNCHER, bucket])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("starting the S3 test server with {python}: {e}"));
        let stdin = child.stdin.take();
        let mut line = String::new();
        if let Some(stdout) = child.stdout.take() {
            // Blocks until the server has bound its port and created the bucket (or died).
            let _ = BufReader::new(stdout).read_line(&mut line);
        }
        let Ok(port) = line.trim().parse::<u16>() else {
            let _ = child.kill();
            let status = child.wait();
            panic!("the S3 test server did not start (exit {status:?}); see its error above");
        };
        Some(S3Server {
            child,
            _stdin: stdin,
            port,
            bucket: bucket.to_string(),
        })
    }

    /// The endpoint URL (`http://127.0.0.1:PORT`).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The bucket.
    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    /// `s3://BUCKET/PREFIX`, a lake location in this server.
    pub fn lake_url(&self, prefix: &str) -> String {
        format!("s3://{}/{}", self.bucket, prefix.trim_matches('/'))
    }

    /// The `lake_options` of a lake in this server, with the test credentials in the options (for
    /// lakes opened in the test process: setting environment variables there would race other
    /// tests).
    pub fn options(&self) -> LakeOptions {
        LakeOptions {
            endpoint: Some(self.endpoint()),
            region: Some("us-east-1".into()),
            path_style: Some(true),
            allow_http: Some(true),
            access_key_id: Some(TEST_KEY.into()),
            secret_access_key: Some(TEST_KEY.into()),
            session_token: None,
        }
    }

    /// `lake:` and `lake_options:` lines for a `sluice.yml`, credentials left to the environment
    /// (see [`S3Server::env`]), as a user writes them.
    pub fn sluice_yml(&self, prefix: &str) -> String {
        format!(
            "lake: {}\nlake_options:\n  endpoint: {}\n  region: us-east-1\n  path_style: true\n  allow_http: true\n",
            self.lake_url(prefix),
            self.endpoint()
        )
    }

    /// The environment a `sluice` process needs to reach this server: the standard AWS
    /// credential variables.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ACCESS_KEY_ID", TEST_KEY.to_string()),
            ("AWS_SECRET_ACCESS_KEY", TEST_KEY.to_string()),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
