//! Running queries for the HTTP API: admission and cancellation, the rows endpoint's parameters and
//! keyset cursors (the encoders are in [`crate::format`]). Nothing here knows a route; the handlers of
//! [`crate::http`] and the wire endpoint ([`crate::pg`]) build on it.
//!
//! - [`registry`]: every running query (HTTP and wire) — slots, statement timeout, cancel, listing;
//! - [`filter`]: `columns=`, `<col>=<op>.<value>`, `order=`, `limit`/`offset`, `cursor=` as a plan;
//! - [`order`]: the `order` parameter, shared by filters and cursors;
//! - [`cursor`]: opaque keyset cursors (`X-Next-Cursor`);
//!
//! Dependencies point one way: `filter` → `cursor` → `order`; `registry` stands alone; all of them report [`crate::ApiError`].

pub mod cursor;
pub mod filter;
pub mod order;
pub mod registry;
