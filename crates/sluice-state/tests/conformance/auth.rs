//! [`AuthTokens`]: users and their salts, tokens by hash and by user, revoking, counting.

use sluice_state::{State, TokenRecord};

fn record(id: &str, user: &str, hash: &str) -> TokenRecord {
    TokenRecord {
        id: id.to_string(),
        user: user.to_string(),
        role: "reader".to_string(),
        token_hash: hash.to_string(),
        scram_iterations: 4096,
        scram_stored_key: format!("stored-{id}"),
        scram_server_key: format!("server-{id}"),
        created_at: format!("2026-01-01T00:00:0{}Z", id.len() % 10),
        expires_at: (id == "t2").then(|| "2027-01-01T00:00:00Z".to_string()),
        revoked_at: None,
    }
}

pub fn users_and_tokens(s: &dyn State) {
    assert_eq!(s.token_count().unwrap(), 0);
    assert!(s.tokens().unwrap().is_empty());
    assert!(s.user_tokens("ana").unwrap().is_none());
    // The first salt given is the user's; later ones are ignored.
    assert_eq!(s.user_salt("ana", "salt-1", "t").unwrap(), "salt-1");
    assert_eq!(s.user_salt("ana", "salt-2", "t").unwrap(), "salt-1");
    assert_eq!(s.user_salt("bo", "salt-3", "t").unwrap(), "salt-3");
    let (a, b, c) = (
        record("t1", "ana", "h1"),
        record("t2", "ana", "h2"),
        record("t3x", "bo", "h3"),
    );
    for t in [&a, &b, &c] {
        s.insert_token(t).unwrap();
    }
    assert!(
        s.insert_token(&record("t4", "ana", "h1")).is_err(),
        "hashes are unique"
    );
    assert_eq!(s.token_count().unwrap(), 3);
    assert_eq!(s.token_by_hash("h2").unwrap(), Some(b.clone()));
    assert_eq!(s.token_by_hash("nope").unwrap(), None);
    let ana = s.user_tokens("ana").unwrap().unwrap();
    assert_eq!(ana.scram_salt, "salt-1");
    assert_eq!(ana.tokens, [a, b]);
    assert_eq!(s.user_tokens("bo").unwrap().unwrap().tokens, [c]);

    assert!(s.revoke_token("t1", "2026-02-01T00:00:00Z").unwrap());
    assert!(
        !s.revoke_token("t1", "2026-03-01T00:00:00Z").unwrap(),
        "once"
    );
    assert!(!s.revoke_token("none", "2026-03-01T00:00:00Z").unwrap());
    let revoked = s.token_by_hash("h1").unwrap().unwrap();
    assert_eq!(revoked.revoked_at.as_deref(), Some("2026-02-01T00:00:00Z"));
    assert_eq!(s.token_count().unwrap(), 3, "a revoked token still counts");
    assert_eq!(s.tokens().unwrap().len(), 3);
}
