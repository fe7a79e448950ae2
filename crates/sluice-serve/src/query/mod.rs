//! Running queries for the HTTP API: admission and cancellation, the rows endpoint's parameters, keyset
//! cursors, and the formats results are encoded in. Nothing here knows a route; the handlers of
//! [`crate::http`] and the wire endpoint ([`crate::pg`]) build on it.
//!
//! - [`registry`]: every running query (HTTP and wire) — slots, statement timeout, cancel, listing;
//! - [`filter`]: `columns=`, `<col>=<op>.<value>`, `order=`, `limit`/`offset`, `cursor=` as a plan;
//! - [`order`]: the `order` parameter, shared by filters and cursors;
//! - [`cursor`]: opaque keyset cursors (`X-Next-Cursor`);
//! - [`format`]: JSON, NDJSON, CSV, Arrow IPC and Parquet encoders, one batch at a time.
//!
//! Dependencies point one way: `filter` → `cursor` → `order`; `registry` and `format` stand alone.

pub mod cursor;
pub mod filter;
pub mod format;
pub mod order;
pub mod registry;
