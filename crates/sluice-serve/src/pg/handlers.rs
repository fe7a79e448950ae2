//! The pgwire handler set: `datafusion-postgres`' query service with the read-only hook in front,
//! a startup handler that tells clients the server is read-only, and an error handler that gives
//! query failures real SQLSTATEs.
//!
//! `datafusion_postgres::serve` builds a similar set but binds its own socket and never returns, so
//! the endpoint assembles the parts itself and runs its own accept loop (see [`super::PgServer`]).

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion_postgres::hooks::cursor::CursorStatementHook;
use datafusion_postgres::hooks::set_show::SetShowHook;
use datafusion_postgres::hooks::transactions::TransactionStatementHook;
use datafusion_postgres::pgwire::api::auth::StartupHandler;
use datafusion_postgres::pgwire::api::auth::noop::NoopStartupHandler;
use datafusion_postgres::pgwire::api::cancel::{CancelHandler, DefaultCancelHandler};
use datafusion_postgres::pgwire::api::query::{ExtendedQueryHandler, SimpleQueryHandler};
use datafusion_postgres::pgwire::api::{
    ClientInfo, ConnectionManager, ErrorHandler, PgWireServerHandlers,
};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use datafusion_postgres::pgwire::messages::startup::ParameterStatus;
use datafusion_postgres::pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use datafusion_postgres::{DfSessionService, QueryHook};
use futures::{Sink, SinkExt};
use sluice_engine::{DataFusionError, SessionContext};

use super::compat::CompatHook;
use super::error::sqlstate_of;
use super::guarded::{GuardedCancel, GuardedService, Shared};
use super::read_only::ReadOnlyHook;
use super::settings::SettingsHook;
use super::startup::Login;
use crate::auth::WireAuth;

/// Everything one endpoint's connections share.
pub struct Handlers {
    service: Arc<GuardedService>,
    startup: Arc<Startup>,
    cancel: Arc<GuardedCancel>,
    errors: Arc<ErrorMapper>,
    shared: Arc<Shared>,
    auth: Option<WireAuth>,
}

impl Handlers {
    /// Handlers over `ctx`: the rewrites of catalog constructs DataFusion does not plan
    /// ([`CompatHook`], read-only checked), the read-only hook, answers to `SHOW` of common settings,
    /// then the
    /// library's cursor, `SET`/`SHOW` and transaction hooks (the ones `datafusion_postgres::serve`
    /// installs).
    pub fn new(ctx: Arc<SessionContext>, shared: Arc<Shared>) -> Self {
        let connections = Arc::new(ConnectionManager::new());
        let inner = service(ctx);
        Self {
            service: Arc::new(GuardedService::new(inner, shared.clone())),
            startup: Arc::new(Startup {
                connections: connections.clone(),
            }),
            cancel: Arc::new(GuardedCancel::new(
                DefaultCancelHandler::new(connections),
                shared.clone(),
            )),
            errors: Arc::new(ErrorMapper),
            shared,
            auth: None,
        }
    }

    /// Applies `access` (access.yml) to every logged-in principal's queries and listings.
    pub fn set_access(&mut self, access: crate::access::Access) {
        self.shared.set_access(access);
    }

    /// Requires a SCRAM-SHA-256 login with a token of the state ([`Login`]).
    pub fn require_auth(&mut self, auth: WireAuth) {
        self.auth = Some(auth);
    }

    /// The state the connections share (limits, running queries, activity).
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

/// `datafusion-postgres`' query service over `ctx` with Sluice's hooks: the rewrites of catalog
/// constructs DataFusion does not plan ([`CompatHook`]), the read-only hook, answers to `SHOW` of
/// common settings, then the library's cursor, `SET`/`SHOW` and transaction hooks.
pub fn service(ctx: Arc<SessionContext>) -> Arc<DfSessionService> {
    let hooks: Vec<Arc<dyn QueryHook>> = vec![
        Arc::new(CompatHook),
        Arc::new(ReadOnlyHook),
        Arc::new(SettingsHook),
        Arc::new(CursorStatementHook),
        Arc::new(SetShowHook),
        Arc::new(TransactionStatementHook),
    ];
    Arc::new(DfSessionService::new_with_hooks(ctx, hooks))
}

impl PgWireServerHandlers for Handlers {
    fn simple_query_handler(&self) -> Arc<impl SimpleQueryHandler> {
        self.service.clone()
    }

    fn extended_query_handler(&self) -> Arc<impl ExtendedQueryHandler> {
        self.service.clone()
    }

    fn startup_handler(&self) -> Arc<impl StartupHandler> {
        // One per connection: a login holds its connection's SCRAM exchange.
        Arc::new(Login::new(self.startup.clone(), self.auth.clone()))
    }

    fn error_handler(&self) -> Arc<impl ErrorHandler> {
        self.errors.clone()
    }

    fn cancel_handler(&self) -> Arc<impl CancelHandler> {
        self.cancel.clone()
    }
}

/// The startup of an accepted client (after [`Login`]'s SCRAM exchange when authentication is on;
/// every client when it is off, the loopback development mode of `docs/security.md`): registers it for query cancellation, and reports
/// `default_transaction_read_only = on` so that drivers that look know writes will fail, and
/// `server_version` as PostgreSQL 16's with Sluice's version inside.
pub struct Startup {
    connections: Arc<ConnectionManager>,
}

#[async_trait]
impl NoopStartupHandler for Startup {
    fn connection_manager(&self) -> Option<Arc<ConnectionManager>> {
        Some(self.connections.clone())
    }

    async fn post_startup<C>(
        &self,
        client: &mut C,
        _message: PgWireFrontendMessage,
    ) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        let meta = client.metadata();
        tracing::debug!(
            peer = %client.socket_addr(),
            user = meta.get("user").map(String::as_str).unwrap_or(""),
            database = meta.get("database").map(String::as_str).unwrap_or(""),
            application = meta.get("application_name").map(String::as_str).unwrap_or(""),
            "PostgreSQL client connected"
        );
        // pgwire announces `16.6-pgwire-<version>`; drivers keep the last value they are sent, so this
        // one (PostgreSQL's version with Sluice's inside, as `version()` says) is what they see.
        for (name, value) in [
            ("default_transaction_read_only", "on".to_string()),
            ("server_version", super::functions::server_version()),
        ] {
            client
                .feed(PgWireBackendMessage::ParameterStatus(ParameterStatus::new(
                    name.to_string(),
                    value,
                )))
                .await?;
        }
        Ok(())
    }
}

/// Turns engine errors into ErrorResponses with a SQLSTATE a client can act on.
pub struct ErrorMapper;

impl ErrorHandler for ErrorMapper {
    fn on_error<C>(&self, client: &C, error: &mut PgWireError)
    where
        C: ClientInfo,
    {
        if let PgWireError::ApiError(inner) = error {
            let inner: &(dyn std::error::Error + 'static) = inner.as_ref();
            let code = sqlstate_of(inner);
            let message = match inner.downcast_ref::<DataFusionError>() {
                Some(df) => df.strip_backtrace(),
                None => inner.to_string(),
            };
            *error = PgWireError::UserError(Box::new(ErrorInfo::new(
                "ERROR".to_string(),
                code.to_string(),
                message,
            )));
        }
        tracing::debug!(peer = %client.socket_addr(), %error, "PostgreSQL query failed");
    }
}
