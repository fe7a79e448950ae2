//! Streaming a query result as a response body, batch by batch.
//!
//! The body pulls one batch from the engine when hyper is ready to send more, encodes it and hands the
//! bytes over, so a result of any size holds about one batch (one row group for Parquet) in memory.
//!
//! The first batch is pulled *before* the response starts: most failures (a file that cannot be read,
//! a division by zero in the first rows, a column CSV cannot hold) surface there and become ordinary
//! JSON error responses. A failure after the status line has gone out cannot change the status any more;
//! it ends the body with an error, on which hyper closes the connection without the final chunk (and
//! without flushing what it still buffered), so a client never mistakes a partial result for a
//! complete one.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use sluice_engine::SendableRecordBatchStream;

use crate::error::ApiError;
use crate::format::{EncodeError, Format};

/// Why a body ended early.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The engine failed after the response had started.
    #[error("query failed after the response started: {0}")]
    Query(String),
    /// A batch could not be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// Sends `stream` encoded as `format`. `first_error` maps an engine failure before the first byte to an
/// API error (a user's SQL error is a 400, a failure on an API-built query a 500).
pub async fn stream_response(
    mut stream: SendableRecordBatchStream,
    format: Format,
    first_error: fn(String) -> ApiError,
) -> Result<Response, ApiError> {
    let schema = stream.schema();
    let mut encoder = format.encoder(&schema).map_err(unencodable)?;
    let head = match stream.next().await {
        Some(Ok(batch)) => encoder.batch(&batch).map_err(unencodable)?,
        Some(Err(e)) => {
            return Err(match crate::query::registry::interruption_of(&e) {
                Some(i) => ApiError::from(i.clone()),
                None => first_error(e.to_string()),
            });
        }
        // Nothing at all: the whole (valid, empty) document in one go.
        None => {
            let all = encoder.finish().map_err(unencodable)?;
            return Ok(respond(format, Body::from(all)));
        }
    };
    let rest = futures::stream::unfold(Some((stream, encoder)), |state| async move {
        let (mut stream, mut encoder) = state?;
        loop {
            match stream.next().await {
                Some(Ok(batch)) => match encoder.batch(&batch) {
                    Ok(bytes) if bytes.is_empty() => continue,
                    Ok(bytes) => return Some((Ok(Bytes::from(bytes)), Some((stream, encoder)))),
                    Err(e) => return Some((Err(ended(BodyError::Encode(e))), None)),
                },
                Some(Err(e)) => {
                    return Some((Err(ended(BodyError::Query(e.to_string()))), None));
                }
                None => {
                    return match encoder.finish() {
                        Ok(bytes) if bytes.is_empty() => None,
                        Ok(bytes) => Some((Ok(Bytes::from(bytes)), None)),
                        Err(e) => Some((Err(ended(BodyError::Encode(e))), None)),
                    };
                }
            }
        }
    });
    let body = futures::stream::iter((!head.is_empty()).then(|| Ok(Bytes::from(head)))).chain(rest);
    Ok(respond(format, Body::from_stream(body)))
}

fn respond(format: Format, body: Body) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        )],
        body,
    )
        .into_response()
}

fn ended(e: BodyError) -> BodyError {
    tracing::warn!(error = %e, "response body ended early");
    e
}

fn unencodable(e: EncodeError) -> ApiError {
    ApiError::Unencodable(e.to_string())
}

#[cfg(test)]
mod tests {
    use sluice_engine::DataFusionError;
    use sluice_engine::plan::RecordBatchStreamAdapter;

    use super::*;
    use crate::format::tests::sample;
    use crate::test_support::frames;

    fn stream_of(
        items: Vec<sluice_engine::DfResult<arrow::array::RecordBatch>>,
    ) -> SendableRecordBatchStream {
        Box::pin(RecordBatchStreamAdapter::new(
            sample().schema(),
            futures::stream::iter(items),
        ))
    }

    fn internal(m: String) -> ApiError {
        ApiError::Engine(m)
    }

    #[tokio::test]
    async fn each_batch_is_its_own_chunk() {
        let b = sample();
        let s = stream_of(vec![Ok(b.clone()), Ok(b.clone()), Ok(b)]);
        let resp = stream_response(s, Format::Ndjson, internal).await.unwrap();
        assert_eq!(resp.headers()[header::CONTENT_TYPE], "application/x-ndjson");
        let (chunks, error) = frames(resp.into_body()).await;
        assert!(error.is_none());
        assert_eq!(
            chunks.len(),
            3,
            "one chunk per batch (the empty end is skipped)"
        );
        assert!(chunks.iter().all(|c| c.split(|b| *b == b'\n').count() == 3));
    }

    #[tokio::test]
    async fn an_error_before_the_first_byte_is_an_error_response() {
        let s = stream_of(vec![Err(DataFusionError::Execution("boom".into()))]);
        let err = stream_response(s, Format::Json, internal)
            .await
            .unwrap_err();
        assert_eq!(err.to_string(), "engine error: Execution error: boom");
    }

    #[tokio::test]
    async fn an_error_mid_stream_ends_the_body_with_an_error() {
        let b = sample();
        let s = stream_of(vec![
            Ok(b.clone()),
            Err(DataFusionError::Execution("disk gone".into())),
            Ok(b),
        ]);
        let resp = stream_response(s, Format::Json, internal).await.unwrap();
        assert_eq!(resp.status(), 200);
        let (chunks, error) = frames(resp.into_body()).await;
        assert_eq!(chunks.len(), 1, "the rows before the failure were sent");
        let error = error.expect("the body ends with an error");
        assert!(error.contains("disk gone"), "{error}");
        let sent: Vec<u8> = chunks.concat();
        assert!(!sent.ends_with(b"]"), "a truncated array is never closed");
    }

    /// What a client sees on the socket when the engine fails mid-stream: the rows sent so far, and a
    /// chunked body that never gets its final zero-length chunk.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_the_wire_a_failed_stream_lacks_the_final_chunk() {
        let app = axum::Router::new().route(
            "/",
            axum::routing::get(|| async {
                // The failure comes a little later, as a lake read failing mid-table would.
                let late_failure = futures::stream::once(async {
                    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
                    Err(DataFusionError::Execution("gone".into()))
                });
                let batches = futures::stream::iter(vec![Ok(sample())]).chain(late_failure);
                let s = Box::pin(RecordBatchStreamAdapter::new(sample().schema(), batches));
                stream_response(s, Format::Csv, internal).await
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let raw = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            let mut conn = std::net::TcpStream::connect(addr).unwrap();
            conn.set_read_timeout(Some(std::time::Duration::from_secs(10)))
                .unwrap();
            conn.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")
                .unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // Until the server closes (or resets) the connection.
            while let Ok(n) = conn.read(&mut buf) {
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            String::from_utf8_lossy(&got).into_owned()
        })
        .await
        .unwrap();
        server.abort();
        assert!(raw.starts_with("HTTP/1.1 200"), "{raw}");
        assert!(raw.contains("transfer-encoding: chunked"), "{raw}");
        assert!(raw.contains("id,name\n1,\"a,b\"\n"), "{raw}");
        assert!(
            !raw.ends_with("0\r\n\r\n"),
            "the body must not look complete: {raw:?}"
        );
    }

    #[tokio::test]
    async fn an_empty_stream_is_a_complete_document() {
        let resp = stream_response(stream_of(vec![]), Format::Json, internal)
            .await
            .unwrap();
        let body = axum::body::to_bytes(resp.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"[]");
    }
}
