//! [`AuthTokens`] on SQLite (tables `auth_users`, `auth_tokens`).

use rusqlite::{OptionalExtension, Row, params};

use super::SqliteStore;
use crate::StateError;
use crate::auth::{AuthTokens, TokenRecord, UserTokens};

const COLUMNS: &str = "token_id, user_name, role, token_hash, scram_iterations, scram_stored_key, \
                       scram_server_key, created_at, expires_at, revoked_at";

fn record(row: &Row<'_>) -> rusqlite::Result<TokenRecord> {
    Ok(TokenRecord {
        id: row.get(0)?,
        user: row.get(1)?,
        role: row.get(2)?,
        token_hash: row.get(3)?,
        scram_iterations: u32::try_from(row.get::<_, i64>(4)?).unwrap_or(0),
        scram_stored_key: row.get(5)?,
        scram_server_key: row.get(6)?,
        created_at: row.get(7)?,
        expires_at: row.get(8)?,
        revoked_at: row.get(9)?,
    })
}

impl AuthTokens for SqliteStore {
    fn user_salt(&self, user: &str, new_salt: &str, at: &str) -> Result<String, StateError> {
        self.with(|c| {
            c.execute(
                "INSERT INTO auth_users (user_name, scram_salt, created_at) VALUES (?1, ?2, ?3)
                 ON CONFLICT (user_name) DO NOTHING",
                params![user, new_salt, at],
            )?;
            c.query_row(
                "SELECT scram_salt FROM auth_users WHERE user_name = ?1",
                params![user],
                |r| r.get(0),
            )
        })
    }

    fn insert_token(&self, t: &TokenRecord) -> Result<(), StateError> {
        self.with(|c| {
            c.execute(
                &format!("INSERT INTO auth_tokens ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![
                    t.id,
                    t.user,
                    t.role,
                    t.token_hash,
                    i64::from(t.scram_iterations),
                    t.scram_stored_key,
                    t.scram_server_key,
                    t.created_at,
                    t.expires_at,
                    t.revoked_at
                ],
            )
            .map(|_| ())
        })
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StateError> {
        self.with(|c| {
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM auth_tokens ORDER BY created_at, token_id"
            ))?;
            stmt.query_map([], record)?.collect()
        })
    }

    fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>, StateError> {
        self.with(|c| {
            c.query_row(
                &format!("SELECT {COLUMNS} FROM auth_tokens WHERE token_hash = ?1"),
                params![token_hash],
                record,
            )
            .optional()
        })
    }

    fn user_tokens(&self, user: &str) -> Result<Option<UserTokens>, StateError> {
        self.with(|c| {
            let salt: Option<String> = c
                .query_row(
                    "SELECT scram_salt FROM auth_users WHERE user_name = ?1",
                    params![user],
                    |r| r.get(0),
                )
                .optional()?;
            let Some(scram_salt) = salt else {
                return Ok(None);
            };
            let mut stmt = c.prepare(&format!(
                "SELECT {COLUMNS} FROM auth_tokens WHERE user_name = ?1 ORDER BY created_at, token_id"
            ))?;
            let tokens = stmt.query_map(params![user], record)?.collect::<Result<_, _>>()?;
            Ok(Some(UserTokens { scram_salt, tokens }))
        })
    }

    fn revoke_token(&self, id: &str, at: &str) -> Result<bool, StateError> {
        self.with(|c| {
            c.execute(
                "UPDATE auth_tokens SET revoked_at = ?2 WHERE token_id = ?1 AND revoked_at IS NULL",
                params![id, at],
            )
            .map(|n| n == 1)
        })
    }

    fn token_count(&self) -> Result<u64, StateError> {
        self.with(|c| {
            c.query_row("SELECT count(*) FROM auth_tokens", [], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| u64::try_from(n).unwrap_or(0))
        })
    }
}
