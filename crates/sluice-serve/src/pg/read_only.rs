//! Read-only enforcement for the PostgreSQL endpoint.
//!
//! `datafusion-postgres` executes whatever a client sends (`INSERT` into a Delta table commits,
//! `CREATE TABLE` registers one, `COPY ... TO` writes files, `SET datafusion.*` changes the session
//! every connection shares). Data reaches the lake only through `sluice run`, so [`ReadOnlyHook`]
//! sits first in the library's query hooks and decides each statement before anything else sees it:
//!
//! - queries (`SELECT`, `WITH`, `VALUES`, `EXPLAIN`, `SHOW`, `DESCRIBE`, `DECLARE ... CURSOR FOR`)
//!   are planned and the plan is checked with DataFusion's [`SQLOptions`] (no DDL, DML or
//!   statements anywhere in it, subqueries included), which catches `SELECT INTO`, `EXPLAIN
//!   ANALYZE INSERT` and the like;
//! - client session settings (`SET statement_timeout`, `application_name`, `search_path`,
//!   `DateStyle`, `TIME ZONE`, ...), transactions and cursors go on to the library's own hooks,
//!   which keep them per connection; other `SET`s of PostgreSQL settings are accepted and ignored,
//!   as BI drivers send them on connect;
//! - everything else (writes, DDL, `COPY`, `SET datafusion.*`, `GRANT`, ...) is refused with an
//!   ErrorResponse carrying SQLSTATE `25006` (read_only_sql_transaction), or `0A000` for SQL-level
//!   `PREPARE`/`EXECUTE`, which would store plans in the shared session. The connection stays open
//!   and usable: the refusal is an ordinary query error.

use async_trait::async_trait;
use datafusion_postgres::QueryHook;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::results::{Response, Tag};
use datafusion_postgres::pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use sluice_engine::SessionContext;
use sluice_engine::plan::{EmptyRelation, LogicalPlan};
use sluice_engine::sql::SQLOptions;
use sluice_engine::sql::Statement as DfStatement;
use sluice_engine::sql::sqlparser::ast::{
    ContextModifier, CopyTarget, Query, Set, SetExpr, Statement,
};
use sluice_engine::{DFSchema, ParamValues};
use std::sync::Arc;

use super::error::{NOT_SUPPORTED, READ_ONLY};

/// Client settings the library's `SET` hook keeps per connection (and reports back).
const CLIENT_SETTINGS: [&str; 7] = [
    "statement_timeout",
    "datestyle",
    "bytea_output",
    "intervalstyle",
    "application_name",
    "extra_float_digits",
    "search_path",
];

const HINT: &str =
    "Sluice serves the lake read-only over PostgreSQL; tables are written by `sluice run`.";

/// What the endpoint does with one statement.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// Plan these statements (the statement itself, or a cursor's query) and run the statement only if
    /// every plan reads and nothing else.
    Plan(Vec<Statement>),
    /// Leave it to the library's hooks (client settings, `SHOW` of a setting, transactions, cursors).
    Handled,
    /// Accept and ignore it, answering with this command tag.
    Ignore(String),
    /// Refuse it.
    Refuse(Refusal),
}

/// A refused statement: the SQLSTATE and the message the client sees.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// The SQLSTATE.
    pub code: &'static str,
    /// What was refused and why.
    pub message: String,
}

impl Refusal {
    fn read_only(message: String) -> Self {
        Refusal {
            code: READ_ONLY,
            message,
        }
    }
}

impl From<Refusal> for PgWireError {
    fn from(r: Refusal) -> Self {
        let mut info = ErrorInfo::new("ERROR".to_string(), r.code.to_string(), r.message);
        info.hint = Some(HINT.to_string());
        PgWireError::UserError(Box::new(info))
    }
}

/// Decides what to do with `stmt` (see the module doc).
pub fn classify(stmt: &Statement) -> Verdict {
    use Statement as S;
    match stmt {
        S::Query(q) => match query_write(q) {
            Some(what) => Verdict::Refuse(Refusal::read_only(format!(
                "cannot execute {what} on the read-only PostgreSQL endpoint"
            ))),
            None => Verdict::Plan(vec![stmt.clone()]),
        },
        S::Explain { .. }
        | S::ExplainTable { .. }
        | S::ShowTables { .. }
        | S::ShowColumns { .. }
        | S::ShowFunctions { .. }
        | S::ShowSchemas { .. }
        | S::ShowDatabases { .. }
        | S::ShowViews { .. }
        | S::ShowCreate { .. }
        | S::ShowVariables { .. }
        | S::ShowObjects(_) => Verdict::Plan(vec![stmt.clone()]),
        S::ShowVariable { .. } | S::ShowStatus { .. } | S::ShowCatalogs { .. } => Verdict::Handled,
        S::StartTransaction { .. } | S::Commit { .. } | S::Rollback { .. } => Verdict::Handled,
        S::Savepoint { .. } => Verdict::Ignore("SAVEPOINT".into()),
        S::ReleaseSavepoint { .. } => Verdict::Ignore("RELEASE".into()),
        S::Declare { stmts } => {
            let queries: Vec<Statement> = stmts
                .iter()
                .filter_map(|d| d.for_query.as_ref())
                .map(|q| S::Query(q.clone()))
                .collect();
            if let Some(Verdict::Refuse(r)) = queries.iter().map(classify).find(is_refusal) {
                return Verdict::Refuse(r);
            }
            if queries.is_empty() {
                Verdict::Handled
            } else {
                Verdict::Plan(queries)
            }
        }
        S::Fetch { .. } | S::Close { .. } => Verdict::Handled,
        S::Set(set) => set_verdict(set),
        S::Discard { object_type } => Verdict::Ignore(format!("DISCARD {object_type}")),
        S::Deallocate { .. } => Verdict::Ignore("DEALLOCATE".into()),
        S::Prepare { .. } | S::Execute { .. } => Verdict::Refuse(Refusal {
            code: NOT_SUPPORTED,
            message: "SQL-level PREPARE/EXECUTE is not supported; use the driver's prepared \
                      statements (the extended query protocol)"
                .into(),
        }),
        // `COPY ... TO STDOUT` reads, but the library has no COPY-out path yet; the rest writes.
        S::Copy {
            to: true,
            target: CopyTarget::Stdout,
            ..
        } => Verdict::Refuse(Refusal {
            code: NOT_SUPPORTED,
            message: "COPY ... TO STDOUT is not supported yet; read with SELECT \
                      (or download CSV/Parquet from the HTTP API)"
                .into(),
        }),
        S::Copy { .. } => Verdict::Refuse(Refusal::read_only(
            "cannot execute COPY on the read-only PostgreSQL endpoint; read with SELECT \
             (or download CSV/Parquet from the HTTP API)"
                .into(),
        )),
        other => Verdict::Refuse(Refusal::read_only(format!(
            "cannot execute {} on the read-only PostgreSQL endpoint",
            command_of(other)
        ))),
    }
}

fn is_refusal(v: &Verdict) -> bool {
    matches!(v, Verdict::Refuse(_))
}

/// The write hidden in a query, if any: `SELECT ... INTO` or a data-modifying `WITH`/set operation.
fn query_write(q: &Query) -> Option<&'static str> {
    if let Some(with) = &q.with {
        for cte in &with.cte_tables {
            if let Some(w) = query_write(&cte.query) {
                return Some(w);
            }
        }
    }
    body_write(&q.body)
}

fn body_write(body: &SetExpr) -> Option<&'static str> {
    match body {
        SetExpr::Select(s) if s.into.is_some() => Some("SELECT INTO"),
        SetExpr::Query(q) => query_write(q),
        SetExpr::SetOperation { left, right, .. } => body_write(left).or_else(|| body_write(right)),
        SetExpr::Insert(_) => Some("INSERT"),
        SetExpr::Update(_) => Some("UPDATE"),
        SetExpr::Delete(_) => Some("DELETE"),
        SetExpr::Merge(_) => Some("MERGE"),
        _ => None,
    }
}

/// `INSERT`, `CREATE TABLE`, `DROP VIEW`, ...: the statement's leading keywords, for messages.
fn command_of(stmt: &Statement) -> String {
    let text = stmt.to_string();
    let mut words = text.split_whitespace();
    let first = words
        .next()
        .unwrap_or("this statement")
        .to_ascii_uppercase();
    match first.as_str() {
        "CREATE" | "DROP" | "ALTER" => {
            let mut out = first;
            for w in words.take(3) {
                let w = w.to_ascii_uppercase();
                let keyword = w.chars().all(|c| c.is_ascii_alphabetic());
                if !keyword || w == "IF" {
                    break;
                }
                out.push(' ');
                out.push_str(&w);
                if !matches!(
                    w.as_str(),
                    "OR" | "REPLACE" | "EXTERNAL" | "TEMPORARY" | "TEMP"
                ) {
                    break;
                }
            }
            out
        }
        _ => first,
    }
}

fn set_verdict(set: &Set) -> Verdict {
    let names: Vec<String> = match set {
        Set::SingleAssignment { variable, .. } => vec![variable.to_string()],
        Set::ParenthesizedAssignments { variables, .. } => {
            variables.iter().map(|v| v.to_string()).collect()
        }
        Set::MultipleAssignments { assignments } => {
            assignments.iter().map(|a| a.name.to_string()).collect()
        }
        _ => vec![],
    };
    let global = matches!(
        set,
        Set::SingleAssignment {
            scope: Some(ContextModifier::Global),
            ..
        }
    );
    if let Some(name) = names.iter().find(|n| is_server_setting(n)) {
        return Verdict::Refuse(Refusal::read_only(format!(
            "cannot change server setting `{name}` on the read-only PostgreSQL endpoint \
             (client settings such as statement_timeout, application_name, search_path, DateStyle \
             and TIME ZONE are accepted)"
        )));
    }
    if global {
        return Verdict::Refuse(Refusal::read_only(
            "cannot SET GLOBAL on the read-only PostgreSQL endpoint".into(),
        ));
    }
    match set {
        Set::SingleAssignment {
            scope: None,
            hivevar: false,
            variable,
            values,
        } if !values.is_empty()
            && CLIENT_SETTINGS.contains(&variable.to_string().to_ascii_lowercase().as_str()) =>
        {
            Verdict::Handled
        }
        Set::SetTimeZone { local: false, .. } => Verdict::Handled,
        // Everything else would fall through to DataFusion's `SET`, which changes the session all
        // connections share; PostgreSQL settings mean nothing to DataFusion, so accept and ignore.
        _ => Verdict::Ignore("SET".into()),
    }
}

/// A DataFusion configuration key (`datafusion.execution.batch_size`), shared by every connection.
fn is_server_setting(name: &str) -> bool {
    name.trim_matches('"')
        .to_ascii_lowercase()
        .starts_with("datafusion.")
}

/// Plans `stmt` and checks the plan only reads. `Ok(None)` when planning itself fails: the
/// library's own path then reports that error as usual.
async fn plan_read_only(
    ctx: &SessionContext,
    stmt: &Statement,
) -> Result<Option<LogicalPlan>, Refusal> {
    let plan = match ctx
        .state()
        .statement_to_plan(DfStatement::Statement(Box::new(stmt.clone())))
        .await
    {
        Ok(plan) => plan,
        Err(e) => {
            tracing::debug!(error = %e, "statement does not plan; the library reports it");
            return Ok(None);
        }
    };
    verify(&plan)?;
    Ok(Some(plan))
}

pub(crate) fn verify(plan: &LogicalPlan) -> Result<(), Refusal> {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
        .verify_plan(plan)
        .map_err(|e| {
            Refusal::read_only(format!(
                "only queries are allowed on the read-only PostgreSQL endpoint ({})",
                e.strip_backtrace()
            ))
        })
}

fn empty_plan() -> LogicalPlan {
    LogicalPlan::EmptyRelation(EmptyRelation {
        produce_one_row: false,
        schema: Arc::new(DFSchema::empty()),
    })
}

/// The hook that enforces read-only access; install it first (see [`super::handlers`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct ReadOnlyHook;

#[async_trait]
impl QueryHook for ReadOnlyHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        match classify(statement) {
            Verdict::Refuse(r) => refuse(statement, r),
            Verdict::Ignore(tag) => Some(Ok(Response::Execution(Tag::new(&tag)))),
            Verdict::Handled => None,
            Verdict::Plan(stmts) => {
                for s in &stmts {
                    if let Err(r) = plan_read_only(session_context, s).await {
                        return refuse(statement, r);
                    }
                }
                None
            }
        }
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        match classify(statement) {
            Verdict::Refuse(r) => refuse(statement, r),
            Verdict::Ignore(_) => Some(Ok(empty_plan())),
            Verdict::Handled => None,
            Verdict::Plan(stmts) => {
                let mut last = None;
                for s in &stmts {
                    match plan_read_only(session_context, s).await {
                        Ok(plan) => last = plan,
                        Err(r) => return refuse(statement, r),
                    }
                }
                // For a plain query the checked plan is the statement's plan: hand it back so the
                // library does not plan it again. A cursor's plan is not the DECLARE's.
                match (&stmts[..], last) {
                    ([only], Some(plan)) if only == statement => Some(Ok(plan)),
                    _ => None,
                }
            }
        }
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        logical_plan: &LogicalPlan,
        _params: &ParamValues,
        session_context: &SessionContext,
        _client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        match classify(statement) {
            Verdict::Refuse(r) => refuse(statement, r),
            Verdict::Ignore(tag) => Some(Ok(Response::Execution(Tag::new(&tag)))),
            Verdict::Handled => None,
            Verdict::Plan(stmts) => {
                if matches!(statement, Statement::Declare { .. }) {
                    for s in &stmts {
                        if let Err(r) = plan_read_only(session_context, s).await {
                            return refuse(statement, r);
                        }
                    }
                } else if let Err(r) = verify(logical_plan) {
                    return refuse(statement, r);
                }
                None
            }
        }
    }
}

fn refuse<T>(statement: &Statement, r: Refusal) -> Option<PgWireResult<T>> {
    tracing::debug!(code = r.code, statement = %statement, "PostgreSQL statement refused");
    Some(Err(r.into()))
}
