//! PII stays protected everywhere: `pii: {email: hash}` is an HMAC under the project's key (stable
//! across runs, different under another key), a row rejected into quarantine keeps only the hash,
//! and no file of the lake (Parquet data and footers, the Delta log), the state database, nor the
//! commands' output holds the clear value. A missing key is an error, never an unkeyed digest.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::write;
use sluice_core::pii::PiiKey;
use sluice_ingest::landing::hash;

const KEY1: &str = "pii-test-key-one";
const KEY2: &str = "pii-test-key-two";

/// Runs `sluice` in `project` with the PII key `key` (none: `SLUICE_PII_KEY` unset); SQLite state.
fn sluice(project: &Path, key: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_sluice"));
    cmd.arg("--project")
        .arg(project)
        .args(args)
        .env("SLUICE_LOG", "debug")
        .env_remove("SLUICE_STATE_DB");
    match key {
        Some(k) => cmd.env("SLUICE_PII_KEY", k),
        None => cmd.env_remove("SLUICE_PII_KEY"),
    };
    cmd.output().expect("run sluice")
}

/// Runs, asserts success, and returns stdout and stderr together.
fn sluice_ok(project: &Path, key: Option<&str>, args: &[&str]) -> String {
    let out = sluice(project, key, args);
    let text = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "sluice {args:?} failed:\n{text}");
    text
}

fn rows(project: &Path, key: &str, sql: &str) -> Vec<serde_json::Value> {
    let out = sluice(project, Some(key), &["query", "--format", "json", sql]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("json row"))
        .collect()
}

fn victim(n: u32) -> String {
    format!("victim{n}.clear@example.org")
}

/// Every file below `dir` (but `skip`) whose bytes contain `needle`.
fn files_containing(dir: &Path, skip: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path == skip {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .unwrap_or_default()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                hits.push(path.display().to_string());
            }
        }
    }
    hits
}

#[test]
fn hashed_email_of_a_quarantined_row_is_the_only_trace() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("p");
    write(&p, "sluice.yml", "name: pii\ndefaults:\n  retries: 0\n");
    write(
        &p,
        "sources/crm.yml",
        "kind: files\ntables:\n  - name: people\n    path: data/people/*.jsonl\n    \
         columns: {id: int, amount: double}\n    pii: {email: hash}\n  - name: leads\n    \
         path: data/leads/*.csv\n    columns: {id: int, amount: double}\n    pii: {email: hash}\n",
    );
    // Run 1: victim 1 lands, victim 2's row is rejected (`amount` is not a number).
    write(
        &p,
        "data/people/1.jsonl",
        &format!(
            "{{\"id\":1,\"email\":\"{}\",\"amount\":10.5}}\n{{\"id\":2,\"email\":\"{}\",\"amount\":\"lots\"}}\n",
            victim(1),
            victim(2)
        ),
    );
    write(
        &p,
        "data/leads/1.csv",
        &format!(
            "id,email,amount\n3,{},1\n4,{},lots\n5,{},1,extra\n",
            victim(3),
            victim(4),
            victim(5)
        ),
    );

    // No key: validate and run refuse, naming the source, table and column.
    let out = sluice(&p, None, &["validate"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("source `crm`: table `people`: column `email` has `pii: hash`")
            && text.contains("SLUICE_PII_KEY"),
        "{text}"
    );
    let out = sluice(&p, None, &["run"]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(text.contains("needs the project's PII key"), "{text}");
    assert!(
        !p.join("lake/bronze/crm/people").exists(),
        "nothing landed without a key"
    );

    let k1 = PiiKey::new(KEY1.as_bytes());
    let k2 = PiiKey::new(KEY2.as_bytes());
    let mut logs = sluice_ok(&p, Some(KEY1), &["validate"]);
    logs += &sluice_ok(&p, Some(KEY1), &["run"]);

    // The quarantined JSON row keeps its fields, with the email as its keyed hash only.
    let q = rows(&p, KEY1, "select raw, reason from quarantine.crm__people");
    assert_eq!(q.len(), 1, "{q:?}");
    let raw: serde_json::Value = serde_json::from_str(q[0]["raw"].as_str().unwrap()).unwrap();
    assert_eq!(raw["id"], 2);
    assert_eq!(raw["email"], hash(&k1, &victim(2)));
    assert_eq!(raw["amount"], "lots");
    // A CSV line is kept as its named fields, with the rules applied; a line that does not split
    // into the header's fields is withheld (its file and line still point at it).
    let q = rows(
        &p,
        KEY1,
        "select raw, source_file, line from quarantine.crm__leads order by line",
    );
    assert_eq!(q.len(), 2, "{q:?}");
    let raw: serde_json::Value = serde_json::from_str(q[0]["raw"].as_str().unwrap()).unwrap();
    assert_eq!(
        raw,
        serde_json::json!({"id": "4", "email": hash(&k1, &victim(4)), "amount": "lots"})
    );
    assert_eq!(q[0]["line"], 3);
    assert_eq!(q[1]["raw"], sluice_ingest::landing::WITHHELD_RAW);
    assert_eq!(q[1]["line"], 4);

    let bronze = rows(&p, KEY1, "select id, email from bronze.crm__people");
    assert_eq!(bronze.len(), 1);
    let first = hash(&k1, &victim(1));
    assert_eq!(bronze[0]["email"], first);
    assert_ne!(first, hash(&k2, &victim(1)));

    // Run 2, same key: the same email hashes the same (joins across runs hold).
    write(
        &p,
        "data/people/2.jsonl",
        &format!("{{\"id\":5,\"email\":\"{}\",\"amount\":1}}\n", victim(1)),
    );
    logs += &sluice_ok(&p, Some(KEY1), &["run"]);
    // Run 3, another key: the same email hashes differently.
    write(
        &p,
        "data/people/3.jsonl",
        &format!("{{\"id\":6,\"email\":\"{}\",\"amount\":1}}\n", victim(1)),
    );
    logs += &sluice_ok(&p, Some(KEY2), &["run"]);
    let bronze = rows(
        &p,
        KEY1,
        "select id, email from bronze.crm__people order by id",
    );
    let emails: Vec<&str> = bronze
        .iter()
        .map(|r| r["email"].as_str().unwrap())
        .collect();
    assert_eq!(
        emails,
        [first.as_str(), first.as_str(), &hash(&k2, &victim(1))]
    );

    // No clear value anywhere: lake (Parquet, Delta log), state database, commands' output.
    let data = p.join("data");
    assert!(p.join("lake/_quarantine").is_dir() && p.join(".sluice").is_dir());
    for n in 1..=5 {
        let v = victim(n);
        assert_eq!(files_containing(&p, &data, &v), Vec::<String>::new(), "{v}");
        assert!(!logs.contains(&v), "{v} in the output:\n{logs}");
        // Nor a prefix as long as Delta's 32-character statistics truncation.
        assert!(files_containing(&p, &data, &v[..12]).is_empty(), "{v}");
    }
    // The check would see a clear value: the hash of victim 2 is in the quarantine's files.
    assert!(
        !files_containing(&p.join("lake/_quarantine"), &data, &hash(&k1, &victim(2))).is_empty()
    );
}
