use chrono::{Duration, Utc};
use sluice_orchestrate::StateStore;

use super::*;

fn store() -> StateStore {
    StateStore::in_memory().unwrap()
}

#[test]
fn a_token_is_shown_once_stored_hashed_and_verifies_as_its_user_and_role() {
    let state = store();
    assert_eq!(mode(&state, false).unwrap(), AuthMode::Open);
    let t = create_token(&state, "ana", Role::Operator, None, Utc::now()).unwrap();
    assert!(t.secret.starts_with("slu_"));
    assert_eq!(t.secret.len(), 4 + 43, "256 bits in base64url");
    let stored = list_tokens(&state).unwrap();
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].token_hash, token_hash(&t.secret));
    assert!(
        !format!("{stored:?}").contains(&t.secret[4..]),
        "no secret stored"
    );
    let p = verify_token(&state, &t.secret).unwrap();
    assert_eq!(p.user, "ana");
    assert_eq!(p.role, Role::Operator);
    assert_eq!(p.token_id, t.record.id);
    assert_eq!(mode(&state, false).unwrap(), AuthMode::Required);
}

#[test]
fn wrong_expired_and_revoked_tokens_are_refused() {
    let state = store();
    let good = create_token(&state, "bo", Role::Reader, None, Utc::now()).unwrap();
    let mut wrong = good.secret.clone();
    wrong.pop();
    wrong.push('x');
    assert!(matches!(
        verify_token(&state, &wrong),
        Err(AuthError::Invalid)
    ));
    assert!(matches!(
        verify_token(&state, "Bearer"),
        Err(AuthError::Invalid)
    ));
    let old = create_token(
        &state,
        "bo",
        Role::Reader,
        Some(Duration::hours(1)),
        Utc::now() - Duration::hours(2),
    )
    .unwrap();
    assert!(matches!(
        verify_token(&state, &old.secret),
        Err(AuthError::Expired { .. })
    ));
    assert!(revoke_token(&state, &good.record.id).unwrap());
    assert!(!revoke_token(&state, &good.record.id).unwrap(), "only once");
    assert!(!revoke_token(&state, "tok_nope").unwrap());
    assert!(matches!(
        verify_token(&state, &good.secret),
        Err(AuthError::Revoked { .. })
    ));
    // Revoking every token keeps authentication on.
    assert_eq!(mode(&state, false).unwrap(), AuthMode::Required);
}

#[test]
fn a_users_tokens_share_its_salt_and_their_scram_keys_check_a_login() {
    let state = store();
    let a = create_token(&state, "cy", Role::Reader, None, Utc::now()).unwrap();
    let b = create_token(&state, "cy", Role::Admin, None, Utc::now()).unwrap();
    let user = state.backend().user_tokens("cy").unwrap().unwrap();
    assert_eq!(user.tokens.len(), 2);
    let salt = STANDARD.decode(&user.scram_salt).unwrap();
    for t in [&a, &b] {
        let rec = user.tokens.iter().find(|r| r.id == t.record.id).unwrap();
        let keys = scram::Keys::derive(&t.secret, &salt, scram::ITERATIONS);
        assert_eq!(STANDARD.encode(&keys.stored_key), rec.scram_stored_key);
        assert_eq!(STANDARD.encode(&keys.server_key), rec.scram_server_key);
    }
    assert!(state.backend().user_tokens("nobody").unwrap().is_none());
}

#[test]
fn bad_users_roles_and_expiries_are_clear_errors() {
    let state = store();
    for user in ["", "a b", "x;drop", &"u".repeat(64)] {
        assert!(matches!(
            create_token(&state, user, Role::Reader, None, Utc::now()),
            Err(AuthError::InvalidUser(_))
        ));
    }
    assert!(matches!(
        "no such role".parse::<Role>(),
        Err(AuthError::UnknownRole(_))
    ));
    assert_eq!(
        "analyst".parse::<Role>().unwrap(),
        Role::Named("analyst".into())
    );
    assert_eq!(parse_expiry("30d").unwrap(), Duration::days(30));
    assert_eq!(parse_expiry("12h").unwrap(), Duration::hours(12));
    assert_eq!(parse_expiry("2w").unwrap(), Duration::weeks(2));
    assert_eq!(parse_expiry("90m").unwrap(), Duration::minutes(90));
    for bad in ["", "d", "0d", "-1d", "3y", "30", "99999999999999d"] {
        assert!(parse_expiry(bad).is_err(), "{bad}");
    }
}
