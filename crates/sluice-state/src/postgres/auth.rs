//! [`AuthTokens`] on PostgreSQL (tables `auth_users`, `auth_tokens`).

use tokio_postgres::Row;

use super::PostgresStore;
use crate::StateError;
use crate::auth::{AuthTokens, TokenRecord, UserTokens};

const COLUMNS: &str = "token_id, user_name, role, token_hash, scram_iterations, scram_stored_key, \
                       scram_server_key, created_at, expires_at, revoked_at";

fn record(row: &Row) -> TokenRecord {
    TokenRecord {
        id: row.get(0),
        user: row.get(1),
        role: row.get(2),
        token_hash: row.get(3),
        scram_iterations: u32::try_from(row.get::<_, i64>(4)).unwrap_or(0),
        scram_stored_key: row.get(5),
        scram_server_key: row.get(6),
        created_at: row.get(7),
        expires_at: row.get(8),
        revoked_at: row.get(9),
    }
}

impl AuthTokens for PostgresStore {
    fn user_salt(&self, user: &str, new_salt: &str, at: &str) -> Result<String, StateError> {
        let (user, new_salt, at) = (user.to_string(), new_salt.to_string(), at.to_string());
        self.exec(move |c, rt| {
            rt.block_on(async {
                c.execute(
                    "INSERT INTO auth_users (user_name, scram_salt, created_at) VALUES ($1, $2, $3)
                     ON CONFLICT (user_name) DO NOTHING",
                    &[&user, &new_salt, &at],
                )
                .await?;
                let row = c
                    .query_one(
                        "SELECT scram_salt FROM auth_users WHERE user_name = $1",
                        &[&user],
                    )
                    .await?;
                Ok(row.get(0))
            })
        })
    }

    fn insert_token(&self, t: &TokenRecord) -> Result<(), StateError> {
        let t = t.clone();
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                &format!(
                    "INSERT INTO auth_tokens ({COLUMNS}) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
                ),
                &[
                    &t.id,
                    &t.user,
                    &t.role,
                    &t.token_hash,
                    &i64::from(t.scram_iterations),
                    &t.scram_stored_key,
                    &t.scram_server_key,
                    &t.created_at,
                    &t.expires_at,
                    &t.revoked_at,
                ],
            ))
            .map(|_| ())
        })
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StateError> {
        self.exec(move |c, rt| {
            let rows = rt.block_on(c.query(
                &format!("SELECT {COLUMNS} FROM auth_tokens ORDER BY created_at, token_id"),
                &[],
            ))?;
            Ok(rows.iter().map(record).collect())
        })
    }

    fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>, StateError> {
        let token_hash = token_hash.to_string();
        self.exec(move |c, rt| {
            let row = rt.block_on(c.query_opt(
                &format!("SELECT {COLUMNS} FROM auth_tokens WHERE token_hash = $1"),
                &[&token_hash],
            ))?;
            Ok(row.as_ref().map(record))
        })
    }

    fn user_tokens(&self, user: &str) -> Result<Option<UserTokens>, StateError> {
        let user = user.to_string();
        self.exec(move |c, rt| {
            rt.block_on(async {
                let Some(salt) = c
                    .query_opt(
                        "SELECT scram_salt FROM auth_users WHERE user_name = $1",
                        &[&user],
                    )
                    .await?
                else {
                    return Ok(None);
                };
                let rows = c
                    .query(
                        &format!(
                            "SELECT {COLUMNS} FROM auth_tokens WHERE user_name = $1 \
                             ORDER BY created_at, token_id"
                        ),
                        &[&user],
                    )
                    .await?;
                Ok(Some(UserTokens {
                    scram_salt: salt.get(0),
                    tokens: rows.iter().map(record).collect(),
                }))
            })
        })
    }

    fn revoke_token(&self, id: &str, at: &str) -> Result<bool, StateError> {
        let (id, at) = (id.to_string(), at.to_string());
        self.exec(move |c, rt| {
            rt.block_on(c.execute(
                "UPDATE auth_tokens SET revoked_at = $2 WHERE token_id = $1 AND revoked_at IS NULL",
                &[&id, &at],
            ))
            .map(|n| n == 1)
        })
    }

    fn token_count(&self) -> Result<u64, StateError> {
        self.exec(move |c, rt| {
            let row = rt.block_on(c.query_one("SELECT count(*) FROM auth_tokens", &[]))?;
            Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
        })
    }
}
