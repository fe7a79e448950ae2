//! The wire's login: with authentication on, SCRAM-SHA-256 as user U with one of U's tokens as the
//! password ([`crate::auth::scram`]); otherwise everyone, as [`Startup`] did alone.
//!
//! One [`Login`] is made per connection (it holds that connection's exchange). After the client's
//! proof matches one of the user's usable tokens, the rest of the startup is [`Startup`]'s
//! (connection registered for cancel, parameters, `ReadyForQuery`). A wrong, expired or revoked
//! token, or a user with no token, ends the connection with `FATAL 28P01` (`invalid_password`),
//! the same for each so that a client cannot tell which users exist.

use std::fmt::Debug;
use std::sync::{Arc, LazyLock};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use datafusion_postgres::pgwire::api::auth::{StartupHandler, save_startup_parameters_to_metadata};
use datafusion_postgres::pgwire::api::{ClientInfo, PgWireConnectionState};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::Authentication;
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use futures::{Sink, SinkExt};
use ring::rand::{SecureRandom, SystemRandom};
use tokio::sync::Mutex;

use super::handlers::Startup;
use crate::auth::scram::{self, Exchange, Keys};
use crate::auth::{Principal, WireAuth, usable};

/// The SASL mechanism offered.
const MECHANISM: &str = "SCRAM-SHA-256";

/// A key of this process for the salts of unknown users (stable per user, so that asking twice does
/// not tell a made-up salt from a stored one).
static UNKNOWN_USER_KEY: LazyLock<ring::hmac::Key> = LazyLock::new(|| {
    let mut k = [0u8; 32];
    // Without randomness the salts are still per user; only their unpredictability is lost.
    let _ = SystemRandom::new().fill(&mut k);
    ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &k)
});

enum Step {
    /// Waiting for the startup message.
    Start,
    /// SCRAM offered; waiting for the client's first message.
    Offered(PgWireFrontendMessage),
    /// Server-first sent; waiting for the proof.
    Challenged {
        startup: PgWireFrontendMessage,
        exchange: Exchange,
        candidates: Vec<(Keys, Principal)>,
    },
    /// Authenticated: the session goes on.
    Done,
    /// A step failed: the connection is being closed; nothing more is accepted.
    Failed,
}

/// The startup handler of one connection (see the module doc).
pub struct Login {
    open: Arc<Startup>,
    auth: Option<WireAuth>,
    step: Mutex<Step>,
}

impl Login {
    /// A login for one connection: SCRAM against the state's tokens when `auth` is given.
    pub fn new(open: Arc<Startup>, auth: Option<WireAuth>) -> Self {
        Self {
            open,
            auth,
            step: Mutex::new(Step::Start),
        }
    }
}

fn user_of<C: ClientInfo>(client: &C) -> PgWireResult<String> {
    client
        .metadata()
        .get("user")
        .filter(|u| !u.is_empty())
        .cloned()
        .ok_or(PgWireError::UserNameRequired)
}

/// PostgreSQL's own answer to a failed password login (`FATAL 28P01`, its wording).
fn bad_password(user: &str) -> PgWireError {
    PgWireError::UserError(Box::new(ErrorInfo::new(
        "FATAL".to_string(),
        "28P01".to_string(),
        format!("password authentication failed for user \"{user}\""),
    )))
}

/// The salt and keys to check a login of `user` against: the user's usable tokens.
async fn candidates(
    auth: &WireAuth,
    user: &str,
) -> PgWireResult<(Vec<u8>, Vec<(Keys, Principal)>)> {
    let state = auth.state.clone();
    let name = user.to_string();
    let found = tokio::task::spawn_blocking(move || state.backend().user_tokens(&name))
        .await
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    let Some(found) = found else {
        let tag = ring::hmac::sign(&UNKNOWN_USER_KEY, user.as_bytes());
        return Ok((tag.as_ref()[..16].to_vec(), Vec::new()));
    };
    let salt = STANDARD
        .decode(&found.scram_salt)
        .map_err(|e| PgWireError::ApiError(Box::new(e)))?;
    let now = chrono::Utc::now();
    let keys = found
        .tokens
        .iter()
        .filter(|t| t.scram_iterations == scram::ITERATIONS)
        .filter_map(|t| {
            let principal = usable(t, now).ok()?;
            Some((
                Keys {
                    stored_key: STANDARD.decode(&t.scram_stored_key).ok()?,
                    server_key: STANDARD.decode(&t.scram_server_key).ok()?,
                },
                principal,
            ))
        })
        .collect();
    Ok((salt, keys))
}

fn scram_error(e: scram::ScramError) -> PgWireError {
    PgWireError::InvalidScramMessage(e.to_string())
}

#[async_trait]
impl StartupHandler for Login {
    async fn on_startup<C>(
        &self,
        client: &mut C,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let Some(auth) = &self.auth else {
            return self.open.on_startup(client, message).await;
        };
        let mut step = self.step.lock().await;
        if matches!(*step, Step::Done) {
            return self.open.on_startup(client, message).await;
        }
        // Every failure ends the connection: a non-fatal error here would let pgwire go on to
        // `ReadyForQuery` without a login.
        let taken = std::mem::replace(&mut *step, Step::Failed);
        *step = self
            .advance(auth, client, taken, message)
            .await
            .map_err(fatal)?;
        Ok(())
    }
}

/// A login error as PostgreSQL sends it: `FATAL`, `28P01` for a wrong password, else `28000`.
fn fatal(e: PgWireError) -> PgWireError {
    match e {
        PgWireError::InvalidPassword(_) | PgWireError::UserNameRequired => e,
        PgWireError::UserError(ref info) if info.is_fatal() => e,
        other => PgWireError::UserError(Box::new(ErrorInfo::new(
            "FATAL".to_string(),
            "28000".to_string(),
            other.to_string(),
        ))),
    }
}

impl Login {
    /// One step of the exchange: what comes next, or why the login fails.
    async fn advance<C>(
        &self,
        auth: &WireAuth,
        client: &mut C,
        step: Step,
        message: PgWireFrontendMessage,
    ) -> PgWireResult<Step>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send + Sync,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match (step, message) {
            (Step::Start, PgWireFrontendMessage::Startup(startup)) => {
                save_startup_parameters_to_metadata(client, &startup);
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(Authentication::SASL(
                        vec![MECHANISM.to_string()],
                    )))
                    .await?;
                Ok(Step::Offered(PgWireFrontendMessage::Startup(startup)))
            }
            (Step::Offered(startup), PgWireFrontendMessage::PasswordMessageFamily(msg)) => {
                let user = user_of(client)?;
                let initial = msg.into_sasl_initial_response()?;
                if initial.auth_method != MECHANISM {
                    return Err(PgWireError::UnsupportedSASLAuthMethod(initial.auth_method));
                }
                let data = initial.data.ok_or_else(|| {
                    PgWireError::InvalidScramMessage("empty client-first message".to_string())
                })?;
                let (salt, candidates) = candidates(auth, &user).await?;
                let mut nonce = [0u8; 18];
                SystemRandom::new()
                    .fill(&mut nonce)
                    .map_err(|_| PgWireError::InvalidScramMessage("no randomness".to_string()))?;
                let (exchange, server_first) = Exchange::start(
                    &data,
                    &salt,
                    scram::ITERATIONS,
                    &URL_SAFE_NO_PAD.encode(nonce),
                )
                .map_err(scram_error)?;
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::SASLContinue(server_first.into_bytes().into()),
                    ))
                    .await?;
                Ok(Step::Challenged {
                    startup,
                    exchange,
                    candidates,
                })
            }
            (
                Step::Challenged {
                    startup,
                    exchange,
                    candidates,
                },
                PgWireFrontendMessage::PasswordMessageFamily(msg),
            ) => {
                let user = user_of(client)?;
                let response = msg.into_sasl_response()?;
                let keys: Vec<Keys> = candidates.iter().map(|(k, _)| k.clone()).collect();
                let Some((i, server_final)) = exchange
                    .finish(&response.data, &keys)
                    .map_err(scram_error)?
                else {
                    tracing::warn!(peer = %client.socket_addr(), user = %user, "PostgreSQL login refused");
                    return Err(bad_password(&user));
                };
                let principal = candidates[i].1.clone();
                tracing::info!(
                    peer = %client.socket_addr(),
                    user = %principal.user,
                    token = %principal.token_id,
                    "PostgreSQL login"
                );
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::SASLFinal(server_final.into_bytes().into()),
                    ))
                    .await?;
                client.session_extensions().insert(principal);
                self.open.on_startup(client, startup).await?;
                Ok(Step::Done)
            }
            _ => Err(PgWireError::InvalidSASLState),
        }
    }
}
