//! Authentication and TLS of `sluice serve` (docs/security.md): tokens made with `sluice auth
//! token`, required on every HTTP endpoint family but the probes and, as SCRAM-SHA-256 passwords,
//! on the PostgreSQL wire; HTTPS and wire TLS with a certificate made here by a CA made here
//! (`openssl`); a non-loopback address refused without authentication.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Output, Stdio};

use common::{sluice, sluice_ok, state_db, write};
use tokio_postgres::NoTls;
use tokio_postgres::error::SqlState;

/// A project with one source table and one gold model, built.
fn project(dir: &Path) {
    write(dir, "sluice.yml", "name: guarded\n");
    write(
        dir,
        "sources/files.yml",
        "kind: files\ntables:\n  - name: sales\n    path: landing/*.csv\n",
    );
    write(
        dir,
        "landing/s.csv",
        "sale_id,region,amount\n1,north,10\n2,south,20\n3,north,5\n",
    );
    write(
        dir,
        "models/gold/by_region.sql",
        "select region, sum(amount) as revenue from {{ source('files', 'sales') }} group by region",
    );
    sluice_ok(dir, &["run"]);
}

fn token_ids(dir: &Path) -> Vec<String> {
    let list: Vec<serde_json::Value> =
        serde_json::from_str(&sluice_ok(dir, &["auth", "token", "list", "--json"])).unwrap();
    list.iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect()
}

/// `sluice auth token create …`: the token (stdout) and its id (the one new in the list).
fn token(dir: &Path, user: &str, role: &str) -> (String, String) {
    let before = token_ids(dir);
    let secret = sluice_ok(
        dir,
        &["auth", "token", "create", "--user", user, "--role", role],
    )
    .trim()
    .to_string();
    assert!(secret.starts_with("slu_"), "{secret}");
    let listed = sluice_ok(dir, &["auth", "token", "list", "--json"]);
    assert!(!listed.contains(&secret[4..]), "the list shows no secret");
    let mut new: Vec<String> = token_ids(dir)
        .into_iter()
        .filter(|id| !before.contains(id))
        .collect();
    assert_eq!(new.len(), 1, "{new:?}");
    (secret, new.remove(0))
}

/// Moves token `id`'s expiry into the past, in whichever state database the project uses.
fn expire(dir: &Path, id: &str) {
    let past = "2020-01-01T00:00:00Z";
    match state_db(dir) {
        None => {
            let c = rusqlite::Connection::open(dir.join(".sluice/state.db")).unwrap();
            let n = c
                .execute(
                    "UPDATE auth_tokens SET expires_at = ?1 WHERE token_id = ?2",
                    rusqlite::params![past, id],
                )
                .unwrap();
            assert_eq!(n, 1);
        }
        Some(url) => {
            let (base, schema) = url.rsplit_once("schema=").unwrap();
            let base = base.trim_end_matches(['?', '&']).to_string();
            let (schema, id) = (schema.to_string(), id.to_string());
            tokio::runtime::Runtime::new().unwrap().block_on(async move {
                let (c, conn) = tokio_postgres::connect(&base, NoTls).await.unwrap();
                tokio::spawn(conn);
                let n = c
                    .execute(
                        &format!(
                            "UPDATE \"{schema}\".auth_tokens SET expires_at = $1 WHERE token_id = $2"
                        ),
                        &[&past, &id],
                    )
                    .await
                    .unwrap();
                assert_eq!(n, 1);
            });
        }
    }
}

/// `sluice serve` on free loopback ports; killed on drop.
struct Server {
    child: Child,
    _stdout: BufReader<ChildStdout>,
    http: String,
    pg: String,
    banner: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("--project")
        .arg(dir)
        .arg("serve")
        .args(["--no-scheduler"])
        .args(args)
        .env("SLUICE_LOG", "error");
    if let Some(state) = state_db(dir) {
        cmd.env("SLUICE_STATE_DB", state);
    }
    cmd
}

impl Server {
    fn start(dir: &Path, extra: &[&str]) -> Server {
        let mut args = vec![
            "--http",
            "127.0.0.1:0",
            "--pg",
            "127.0.0.1:0",
            "--flight",
            "127.0.0.1:0",
        ];
        args.extend_from_slice(extra);
        let mut child = serve_command(dir, &args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut banner = String::new();
        let mut http = String::new();
        let pg = loop {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                let _ = child.kill();
                panic!("sluice serve ended before announcing PostgreSQL:\n{banner}");
            }
            banner.push_str(&line);
            if let Some(rest) = line.strip_prefix("Serving the Sluice API at ") {
                http = rest
                    .split("://")
                    .nth(1)
                    .and_then(|s| s.split('/').next())
                    .unwrap()
                    .to_string();
            }
            if let Some(rest) = line.strip_prefix("PostgreSQL wire protocol at ") {
                break rest.split_whitespace().next().unwrap().to_string();
            }
        };
        Server {
            child,
            _stdout: stdout,
            http,
            pg,
            banner,
        }
    }
}

/// One plain HTTP/1.1 request with an optional bearer token: (status, head, body).
fn request(
    addr: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> (u16, String, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let req = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n{auth}\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_string())
}

/// One request of every endpoint family (reads and operations).
const ENDPOINTS: &[(&str, &str, Option<&str>)] = &[
    ("GET", "/api/assets", None),
    ("GET", "/api/assets/by_region", None),
    ("GET", "/api/assets/by_region/rows", None),
    ("GET", "/api/assets/by_region/history", None),
    ("GET", "/api/assets/by_region/partitions", None),
    ("POST", "/api/sql", Some(r#"{"sql": "select 1"}"#)),
    ("GET", "/api/runs", None),
    ("GET", "/api/runs/r1", None),
    ("POST", "/api/runs", Some("{}")),
    ("POST", "/api/runs/r1/cancel", Some("{}")),
    ("POST", "/api/runs/r1/retry", Some("{}")),
    ("GET", "/api/schedules", None),
    ("POST", "/api/backfills", Some("{}")),
    ("GET", "/api/backfills/b1", None),
    ("GET", "/api/checks", None),
    ("GET", "/api/freshness", None),
    ("GET", "/api/dashboards", None),
    ("GET", "/api/lineage", None),
    ("GET", "/api/queries", None),
    ("POST", "/api/queries/q1/cancel", Some("{}")),
    ("GET", "/api/openapi.json", None),
    ("GET", "/metrics", None),
];

fn assert_401(addr: &str, token: Option<&str>, expect: &str) {
    for (method, path, body) in ENDPOINTS {
        let (status, head, body) = request(addr, method, path, token, *body);
        assert_eq!(status, 401, "{method} {path} with {token:?}: {body}");
        assert!(
            head.contains("www-authenticate: bearer"),
            "{method} {path}: {head}"
        );
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        let error = json["error"].as_str().unwrap();
        assert!(error.contains(expect), "{method} {path}: {error}");
    }
}

async fn connect(
    pg: &str,
    user: &str,
    password: Option<&str>,
) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
    let (host, port) = pg.rsplit_once(':').unwrap();
    let mut config = tokio_postgres::Config::new();
    config
        .host(host)
        .port(port.parse().unwrap())
        .user(user)
        .dbname("sluice");
    if let Some(p) = password {
        config.password(p);
    }
    let (client, conn) = config.connect(NoTls).await?;
    tokio::spawn(conn);
    Ok(client)
}

fn login_refused(result: Result<tokio_postgres::Client, tokio_postgres::Error>, what: &str) {
    let e = result
        .err()
        .unwrap_or_else(|| panic!("{what}: the login was accepted"));
    assert_eq!(e.code(), Some(&SqlState::INVALID_PASSWORD), "{what}: {e:?}");
}

#[test]
fn tokens_guard_every_endpoint_family_and_the_wire() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    project(dir);
    let (reader, _) = token(dir, "ana", "reader");
    let (operator, _) = token(dir, "ops", "operator");
    let (old, old_id) = token(dir, "ana", "reader");
    expire(dir, &old_id);
    let (gone, gone_id) = token(dir, "bo", "admin");
    assert!(sluice_ok(dir, &["auth", "token", "revoke", &gone_id]).contains(&gone_id));
    let again = sluice(dir, &["auth", "token", "revoke", &gone_id]);
    assert!(!again.status.success(), "revoking twice is an error");
    let bad_role = sluice(
        dir,
        &["auth", "token", "create", "--user", "x", "--role", "root"],
    );
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("unknown role `root`"));

    let server = Server::start(dir, &[]);
    assert!(
        !server.banner.contains("Authentication: off"),
        "{}",
        server.banner
    );
    let addr = &server.http;

    // No credentials, a wrong token, an expired one, a revoked one: 401 everywhere.
    assert_401(addr, None, "authentication required");
    let mut wrong = reader.clone();
    wrong.replace_range(10..14, "AAAA");
    assert_401(addr, Some(&wrong), "invalid token");
    assert_401(addr, Some("not-a-token"), "invalid token");
    assert_401(addr, Some(&old), "expired");
    assert_401(addr, Some(&gone), "revoked");
    let (status, _, _) = request(addr, "GET", "/api/assets", None, None);
    assert_eq!(status, 401);

    // The probes and the UI's files (the sign-in page) stay open.
    for path in ["/api/health", "/api/ready", "/", "/ui/js/signin.js"] {
        let (status, _, body) = request(addr, "GET", path, None, None);
        assert_eq!(status, 200, "{path}: {body}");
    }

    // A reader reads (GET, POST /api/sql) but may not operate; an operator may.
    let (status, _, body) = request(addr, "GET", "/api/assets", Some(&reader), None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("by_region"), "{body}");
    let (status, _, body) = request(
        addr,
        "POST",
        "/api/sql?format=json",
        Some(&reader),
        Some(r#"{"sql": "select count(*) as n from gold.by_region"}"#),
    );
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"n\":2"), "{body}");
    for (method, path, body) in ENDPOINTS
        .iter()
        .filter(|(m, p, _)| *m == "POST" && *p != "/api/sql")
    {
        let (status, _, answer) = request(addr, method, path, Some(&reader), *body);
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert!(answer.contains("operator"), "{answer}");
    }
    let (status, _, body) = request(
        addr,
        "POST",
        "/api/runs/r1/cancel",
        Some(&operator),
        Some("{}"),
    );
    assert_ne!(status, 401, "{body}");
    assert_ne!(status, 403, "{body}");

    // The wire: SCRAM-SHA-256 with a token as the password.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let none = connect(&server.pg, "ana", None).await;
        assert!(none.is_err(), "a login without a password is refused");
        login_refused(
            connect(&server.pg, "ana", Some(&wrong)).await,
            "wrong token",
        );
        login_refused(
            connect(&server.pg, "ana", Some(&old)).await,
            "expired token",
        );
        login_refused(
            connect(&server.pg, "bo", Some(&gone)).await,
            "revoked token",
        );
        login_refused(
            connect(&server.pg, "ops", Some(&reader)).await,
            "another user's token",
        );
        login_refused(
            connect(&server.pg, "nobody", Some(&reader)).await,
            "unknown user",
        );
        let client = connect(&server.pg, "ana", Some(&reader)).await.unwrap();
        let row = client
            .query_one("select count(*) from gold.by_region", &[])
            .await
            .unwrap();
        assert_eq!(row.get::<_, i64>(0), 2);
    });

    // psql, as the docs show it.
    let (host, port) = server.pg.rsplit_once(':').unwrap();
    if let Some(out) = psql(
        &[
            "-h",
            host,
            "-p",
            port,
            "-U",
            "ana",
            "-d",
            "sluice",
            "-tAc",
            "select 40 + 2",
        ],
        Some(&reader),
    ) {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
        let out = psql(
            &[
                "-h", host, "-p", port, "-U", "ana", "-d", "sluice", "-tAc", "select 1",
            ],
            Some(&wrong),
        )
        .unwrap();
        assert!(!out.status.success());
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("password authentication failed"),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Runs `psql` with `PGPASSWORD` (never prompting); `None` when psql is not installed.
fn psql(args: &[&str], password: Option<&str>) -> Option<Output> {
    let mut cmd = Command::new("psql");
    cmd.args(args).arg("-w").env_remove("PGSERVICE");
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    match cmd.output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var("CI").ok().as_deref() != Some("true"),
                "psql is missing under CI"
            );
            eprintln!("psql is not installed: skipping its part");
            None
        }
        Err(e) => panic!("psql: {e}"),
    }
}

/// A CA and a server certificate it signed, for `localhost` and 127.0.0.1: (ca, cert, key).
fn certificates(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let run = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    write(
        dir,
        "san.cnf",
        "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
    );
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=sluice test CA",
    ]);
    run(&[
        "req",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        "other.key",
        "-out",
        "other.pem",
        "-days",
        "2",
        "-subj",
        "/CN=another CA",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.cnf",
    ]);
    (
        dir.join("ca.pem"),
        dir.join("server.pem"),
        dir.join("server.key"),
    )
}

#[test]
fn tls_on_both_listeners_with_a_generated_ca() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p");
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    project(&dir);
    let (reader, _) = token(&dir, "ana", "reader");
    let (ca, cert, key) = certificates(&certs);
    let server = Server::start(
        &dir,
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    assert!(server.banner.contains("https://"), "{}", server.banner);
    let port = server.http.rsplit_once(':').unwrap().1.to_string();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca).unwrap()).unwrap();
        let client = reqwest::Client::builder()
            .tls_certs_only([ca])
            .build()
            .unwrap();
        let url = format!("https://localhost:{port}");
        let r = client
            .get(format!("{url}/api/health"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let r = client
            .get(format!("{url}/api/assets"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        let r = client
            .get(format!("{url}/api/assets"))
            .bearer_auth(&reader)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("by_region"));
        // A client that does not trust the CA does not get through.
        let untrusting = reqwest::Client::builder().build().unwrap();
        assert!(
            untrusting
                .get(format!("{url}/api/health"))
                .send()
                .await
                .is_err()
        );
    });
    // Plain HTTP to the HTTPS port gets no API answer.
    let mut s = std::net::TcpStream::connect(&server.http).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let _ = s.write_all(b"GET /api/health HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    assert!(!String::from_utf8_lossy(&buf).contains("200 OK"));

    // The wire: psql verifies the certificate against the CA, then logs in over TLS.
    let pg_port = server.pg.rsplit_once(':').unwrap().1;
    let conninfo = format!(
        "host=localhost port={pg_port} user=ana dbname=sluice sslmode=verify-full sslrootcert={}",
        ca.display()
    );
    if let Some(out) = psql(&[&conninfo, "-tAc", "select 7 * 6"], Some(&reader)) {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "42");
        // Trusting another CA, verify-full fails: the connection really was TLS with that certificate.
        let other = format!(
            "host=localhost port={pg_port} user=ana dbname=sluice sslmode=verify-full sslrootcert={}",
            cert.with_file_name("other.pem").display()
        );
        let out = psql(&[&other, "-tAc", "select 1"], Some(&reader)).unwrap();
        assert!(
            !out.status.success(),
            "a certificate not from the trusted CA is refused"
        );
    }
}

#[test]
fn a_non_loopback_address_is_refused_without_authentication() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    write(dir, "sluice.yml", "name: exposed\n");
    for args in [
        &["--http", "0.0.0.0:0", "--no-pg"][..],
        &["--http", "127.0.0.1:0", "--pg", "0.0.0.0:0"][..],
    ] {
        let out = serve_command(dir, args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("refusing to serve"), "{stderr}");
        assert!(stderr.contains("without authentication"), "{stderr}");
        assert!(stderr.contains("sluice auth token create"), "{stderr}");
        assert!(stderr.contains("serve.auth"), "{stderr}");
    }

    // On loopback it starts open and says so.
    let open = Server::start(dir, &[]);
    assert!(
        open.banner.contains("Authentication: off"),
        "{}",
        open.banner
    );
    let (status, _, _) = request(&open.http, "GET", "/api/assets", None, None);
    assert_eq!(status, 200);
    drop(open);

    // `serve.auth: required` turns it on before any token exists.
    write(
        dir,
        "sluice.yml",
        "name: exposed\nserve:\n  auth: required\n",
    );
    let required = Server::start(dir, &[]);
    assert!(
        !required.banner.contains("Authentication: off"),
        "{}",
        required.banner
    );
    let (status, _, _) = request(&required.http, "GET", "/api/assets", None, None);
    assert_eq!(status, 401);
    let (status, _, _) = request(&required.http, "GET", "/api/health", None, None);
    assert_eq!(status, 200);
    drop(required);

    // With a token, a wildcard address is served.
    write(dir, "sluice.yml", "name: exposed\n");
    let (reader, _) = token(dir, "ana", "reader");
    let mut child = serve_command(dir, &["--http", "0.0.0.0:0", "--no-pg"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let _ = child.kill();
    let _ = child.wait();
    assert!(
        line.starts_with("Serving the Sluice API at http://0.0.0.0:"),
        "{line}"
    );
    assert!(!reader.is_empty());
}
