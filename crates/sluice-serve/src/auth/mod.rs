//! Authentication of `sluice serve`: API tokens, checked on the HTTP API (`crate::http::auth`) and,
//! as SCRAM-SHA-256 passwords, on the PostgreSQL wire ([`scram`], `crate::pg::startup`). The user
//! guide is `docs/security.md`.
//!
//! A token is `slu_` and 43 characters of URL-safe base64: 256 random bits from the operating
//! system. It is shown once, when made ([`create_token`]); the state database keeps only:
//!
//! - the hex SHA-256 of its text, which the bearer check looks up. A plain fast hash is right here,
//!   unlike for passwords (where argon2 or bcrypt make guessing slow): a password has few bits of
//!   entropy and can be guessed from a list, a 256-bit random token cannot be guessed at any speed,
//!   so slowing the hash would only slow every request;
//! - the SCRAM-SHA-256 `StoredKey` and `ServerKey` derived from it with the user's salt (RFC 5802),
//!   which check a wire client's proof without the token itself. Neither gives the token back.
//!
//! [`verify_token`] is the one check every listener calls: a token that is unknown, revoked or
//! past its expiry is refused with an [`AuthError`] that says which (the text of a token must be
//! known to learn that it expired or was revoked).

pub mod scram;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::{DateTime, SecondsFormat, Utc};
use ring::rand::{SecureRandom, SystemRandom};
use sluice_orchestrate::StateStore;
use sluice_state::{StateError, TokenRecord};

/// What every token's text starts with (so secret scanners and people recognise one).
pub const TOKEN_PREFIX: &str = "slu_";

/// Whether the listeners require authentication (docs/security.md, "When authentication is on").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum AuthMode {
    /// Anyone who reaches the listeners is served (loopback development mode).
    #[default]
    Open,
    /// Every HTTP request but the probes needs a bearer token; the wire needs a SCRAM password.
    Required,
}

/// A role a token carries: a built-in one, or one `access.yml` defines (the `access` module says
/// what each may do).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Reads every table (masked, when `access.yml` masks columns).
    Reader,
    /// Also starts, cancels and retries runs and backfills, and cancels queries.
    Operator,
    /// Everything, unmasked; manages tokens and reads the audit log.
    Admin,
    /// A role of `access.yml`.
    Named(String),
}

impl Role {
    /// Whether the built-in meaning of the role lets it change something (start, cancel or retry
    /// runs and backfills). With `access.yml`, the `access` module's `Access::may_operate` decides.
    pub fn may_operate(&self) -> bool {
        matches!(self, Role::Operator | Role::Admin)
    }

    /// The role's name.
    pub fn as_str(&self) -> &str {
        match self {
            Role::Reader => "reader",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Named(n) => n,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = AuthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "reader" => Ok(Role::Reader),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other if sluice_core::source::is_valid_identifier(other) => {
                Ok(Role::Named(other.to_string()))
            }
            other => Err(AuthError::UnknownRole(other.to_string())),
        }
    }
}

/// Who a request or a session is, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user name.
    pub user: String,
    /// The role of the token used.
    pub role: Role,
    /// The id of the token used.
    pub token_id: String,
}

/// Why a token, or a request to make one, was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credentials were sent.
    #[error("authentication required: send `Authorization: Bearer <token>`")]
    Missing,
    /// The `Authorization` header is not a bearer token.
    #[error("the Authorization header must be `Bearer <token>`")]
    Malformed,
    /// No such token.
    #[error("invalid token")]
    Invalid,
    /// The token expired.
    #[error("token {id} expired at {at}")]
    Expired {
        /// The token's id.
        id: String,
        /// When it expired.
        at: String,
    },
    /// The token was revoked.
    #[error("token {id} was revoked at {at}")]
    Revoked {
        /// The token's id.
        id: String,
        /// When it was revoked.
        at: String,
    },
    /// The token's role is not one this binary knows (a newer sluice wrote it).
    #[error(
        "unknown role `{0}`: use reader, operator, admin or a role of access.yml (letters, digits \
         and `_`)"
    )]
    UnknownRole(String),
    /// A user name that cannot be used.
    #[error("invalid user name `{0}`: use 1 to 63 letters, digits, `_`, `-`, `.` or `@`")]
    InvalidUser(String),
    /// An expiry that cannot be read.
    #[error("invalid expiry `{0}`: use a number and a unit, like 12h, 30d or 52w")]
    InvalidExpiry(String),
    /// The operating system's random source failed.
    #[error("cannot read random bytes from the operating system")]
    Random,
    /// The state database failed.
    #[error(transparent)]
    State(#[from] StateError),
}

impl AuthError {
    /// Whether the client is at fault (401), as opposed to the server (500).
    pub fn is_client_error(&self) -> bool {
        !matches!(self, AuthError::Random | AuthError::State(_))
    }
}

/// A token just made: its record and its text, shown once.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// What is stored.
    pub record: TokenRecord,
    /// The token itself (never stored).
    pub secret: String,
}

/// Hex SHA-256 of a token's text, as stored.
pub fn token_hash(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn random<const N: usize>() -> Result<[u8; N], AuthError> {
    let mut buf = [0u8; N];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| AuthError::Random)?;
    Ok(buf)
}

fn check_user(user: &str) -> Result<(), AuthError> {
    let ok = !user.is_empty()
        && user.len() <= 63
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(AuthError::InvalidUser(user.to_string()))
    }
}

/// Reads an expiry like `90m`, `12h`, `30d` or `52w`.
pub fn parse_expiry(text: &str) -> Result<chrono::Duration, AuthError> {
    let bad = || AuthError::InvalidExpiry(text.to_string());
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (n, unit) = t.split_at(split);
    let n: i64 = n.parse().map_err(|_| bad())?;
    if n <= 0 {
        return Err(bad());
    }
    let d = match unit.trim() {
        "m" | "min" => chrono::Duration::try_minutes(n),
        "h" => chrono::Duration::try_hours(n),
        "d" => chrono::Duration::try_days(n),
        "w" => chrono::Duration::try_weeks(n),
        _ => None,
    };
    d.filter(|d| *d <= chrono::Duration::days(3660))
        .ok_or_else(bad)
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Makes a token for `user` with `role`, valid for `expires_in` from `now` (or until revoked), and
/// stores its hash and SCRAM keys.
pub fn create_token(
    state: &StateStore,
    user: &str,
    role: Role,
    expires_in: Option<chrono::Duration>,
    now: DateTime<Utc>,
) -> Result<NewToken, AuthError> {
    check_user(user)?;
    let db = state.backend();
    let secret = format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(random::<32>()?));
    let id = format!("tok_{}", URL_SAFE_NO_PAD.encode(random::<6>()?));
    let created_at = rfc3339(now);
    let salt = db.user_salt(user, &STANDARD.encode(random::<16>()?), &created_at)?;
    let salt_bytes = STANDARD
        .decode(&salt)
        .map_err(|_| AuthError::InvalidUser(user.to_string()))?;
    let keys = scram::Keys::derive(&secret, &salt_bytes, scram::ITERATIONS);
    let record = TokenRecord {
        id,
        user: user.to_string(),
        role: role.as_str().to_string(),
        token_hash: token_hash(&secret),
        scram_iterations: scram::ITERATIONS,
        scram_stored_key: STANDARD.encode(keys.stored_key),
        scram_server_key: STANDARD.encode(keys.server_key),
        created_at,
        expires_at: expires_in.map(|d| rfc3339(now + d)),
        revoked_at: None,
    };
    db.insert_token(&record)?;
    Ok(NewToken { record, secret })
}

/// Whether `record` may be used at `now`, and as whom.
pub fn usable(record: &TokenRecord, now: DateTime<Utc>) -> Result<Principal, AuthError> {
    if let Some(at) = &record.revoked_at {
        return Err(AuthError::Revoked {
            id: record.id.clone(),
            at: at.clone(),
        });
    }
    if let Some(at) = &record.expires_at {
        // An expiry that cannot be read counts as past: never let a token live by accident.
        let expired = !DateTime::parse_from_rfc3339(at).is_ok_and(|t| t > now);
        if expired {
            return Err(AuthError::Expired {
                id: record.id.clone(),
                at: at.clone(),
            });
        }
    }
    Ok(Principal {
        user: record.user.clone(),
        role: record.role.parse()?,
        token_id: record.id.clone(),
    })
}

/// The check every listener makes: who `token` is, or why it is refused (unknown, revoked,
/// expired).
pub fn verify_token(state: &StateStore, token: &str) -> Result<Principal, AuthError> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Err(AuthError::Invalid);
    }
    let record = state
        .backend()
        .token_by_hash(&token_hash(token))?
        .ok_or(AuthError::Invalid)?;
    usable(&record, Utc::now())
}

/// Revokes token `id` now. False when there is no such token or it already was revoked.
pub fn revoke_token(state: &StateStore, id: &str) -> Result<bool, AuthError> {
    Ok(state.backend().revoke_token(id, &rfc3339(Utc::now()))?)
}

/// Every token (no secrets), oldest first.
pub fn list_tokens(state: &StateStore) -> Result<Vec<TokenRecord>, AuthError> {
    Ok(state.backend().tokens()?)
}

/// The rule of docs/security.md: authentication is on when `required` is set in `serve.auth` or
/// when the state database holds any token (revoked and expired ones included).
pub fn mode(state: &StateStore, required: bool) -> Result<AuthMode, AuthError> {
    if required || state.backend().token_count()? > 0 {
        Ok(AuthMode::Required)
    } else {
        Ok(AuthMode::Open)
    }
}

/// What the wire listener needs to check logins: the state, shared.
#[derive(Debug, Clone)]
pub struct WireAuth {
    /// The state database.
    pub state: Arc<StateStore>,
}

#[cfg(test)]
mod tests;
