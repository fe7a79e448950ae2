//! Setting a captured table up on the server: `wal_level`, the publication, the replication slot,
//! the primary key and the column types.

use pgwire_replication::Lsn;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::Type;

use super::super::client::{PgFailure, quote};
use super::super::types::{PgKind, kind_of};
use super::CdcTable;
use crate::error::IngestError;

/// The longest identifier PostgreSQL keeps (`NAMEDATALEN - 1`).
const MAX_IDENT: usize = 63;

/// `sluice_<source>_<table>`, lowercased, with anything but `[a-z0-9_]` turned into `_` (slot names
/// allow nothing else), shortened with a hash suffix when longer than 63 bytes.
pub fn default_slot_name(source: &str, table: &str) -> String {
    let raw = format!("sluice_{source}_{table}");
    let clean: String = raw
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if clean.len() <= MAX_IDENT {
        return clean;
    }
    use sha2::Digest;
    let digest = sha2::Sha256::digest(raw.as_bytes());
    let hash: String = digest.iter().take(4).map(|b| format!("{b:02x}")).collect();
    format!("{}_{hash}", &clean[..MAX_IDENT - 9])
}

/// A failed setup statement, as the crate error for the table.
pub(crate) fn fail(t: &CdcTable, doing: &str) -> impl Fn(tokio_postgres::Error) -> IngestError {
    let (source, table, doing) = (t.source.clone(), t.table.clone(), doing.to_string());
    move |e| PgFailure::from(e).into_error(&source, &table, &doing)
}

pub(crate) fn setup_error(t: &CdcTable, message: String) -> IngestError {
    IngestError::Read {
        source_name: t.source.clone(),
        table: t.table.clone(),
        message,
        transient: false,
    }
}

/// `"schema"."table"`.
pub(crate) fn relation_sql(t: &CdcTable) -> String {
    format!("{}.{}", quote(&t.schema), quote(&t.table))
}

/// Fails unless the server decodes logical changes.
pub(crate) async fn check_wal_level(client: &Client, t: &CdcTable) -> Result<(), IngestError> {
    let row = client
        .query_one("SELECT current_setting('wal_level')", &[])
        .await
        .map_err(fail(t, "cannot read wal_level"))?;
    let level: String = row.get(0);
    if level != "logical" {
        return Err(setup_error(
            t,
            format!(
                "`mode: cdc` needs `wal_level = logical`, the server has `{level}`: run \
                 `ALTER SYSTEM SET wal_level = logical` and restart PostgreSQL"
            ),
        ));
    }
    Ok(())
}

/// The primary key columns (configured, else the table's), with their SQL types, in key order.
/// Fails when the table has none: without a key, deletes cannot be told apart and a publication
/// that publishes deletes would make the application's `DELETE`s fail.
pub(crate) async fn primary_key(
    client: &Client,
    t: &CdcTable,
) -> Result<Vec<(String, String)>, IngestError> {
    let rel = relation_sql(t);
    let rows = if t.primary_key.is_empty() {
        client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
                 FROM pg_index i JOIN pg_attribute a \
                   ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 WHERE i.indrelid = $1::text::regclass AND i.indisprimary \
                 ORDER BY array_position(i.indkey, a.attnum)",
                &[&rel],
            )
            .await
    } else {
        client
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) \
                 FROM unnest($2::text[]) WITH ORDINALITY AS k(name, n) \
                 JOIN pg_attribute a ON a.attrelid = $1::text::regclass AND a.attname = k.name \
                 ORDER BY k.n",
                &[&rel, &t.primary_key],
            )
            .await
    }
    .map_err(fail(
        t,
        &format!("cannot read the primary key of `{}.{}`", t.schema, t.table),
    ))?;
    let key: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    if key.is_empty() {
        return Err(setup_error(
            t,
            format!(
                "`{}.{}` has no primary key; `mode: cdc` needs one (or name the key columns in \
                 `primary_key:` and set `REPLICA IDENTITY FULL` on the table)",
                t.schema, t.table
            ),
        ));
    }
    if key.len() != t.primary_key.len().max(key.len()) {
        let found: Vec<&str> = key.iter().map(|k| k.0.as_str()).collect();
        return Err(setup_error(
            t,
            format!(
                "`primary_key: [{}]` names columns that `{}.{}` does not have (found: {})",
                t.primary_key.join(", "),
                t.schema,
                t.table,
                found.join(", ")
            ),
        ));
    }
    Ok(key)
}

/// The table's current columns and how each lands.
pub(crate) async fn columns(
    client: &Client,
    t: &CdcTable,
) -> Result<Vec<(String, PgKind)>, IngestError> {
    let stmt = client
        .prepare(&format!("SELECT * FROM {} LIMIT 0", relation_sql(t)))
        .await
        .map_err(fail(t, &format!("cannot read `{}.{}`", t.schema, t.table)))?;
    let qualified = format!("{}.{}", t.schema, t.table);
    stmt.columns()
        .iter()
        .map(|c| Ok((c.name().to_string(), kind_of(c, &t.source, &qualified)?)))
        .collect()
}

fn unsupported(t: &CdcTable, column: &str, ty: &Type) -> IngestError {
    let qualified = format!("{}.{}", t.schema, t.table);
    crate::sources::relational::unsupported("postgres", &t.source, &qualified, column, ty.name())
}

/// How a column of type `oid` (as a `Relation` message names it) lands. Built-in types are known
/// at once; others (enums, domains, extension types) are resolved through the server.
pub(crate) async fn kind_of_oid(
    t: &CdcTable,
    column: &str,
    oid: u32,
    typmod: i32,
) -> Result<PgKind, IngestError> {
    let ty = match Type::from_oid(oid) {
        Some(ty) => ty,
        None => {
            // A connection of its own: the stream may have outlived the server's restart.
            let client = super::super::client::connect(&t.pg)
                .await
                .map_err(|e| e.into_error(&t.source, &t.table, "cannot connect"))?;
            let row = client
                .query_one("SELECT format_type($1::oid, NULL)", &[&oid])
                .await
                .map_err(fail(t, "cannot resolve a column type"))?;
            let name: String = row.get(0);
            let stmt = client
                .prepare(&format!("SELECT NULL::{name}"))
                .await
                .map_err(fail(t, &format!("cannot resolve type `{name}`")))?;
            stmt.columns()[0].type_().clone()
        }
    };
    PgKind::of(&ty, typmod).ok_or_else(|| unsupported(t, column, &ty))
}

/// Creates the publication (`FOR TABLE` the table) unless it exists, and adds the table to an
/// existing publication that lacks it.
pub(crate) async fn ensure_publication(client: &Client, t: &CdcTable) -> Result<(), IngestError> {
    let rel = relation_sql(t);
    let exists = client
        .query_opt(
            "SELECT 1 FROM pg_publication WHERE pubname = $1",
            &[&t.publication],
        )
        .await
        .map_err(fail(t, "cannot read publications"))?
        .is_some();
    if !exists {
        let created = client
            .batch_execute(&format!(
                "CREATE PUBLICATION {} FOR TABLE {rel}",
                quote(&t.publication)
            ))
            .await;
        match created {
            Ok(()) => {
                tracing::info!(publication = %t.publication, table = %rel, "created publication");
                return Ok(());
            }
            // Created concurrently by another run: check its tables below.
            Err(e) if e.code() == Some(&SqlState::DUPLICATE_OBJECT) => {}
            Err(e) => {
                return Err(fail(
                    t,
                    &format!("cannot create publication `{}`", t.publication),
                )(e));
            }
        }
    }
    let included = client
        .query_opt(
            "SELECT 1 FROM pg_publication_tables WHERE pubname = $1 AND schemaname = $2 \
             AND tablename = $3",
            &[&t.publication, &t.schema, &t.table],
        )
        .await
        .map_err(fail(t, "cannot read publication tables"))?
        .is_some();
    if !included {
        client
            .batch_execute(&format!(
                "ALTER PUBLICATION {} ADD TABLE {rel}",
                quote(&t.publication)
            ))
            .await
            .map_err(fail(
                t,
                &format!(
                    "publication `{}` does not include `{}.{}` and adding it failed",
                    t.publication, t.schema, t.table
                ),
            ))?;
    }
    Ok(())
}

/// The slot's `confirmed_flush_lsn`, creating the slot (plugin `pgoutput`) when missing; `created`
/// tells which. A new slot's LSN is its consistent point: every transaction committed after it is
/// streamed, every one before it is in a snapshot taken from now on.
pub(crate) async fn ensure_slot(client: &Client, t: &CdcTable) -> Result<(u64, bool), IngestError> {
    let existing = client
        .query_opt(
            "SELECT plugin::text, database::text, confirmed_flush_lsn::text, current_database()::text \
             FROM pg_replication_slots WHERE slot_name = $1",
            &[&t.slot],
        )
        .await
        .map_err(fail(t, "cannot read replication slots"))?;
    if let Some(row) = existing {
        let plugin: Option<String> = row.get(0);
        let database: Option<String> = row.get(1);
        let current: String = row.get(3);
        if plugin.as_deref() != Some("pgoutput") || database.as_deref() != Some(current.as_str()) {
            return Err(setup_error(
                t,
                format!(
                    "replication slot `{}` exists but is not a `pgoutput` slot of database `{current}` \
                     (plugin {plugin:?}, database {database:?}); name another one with `slot:`",
                    t.slot
                ),
            ));
        }
        let lsn: Option<String> = row.get(2);
        return Ok((parse_lsn(t, lsn.as_deref())?, false));
    }
    let created = client
        .query_one(
            "SELECT lsn::text FROM pg_create_logical_replication_slot($1, 'pgoutput')",
            &[&t.slot],
        )
        .await;
    match created {
        Ok(row) => {
            let lsn: Option<String> = row.get(0);
            tracing::info!(slot = %t.slot, lsn = ?lsn, "created replication slot");
            Ok((parse_lsn(t, lsn.as_deref())?, true))
        }
        Err(e) if e.code() == Some(&SqlState::DUPLICATE_OBJECT) => Box::pin(ensure_slot(client, t))
            .await
            .map(|(lsn, _)| (lsn, false)),
        Err(e) => Err(fail(
            t,
            &format!("cannot create replication slot `{}`", t.slot),
        )(e)),
    }
}

fn parse_lsn(t: &CdcTable, text: Option<&str>) -> Result<u64, IngestError> {
    let text = text.unwrap_or("0/0");
    Lsn::parse(text)
        .map(|l| l.0)
        .map_err(|e| setup_error(t, format!("slot `{}`: bad LSN `{text}`: {}", t.slot, e.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_names_are_valid_identifiers() {
        assert_eq!(default_slot_name("shop", "Orders"), "sluice_shop_orders");
        assert_eq!(default_slot_name("my-src", "a.b"), "sluice_my_src_a_b");
        let long = default_slot_name("s", &"x".repeat(100));
        assert_eq!(long.len(), MAX_IDENT);
        assert_ne!(long, default_slot_name("s", &"x".repeat(101)));
    }
}
