//! Connecting to MySQL / MariaDB and telling transient failures from permanent ones.
//!
//! The orchestrator retries transient ingestion errors with backoff: a server that restarts, drops
//! the connection or has no free connection slot will likely be back, while a missing table, a
//! syntax error or a wrong password will not.

use std::time::Duration;

use mysql_async::{Conn, Opts, OptsBuilder};

/// A MySQL / MariaDB failure, classified (see [`is_transient_code`]).
pub(crate) type MyFailure = crate::sources::relational::DbFailure;

impl From<mysql_async::Error> for MyFailure {
    fn from(e: mysql_async::Error) -> Self {
        let transient = match &e {
            mysql_async::Error::Io(_) => true,
            mysql_async::Error::Driver(d) => matches!(
                d,
                mysql_async::DriverError::ConnectionClosed
                    | mysql_async::DriverError::PoolDisconnected
            ),
            mysql_async::Error::Server(s) => is_transient_code(s.code),
            mysql_async::Error::Other(_) | mysql_async::Error::Url(_) => false,
        };
        let message = match &e {
            mysql_async::Error::Server(s) => {
                format!("ERROR {} ({}): {}", s.code, s.state, s.message)
            }
            other => other.to_string(),
        };
        MyFailure { message, transient }
    }
}

/// Server error codes a retry can outlive: too many connections (1040), out of memory (1041),
/// server shutdown (1053), lock wait timeout (1205), deadlock (1213), query interrupted (1317),
/// connection killed (1927, MariaDB).
pub(crate) fn is_transient_code(code: u16) -> bool {
    matches!(code, 1040 | 1041 | 1053 | 1205 | 1213 | 1317 | 1927)
}

/// Connection options from a `mysql://` URL, with the session settings every read relies on: UTC
/// for `timestamp` values, and no `NO_BACKSLASH_ESCAPES` surprises from the server's defaults.
pub(crate) fn options(url: &str) -> Result<Opts, String> {
    let opts = Opts::from_url(url).map_err(|e| e.to_string())?;
    Ok(OptsBuilder::from_opts(opts)
        .init(vec!["SET time_zone = '+00:00'"])
        .into())
}

/// Opens a connection, giving up after `timeout` (a transient failure).
pub(crate) async fn connect(opts: &Opts, timeout: Duration) -> Result<Conn, MyFailure> {
    match tokio::time::timeout(timeout, Conn::new(opts.clone())).await {
        Ok(conn) => Ok(conn?),
        Err(_) => Err(MyFailure {
            message: format!("no connection within {}s", timeout.as_secs_f64()),
            transient: true,
        }),
    }
}

/// `ident` as a quoted MySQL identifier.
pub(crate) fn quote(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_and_codes() {
        assert_eq!(quote("order lines"), "`order lines`");
        assert_eq!(quote("a`b"), "`a``b`");
        assert!(is_transient_code(1213));
        assert!(!is_transient_code(1146), "no such table");
        assert!(!is_transient_code(1045), "access denied");
    }

    #[test]
    fn bad_urls_are_errors() {
        assert!(options("postgres://x@y/z").is_err());
        assert!(options("mysql://root@127.0.0.1:3306/test").is_ok());
    }

    #[tokio::test]
    async fn refused_connection_is_transient() {
        // Port 1 on loopback: nothing listens there, so the connection is refused at once.
        let opts = options("mysql://root@127.0.0.1:1/test").unwrap();
        let err = connect(&opts, Duration::from_secs(5)).await.unwrap_err();
        assert!(err.transient, "{err:?}");
    }
}
