//! Users and API tokens of `sluice serve` ([`AuthTokens`]), as a trait every backend implements.
//!
//! Only what cannot be turned back into a token is stored: the SHA-256 of its text (the HTTP
//! bearer check looks it up) and the SCRAM-SHA-256 `StoredKey` and `ServerKey` derived from it with
//! the user's salt (the PostgreSQL wire login checks a client's proof against them). Making and
//! checking tokens is `sluice-serve`'s (`sluice_serve::auth`); this module only keeps the records.
//! Nothing is deleted: a revoked token keeps its row with `revoked_at` set.

use crate::StateError;

/// One token, as stored (no secret in it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Its id (shown by `sluice auth token list`, given to `revoke`).
    pub id: String,
    /// The user it authenticates.
    pub user: String,
    /// The role it carries (`reader`, `operator`, `admin`).
    pub role: String,
    /// Hex SHA-256 of the token's text.
    pub token_hash: String,
    /// SCRAM iteration count used for its keys.
    pub scram_iterations: u32,
    /// Base64 SCRAM `StoredKey` (H(ClientKey)).
    pub scram_stored_key: String,
    /// Base64 SCRAM `ServerKey`.
    pub scram_server_key: String,
    /// When it was made (RFC 3339, UTC).
    pub created_at: String,
    /// When it stops working (RFC 3339, UTC), if ever.
    pub expires_at: Option<String>,
    /// When it was revoked (RFC 3339, UTC), if it was.
    pub revoked_at: Option<String>,
}

/// A user's SCRAM salt and every token of theirs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserTokens {
    /// Base64 salt shared by the user's tokens.
    pub scram_salt: String,
    /// The user's tokens (revoked and expired ones too: the caller judges).
    pub tokens: Vec<TokenRecord>,
}

/// Keeping users and tokens.
pub trait AuthTokens: Send + Sync {
    /// The SCRAM salt of `user`, recording the user with `new_salt` (at `at`) when unknown.
    fn user_salt(&self, user: &str, new_salt: &str, at: &str) -> Result<String, StateError>;

    /// Stores a new token.
    fn insert_token(&self, token: &TokenRecord) -> Result<(), StateError>;

    /// Every token, oldest first.
    fn tokens(&self) -> Result<Vec<TokenRecord>, StateError>;

    /// The token whose text hashes to `token_hash`.
    fn token_by_hash(&self, token_hash: &str) -> Result<Option<TokenRecord>, StateError>;

    /// `user`'s salt and tokens; `None` for a user never given a token.
    fn user_tokens(&self, user: &str) -> Result<Option<UserTokens>, StateError>;

    /// Marks token `id` revoked at `at`. False when there is no such token or it already was.
    fn revoke_token(&self, id: &str, at: &str) -> Result<bool, StateError>;

    /// How many tokens were ever made (revoked and expired ones count: revoking the last token
    /// must not turn authentication off).
    fn token_count(&self) -> Result<u64, StateError>;
}
