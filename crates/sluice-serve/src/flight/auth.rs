//! Authentication of Flight SQL calls with the same tokens as the HTTP API and the PostgreSQL wire
//! (docs/security.md).
//!
//! Every RPC passes through [`FlightAuth`], a tonic interceptor. It accepts `authorization: Bearer
//! <token>`, or `Basic` credentials of a user and one of its tokens as the password: ADBC's
//! `username`/`password` options send those in a `Handshake`, whose answer carries the token back as
//! a bearer header that the driver then sends on every call.

use base64::Engine as _;
use tonic::metadata::MetadataMap;
use tonic::service::Interceptor;
use tonic::{Request, Status};

use crate::auth::{AuthError, Principal, verify_token};
use sluice_orchestrate::StateStore;

/// Checks the credentials of every call when authentication is on; lets everything through when it
/// is off (the loopback development mode, refused on other addresses by `sluice serve`).
#[derive(Clone, Default)]
pub struct FlightAuth {
    state: Option<StateStore>,
}

impl std::fmt::Debug for FlightAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlightAuth")
            .field("required", &self.state.is_some())
            .finish()
    }
}

impl FlightAuth {
    /// Open: no credentials asked.
    pub fn open() -> FlightAuth {
        FlightAuth { state: None }
    }

    /// Tokens of `state` required on every call.
    pub fn required(state: StateStore) -> FlightAuth {
        FlightAuth { state: Some(state) }
    }
}

impl Interceptor for FlightAuth {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        let Some(state) = &self.state else {
            return Ok(request);
        };
        let principal = principal(state, request.metadata())?;
        request.extensions_mut().insert(principal);
        Ok(request)
    }
}

/// The token a `Basic` header carries as its password, to hand back as a bearer header from the
/// handshake; `None` for other headers.
pub fn basic_token(metadata: &MetadataMap) -> Option<String> {
    let header = metadata.get("authorization")?.to_str().ok()?;
    let (_, token) = basic(header).ok()??;
    Some(token)
}

fn principal(state: &StateStore, metadata: &MetadataMap) -> Result<Principal, Status> {
    let header = metadata
        .get("authorization")
        .ok_or_else(|| {
            Status::unauthenticated(
                "authentication required: send `authorization: Bearer <token>`, or a user name \
                 and one of its tokens as the password",
            )
        })?
        .to_str()
        .map_err(|_| Status::unauthenticated("the authorization header is not text"))?;
    if let Some(token) = strip_scheme(header, "bearer") {
        return verify_token(state, token.trim()).map_err(refused);
    }
    match basic(header)? {
        Some((user, token)) => {
            let principal = verify_token(state, &token).map_err(refused)?;
            if principal.user != user {
                return Err(Status::unauthenticated(format!(
                    "the token does not belong to user {user:?}"
                )));
            }
            Ok(principal)
        }
        None => Err(Status::unauthenticated(
            "the authorization header must be `Bearer <token>` or `Basic <user:token>`",
        )),
    }
}

/// `Basic base64(user:token)` split into user and token; `Ok(None)` for another scheme.
fn basic(header: &str) -> Result<Option<(String, String)>, Status> {
    let Some(encoded) = strip_scheme(header, "basic") else {
        return Ok(None);
    };
    let malformed = || Status::unauthenticated("malformed Basic credentials");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let text = String::from_utf8(decoded).map_err(|_| malformed())?;
    let (user, token) = text.split_once(':').ok_or_else(malformed)?;
    Ok(Some((user.to_string(), token.to_string())))
}

/// The rest of `header` after `scheme` and a space, compared without case as HTTP does.
fn strip_scheme<'a>(header: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = header.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

fn refused(e: AuthError) -> Status {
    match e {
        AuthError::State(_) => {
            tracing::warn!(error = %e, "cannot check a Flight SQL token");
            Status::unavailable("cannot check the token now; try again")
        }
        other => Status::unauthenticated(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_recognised_without_case() {
        assert_eq!(strip_scheme("Bearer abc", "bearer"), Some("abc"));
        assert_eq!(strip_scheme("bearer abc", "bearer"), Some("abc"));
        assert_eq!(strip_scheme("Basic abc", "bearer"), None);
        assert_eq!(strip_scheme("Bearer", "bearer"), None);
    }

    #[test]
    fn basic_credentials_split_into_user_and_token() {
        let encoded = base64::engine::general_purpose::STANDARD.encode("ana:slu_x:y");
        let (user, token) = basic(&format!("Basic {encoded}")).unwrap().unwrap();
        assert_eq!((user.as_str(), token.as_str()), ("ana", "slu_x:y"));
        assert!(basic("Bearer slu_x").unwrap().is_none());
        assert!(basic("Basic !!!").is_err());
        let no_colon = base64::engine::general_purpose::STANDARD.encode("ana");
        assert!(basic(&format!("Basic {no_colon}")).is_err());
    }

    #[test]
    fn open_mode_lets_calls_through() {
        let mut open = FlightAuth::open();
        assert!(open.call(Request::new(())).is_ok());
    }
}
