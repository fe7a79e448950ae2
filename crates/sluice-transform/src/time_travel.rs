//! Time travel in SQL: `FROM gold.x VERSION AS OF 12`, `FROM gold.x TIMESTAMP AS OF '2026-01-01
//! 10:00'` (and `FOR SYSTEM_TIME AS OF '...'`), on every read path (`sluice query`, `POST /api/sql`,
//! the rows endpoint, the PostgreSQL wire).
//!
//! DataFusion parses SQL with sqlparser's generic dialect, which does not accept a version clause
//! after a table name. So the clause is resolved *before* planning, in one rewrite step,
//! [`TimeTravel::rewrite`]:
//!
//! 1. a statement with no `AS OF` in its tokens passes through untouched (the common case costs one
//!    tokenization);
//! 2. otherwise it is parsed with [`VersionedGeneric`], the generic dialect plus table versions;
//! 3. each versioned table factor is resolved to a lake table and a version (a time becomes the
//!    latest version committed at or before it), which must exist: otherwise the error names the
//!    asset and the versions it has;
//! 4. the factor is replaced by `"_time_travel"."<layer>.<table>@<version>"` (aliased to the original
//!    table name, so `x.col` keeps working), whose provider [`TimeTravelSchema`] holds at that
//!    version;
//! 5. the statement is printed back to SQL, which the caller plans as usual.
//!
//! The `_time_travel` schema lists no tables (it never shows in `information_schema` listings) and
//! loads a version it has not seen yet on demand, so a plan made again later (the extended wire
//! protocol plans at `Parse`) still resolves.

use std::any::TypeId;
use std::borrow::Cow;
use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use sluice_engine::DfResult;
use sluice_engine::catalog::{SchemaProvider, TableProvider};
use sluice_engine::sql::sqlparser::ast::{
    Expr, Ident, ObjectName, Statement, TableAlias, TableFactor, TableVersion, Value, VisitMut,
    VisitorMut,
};
use sluice_engine::sql::sqlparser::dialect::{Dialect, GenericDialect};
use sluice_engine::sql::sqlparser::keywords::Keyword;
use sluice_engine::sql::sqlparser::parser::Parser;
use sluice_engine::sql::sqlparser::tokenizer::{Token, Tokenizer};
use sluice_lake::{Lake, TableId};

/// How times are read (`TIMESTAMP AS OF`, `--timestamp`, `?as_of=`), for crates that have no
/// dependency on the lake; and the lake's time-travel error type.
pub use sluice_lake::{LakeError, parse_timestamp};

use crate::compiled::{CompiledProject, Materialized};
use crate::error::{Result, TransformError};
use crate::relation::{CATALOG, model_table};

/// The schema the rewritten statements read versions from.
pub const TIME_TRAVEL_SCHEMA: &str = "_time_travel";

/// How many versioned providers the schema keeps (each holds a snapshot of its table's log).
const KEPT_VERSIONS: usize = 32;

/// The providers of earlier versions, named `<layer>.<table>@<version>`.
#[derive(Debug)]
pub struct TimeTravelSchema {
    lake: Lake,
    kept: Mutex<VecDeque<(String, Arc<dyn TableProvider>)>>,
}

impl TimeTravelSchema {
    /// An empty schema over `lake`.
    pub fn new(lake: Lake) -> Self {
        Self {
            lake,
            kept: Mutex::new(VecDeque::new()),
        }
    }

    /// The table name of `id` at `version` in this schema.
    pub fn table_name(id: &TableId, version: u64) -> String {
        format!("{id}@{version}")
    }

    /// The provider of `id` at `version`, loaded (and kept) when not kept yet.
    async fn provider(&self, id: &TableId, version: u64) -> Result<Arc<dyn TableProvider>> {
        let name = Self::table_name(id, version);
        if let Some(kept) = self.kept_provider(&name) {
            return Ok(kept);
        }
        let provider = self.lake.provider_at(id, version).await?;
        let mut kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.len() >= KEPT_VERSIONS {
            kept.pop_front();
        }
        kept.push_back((name, provider.clone()));
        Ok(provider)
    }

    fn kept_provider(&self, name: &str) -> Option<Arc<dyn TableProvider>> {
        let kept = self.kept.lock().unwrap_or_else(PoisonError::into_inner);
        kept.iter().find(|(n, _)| n == name).map(|(_, p)| p.clone())
    }
}

#[async_trait]
impl SchemaProvider for TimeTravelSchema {
    /// None listed: versions are reached through `AS OF`, not browsed.
    fn table_names(&self) -> Vec<String> {
        Vec::new()
    }

    async fn table(&self, name: &str) -> DfResult<Option<Arc<dyn TableProvider>>> {
        let Some((table, version)) = name.rsplit_once('@') else {
            return Ok(None);
        };
        let (Ok(id), Ok(version)) = (table.parse::<TableId>(), version.parse::<u64>()) else {
            return Ok(None);
        };
        self.provider(&id, version)
            .await
            .map(Some)
            .map_err(|e| sluice_engine::DataFusionError::Plan(e.to_string()))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.kept_provider(name).is_some()
    }
}

/// The rewrite step (see the module doc): the lake's tables by SQL name, and the schema that holds
/// the versions read.
pub struct TimeTravel<'a> {
    /// The versions' schema.
    pub schema: &'a TimeTravelSchema,
    /// The lake table registered as (schema, table) in SQL, if any.
    pub resolve: &'a (dyn Fn(&str, &str) -> Option<TableId> + Send + Sync),
    /// The default schema of unqualified names.
    pub default_schema: &'a str,
}

/// One versioned table factor found in a statement.
struct Versioned {
    name: ObjectName,
    version: TableVersion,
}

impl TimeTravel<'_> {
    /// `sql` with every versioned table replaced (see the module doc); unchanged when it has none.
    pub async fn rewrite<'s>(&self, sql: &'s str) -> Result<Cow<'s, str>> {
        if !mentions_as_of(sql) {
            return Ok(Cow::Borrowed(sql));
        }
        let Ok(mut statements) = Parser::parse_sql(&VersionedGeneric, sql) else {
            // Not valid SQL even with versions: DataFusion reports it as it would any typo.
            return Ok(Cow::Borrowed(sql));
        };
        let mut found = Collect::default();
        let _ = statements.visit(&mut found);
        if found.tables.is_empty() {
            return Ok(Cow::Borrowed(sql));
        }
        let mut names = Vec::with_capacity(found.tables.len());
        for table in &found.tables {
            names.push(self.resolve_one(table).await?);
        }
        let mut replace = Replace {
            names: names.into_iter(),
        };
        let _ = statements.visit(&mut replace);
        let text: Vec<String> = statements.iter().map(Statement::to_string).collect();
        tracing::debug!(rewritten = %text.join("; "), "time travel");
        Ok(Cow::Owned(text.join("; ")))
    }

    /// The table name at its version in [`TIME_TRAVEL_SCHEMA`], loaded and checked.
    async fn resolve_one(&self, table: &Versioned) -> Result<String> {
        let clause = format!("{} {}", table.name, table.version);
        let fail = |message: String| TransformError::TimeTravel(format!("{clause}: {message}"));
        let parts: Vec<String> = table
            .name
            .0
            .iter()
            .filter_map(|p| p.as_ident())
            .map(normalized)
            .collect();
        let (schema, name) = match parts.as_slice() {
            [name] => (self.default_schema, name.as_str()),
            [schema, name] => (schema.as_str(), name.as_str()),
            [catalog, schema, name] if catalog == CATALOG => (schema.as_str(), name.as_str()),
            _ => return Err(fail("not a table of the lake".to_string())),
        };
        let id = (self.resolve)(schema, name).ok_or_else(|| {
            fail(format!(
                "`{schema}.{name}` is not a table of the lake; only tables written to the lake \
                 (sources and materialized models, not views) have versions"
            ))
        })?;
        let version = match &table.version {
            TableVersion::VersionAsOf(expr) => number(expr).ok_or_else(|| {
                fail("VERSION AS OF takes a version number, such as VERSION AS OF 3".into())
            })?,
            TableVersion::TimestampAsOf(expr) | TableVersion::ForSystemTimeAsOf(expr) => {
                let text = text(expr).ok_or_else(|| {
                    fail("expected a timestamp literal, such as '2026-01-01 10:00' (UTC)".into())
                })?;
                let at = parse_timestamp(&text).ok_or_else(|| {
                    fail(format!(
                        "`{text}` is not a timestamp; use '2026-01-01 10:00[:00]' (UTC) or RFC 3339"
                    ))
                })?;
                self.schema
                    .lake
                    .version_at(&id, at)
                    .await
                    .map_err(|e| fail(e.to_string()))?
            }
            other => {
                return Err(fail(format!(
                    "`{other}` is not supported; use VERSION AS OF n or TIMESTAMP AS OF '...'"
                )));
            }
        };
        self.schema
            .provider(&id, version)
            .await
            .map_err(|e| fail(e.to_string()))?;
        Ok(TimeTravelSchema::table_name(&id, version))
    }
}

/// The lake table of an asset, for `sluice history`, `sluice restore` and the history endpoint: a
/// model (`by_region`, `gold.by_region`) or a source table (`shop.orders`). A view or ephemeral model
/// has no table, hence no versions.
pub fn asset_table(project: &CompiledProject, asset: &str) -> Result<TableId> {
    let node = sluice_core::exports::resolve_asset(
        asset,
        &project.project.sources,
        &project.project.models,
    );
    if let Some(m) = node.as_ref().and_then(|n| project.models.get(n)) {
        if matches!(
            m.config.materialized,
            Materialized::View | Materialized::Ephemeral
        ) {
            return Err(TransformError::TimeTravel(format!(
                "`{asset}` is a {} model: it has no table in the lake, so no versions",
                m.config.materialized.as_str()
            )));
        }
        return Ok(model_table(m.layer, &m.name));
    }
    if let Some(s) = node.as_ref().and_then(|n| project.sources.get(n)) {
        return Ok(TableId::bronze(&s.source, &s.table));
    }
    let hint = sluice_core::graph::suggest(asset, project.graph.nodes())
        .map(|h| format!(" (did you mean `{h}`?)"))
        .unwrap_or_default();
    Err(TransformError::TimeTravel(format!(
        "no asset `{asset}`{hint}; name a model (`by_region`, `gold.by_region`) or a source table \
         (`shop.orders`)"
    )))
}

/// Whether the tokens of `sql` hold `AS OF` (so that it may carry a version clause).
fn mentions_as_of(sql: &str) -> bool {
    let Ok(tokens) = Tokenizer::new(&GenericDialect, sql).tokenize() else {
        return false;
    };
    let mut words = tokens.iter().filter(|t| !matches!(t, Token::Whitespace(_)));
    let mut previous_as = false;
    for token in words.by_ref() {
        let keyword = match token {
            Token::Word(w) => w.keyword,
            _ => Keyword::NoKeyword,
        };
        if previous_as && keyword == Keyword::OF {
            return true;
        }
        previous_as = keyword == Keyword::AS;
    }
    false
}

/// An identifier as DataFusion resolves it: unquoted names fold to lower case.
fn normalized(ident: &Ident) -> String {
    match ident.quote_style {
        Some(_) => ident.value.clone(),
        None => ident.value.to_lowercase(),
    }
}

fn number(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.to_string().parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

fn text(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Value(v) => v.value.clone().into_string(),
        Expr::TypedString(t) => t.value.value.clone().into_string(),
        _ => None,
    }
}

/// Collects the versioned table factors, in visiting order.
#[derive(Default)]
struct Collect {
    tables: Vec<Versioned>,
}

impl VisitorMut for Collect {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            version: Some(version),
            ..
        } = factor
        {
            self.tables.push(Versioned {
                name: name.clone(),
                version: version.clone(),
            });
        }
        ControlFlow::Continue(())
    }
}

/// Replaces the versioned table factors, in the same order, by their resolved names.
struct Replace<I> {
    names: I,
}

impl<I: Iterator<Item = String>> VisitorMut for Replace<I> {
    type Break = ();

    fn pre_visit_table_factor(&mut self, factor: &mut TableFactor) -> ControlFlow<()> {
        if let TableFactor::Table {
            name,
            alias,
            version: version @ Some(_),
            ..
        } = factor
            && let Some(resolved) = self.names.next()
        {
            if alias.is_none()
                && let Some(last) = name.0.last().and_then(|p| p.as_ident())
            {
                // Keep the table's own name usable as a qualifier (`x.col`).
                *alias = Some(TableAlias {
                    explicit: true,
                    name: last.clone(),
                    columns: Vec::new(),
                    at: None,
                });
            }
            *name = ObjectName::from(vec![
                Ident::with_quote('"', TIME_TRAVEL_SCHEMA),
                Ident::with_quote('"', resolved),
            ]);
            *version = None;
        }
        ControlFlow::Continue(())
    }
}

/// sqlparser's generic dialect (the one DataFusion parses with) that also accepts a version clause
/// after a table name. It reports itself as [`GenericDialect`] (sqlparser's `dialect_of!` checks
/// compare this id) and forwards every capability the generic dialect sets.
#[derive(Debug)]
pub struct VersionedGeneric;

macro_rules! like_generic {
    ($($name:ident),* $(,)?) => {
        $(fn $name(&self) -> bool { GenericDialect.$name() })*
    };
}

impl Dialect for VersionedGeneric {
    fn dialect(&self) -> TypeId {
        TypeId::of::<GenericDialect>()
    }

    fn supports_table_versioning(&self) -> bool {
        true
    }

    fn is_delimited_identifier_start(&self, ch: char) -> bool {
        GenericDialect.is_delimited_identifier_start(ch)
    }

    fn is_identifier_start(&self, ch: char) -> bool {
        GenericDialect.is_identifier_start(ch)
    }

    fn is_identifier_part(&self, ch: char) -> bool {
        GenericDialect.is_identifier_part(ch)
    }

    like_generic!(
        supports_unicode_string_literal,
        supports_partition_by_after_order_by,
        supports_array_join_syntax,
        supports_group_by_expr,
        supports_group_by_with_modifier,
        supports_left_associative_joins_without_parens,
        supports_connect_by,
        supports_match_recognize,
        supports_pipe_operator,
        supports_start_transaction_modifier,
        supports_window_function_null_treatment_arg,
        supports_dictionary_syntax,
        supports_window_clause_named_window_reference,
        supports_parenthesized_set_variables,
        supports_select_wildcard_except,
        support_map_literal_syntax,
        allow_extract_custom,
        allow_extract_single_quotes,
        supports_extract_comma_syntax,
        supports_create_view_comment_syntax,
        supports_parens_around_table_factor,
        supports_values_as_table_factor,
        supports_create_index_with_clause,
        supports_explain_with_utility_options,
        supports_limit_comma,
        supports_update_order_by,
        supports_from_first_select,
        supports_projection_trailing_commas,
        supports_asc_desc_in_column_definition,
        supports_try_convert,
        supports_bitwise_shift_operators,
        supports_comment_on,
        supports_load_extension,
        supports_named_fn_args_with_assignment_operator,
        supports_struct_literal,
        supports_empty_projections,
        supports_nested_comments,
        supports_multiline_comment_hints,
        supports_user_host_grantee,
        supports_string_escape_constant,
        supports_array_typedef_with_brackets,
        supports_match_against,
        supports_set_names,
        supports_comma_separated_set_assignments,
        supports_filter_during_aggregation,
        supports_select_wildcard_exclude,
        supports_data_type_signed_suffix,
        supports_interval_options,
        supports_quote_delimited_string,
        supports_select_wildcard_replace,
        supports_select_wildcard_ilike,
        supports_select_wildcard_rename,
        supports_optimize_table,
        supports_install,
        supports_detach,
        supports_prewhere,
        supports_with_fill,
        supports_limit_by,
        supports_interpolate,
        supports_settings,
        supports_select_format,
        supports_comment_optimizer_hint,
        supports_constraint_keyword_without_name,
        supports_key_column_option,
        supports_comma_separated_trim,
        supports_cte_without_as,
        supports_select_item_multi_column_alias,
        supports_xml_expressions,
    );
}

#[cfg(test)]
#[path = "time_travel_tests.rs"]
mod tests;
