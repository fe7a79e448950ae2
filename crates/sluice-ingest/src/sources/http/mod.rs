//! `kind: http` — JSON REST endpoints into bronze: pagination (page, offset, cursor token, `Link`
//! header), authentication from environment secrets, a rate limit, retries with backoff that honor
//! `Retry-After`, and incremental loads by an `updated_since`-style parameter.
//!
//! `client.rs` sends requests (auth, rate limit, retries), `paginate.rs` finds records and the next
//! page in a response, `source.rs` walks the pages and lands them: records become Arrow through the
//! JSON-lines reader of `formats` (schema inference and evolution, nested objects as structs, arrays
//! as lists, row-level quarantine). The user guide is `docs/sources/http.md`.

mod client;
mod config;
mod paginate;
mod rate_limit;
mod source;

pub use config::{Auth, HttpConfig, HttpTable, Incremental, Pagination};
pub use source::HttpSource;

/// The registry entry (see [`crate::SOURCE_KINDS`]).
pub const KIND: crate::source::SourceKind = crate::source::SourceKind {
    name: "http",
    description: "JSON REST endpoints: pagination, authentication, a rate limit, retries and incremental loads.",
    example: "kind: http\nbase_url: https://api.example.com\ntables:\n  - name: tickets\n    path: /tickets\n",
    build: |decl, root| Ok(Box::new(HttpSource::from_decl(decl, root)?)),
};
