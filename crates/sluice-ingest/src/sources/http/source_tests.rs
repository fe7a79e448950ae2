//! Parsing and validating `kind: http` source files (no network).

use super::*;

fn parse(text: &str) -> Result<HttpSource, IngestError> {
    let decl = SourceDecl::parse(std::path::Path::new("sources/api.yml"), text).unwrap();
    HttpSource::from_decl(&decl, Path::new("."))
}

#[test]
fn urls_modes_and_secrets() {
    let s = parse(
        "kind: http\nbase_url: http://127.0.0.1:9/api/\nauth: {type: bearer, token: s3cr3t}\n\
         rate_limit: 5/s\ntables:\n  - name: orders\n    path: /v1/orders\n    params: {status: all}\n    \
         incremental: {param: since, cursor_field: updated_at}\n  - name: users\n    path: https://other.example/u\n",
    )
    .unwrap();
    let (orders, url) = s.table("orders").unwrap();
    assert_eq!(url.as_str(), "http://127.0.0.1:9/api/v1/orders?status=all");
    assert_eq!(
        orders.mode(),
        Mode::Incremental,
        "incremental: implies the mode"
    );
    let (users, url) = s.table("users").unwrap();
    assert_eq!(url.as_str(), "https://other.example/u");
    assert_eq!(users.mode(), Mode::Full);
    assert!(!format!("{s:?}").contains("s3cr3t"), "Debug hides secrets");
    assert!(matches!(
        s.table("nope"),
        Err(IngestError::UnknownTable { .. })
    ));
}

#[test]
fn invalid_files_name_the_field() {
    let err = |text: &str| parse(text).err().unwrap().to_string();
    let e = err(
        "kind: http\nbase_url: http://h\ntables:\n  - name: a\n    path: /a\n    mode: incremental\n",
    );
    assert!(e.contains("tables[0].incremental"), "{e}");
    let e = err("kind: http\nbase_url: http://h\nrate_limit: lots\ntables: []\n");
    assert!(e.contains("rate_limit") && e.contains("10/s"), "{e}");
    let e = err(
        "kind: http\nbase_url: http://h\ntables:\n  - name: a\n    path: /a\n    pagination: {type: pages}\n",
    );
    assert!(e.contains("pages"), "{e}");
    let e = err("kind: http\nbase_url: not a url\ntables: []\n");
    assert!(e.contains("base_url"), "{e}");
    let e = err(
        "kind: http\nbase_url: http://h\nauth: {type: bearer, token: \"${SLUICE_TEST_SURELY_UNSET_TOKEN}\"}\ntables: []\n",
    );
    assert!(e.contains("SLUICE_TEST_SURELY_UNSET_TOKEN"), "{e}");
    let e = err("kind: http\nbase_url: http://h\nheaders: {\"bad header\": x}\ntables: []\n");
    assert!(e.contains("headers.bad header"), "{e}");
}
