//! The Flight SQL query path: the PostgreSQL wire's session and read-only guard, the server's
//! limits, and DataFusion's stream straight to the client.
//!
//! A statement goes through the same steps as on the wire, with the wire's own code:
//!
//! 1. the SQL limits ([`check_sql`]) before anything parses it;
//! 2. `VERSION AS OF` / `TIMESTAMP AS OF` resolved by the engine ([`Engine::time_travel`]);
//! 3. parsed as PostgreSQL SQL and classified by the wire's guard ([`classify`]): writes, DDL,
//!    `COPY` and server `SET`s are refused before planning;
//! 4. planned in the wire's session ([`crate::pg::catalog::session_for`]: the lake's published
//!    schemas, read-only) and the plan checked to only read ([`verify`]);
//! 5. run under a slot of the shared [`QueryRegistry`] (the statement timeout, `GET /api/queries`,
//!    cancel), its batches streamed as the engine produces them.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::array::{RecordBatch, RecordBatchOptions};
use arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use arrow::error::ArrowError;
use sluice_engine::plan::LogicalPlan;
use sluice_engine::sql::Statement as DfStatement;
use sluice_engine::sql::sqlparser::dialect::PostgreSqlDialect;
use sluice_engine::sql::sqlparser::parser::Parser;
use sluice_engine::{ParamValues, ScalarValue, SendableRecordBatchStream, SessionContext};
use sluice_transform::Engine;
use sluice_transform::guard::{SqlLimits, check_sql};
use tonic::Status;

use super::error;
use crate::access::{Access, ViewCache};
use crate::auth::Principal;
use crate::pg::read_only::{Verdict, classify, verify};
use crate::query::registry::{QueryRegistry, QueryTicket};

/// The protocol name queries carry in the registry (`GET /api/queries`).
pub const PROTOCOL: &str = "flight";

/// What every Flight SQL request shares: the wire's session, the engine (for `AS OF`), the query
/// registry and the SQL limits.
#[derive(Clone)]
pub struct QueryPath {
    ctx: Arc<SessionContext>,
    engine: Engine,
    queries: Arc<QueryRegistry>,
    sql: SqlLimits,
    /// Who reads what (access.yml).
    access: Access,
    /// The memory share of a query, for the sessions built per principal.
    query_memory_limit: Option<usize>,
    /// The session of each restricted principal.
    sessions: Arc<ViewCache<Arc<SessionContext>>>,
}

impl std::fmt::Debug for QueryPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QueryPath")
            .field("sql", &self.sql)
            .finish_non_exhaustive()
    }
}

impl QueryPath {
    /// A query path over `ctx` (the PostgreSQL wire's session), under `queries` and `sql`.
    pub fn new(
        ctx: Arc<SessionContext>,
        engine: Engine,
        queries: Arc<QueryRegistry>,
        sql: SqlLimits,
    ) -> Self {
        Self {
            ctx,
            engine,
            queries,
            sql,
            access: Access::default(),
            query_memory_limit: None,
            sessions: Arc::default(),
        }
    }

    /// Applies `access` (access.yml): each principal plans and lists in its own view of the lake,
    /// built with `query_memory_limit` per query.
    pub fn with_access(mut self, access: Access, query_memory_limit: Option<usize>) -> Self {
        self.access = access;
        self.query_memory_limit = query_memory_limit;
        self
    }

    /// Where reads are recorded, when they are.
    pub fn auditor(&self) -> Option<&crate::audit::Auditor> {
        self.access.auditor()
    }

    /// The session `principal` plans and lists in: the whole lake's when it sees everything (or
    /// when authentication is off), else one over its view ([`crate::access`]).
    pub fn session(&self, principal: Option<&Principal>) -> Result<Arc<SessionContext>, Status> {
        let Some(view) = self.access.view(principal) else {
            return Ok(self.ctx.clone());
        };
        self.sessions.get_or_try(&view, || {
            crate::pg::catalog::session_for_view(
                &self.engine,
                self.query_memory_limit,
                Some(view.clone()),
            )
            .map_err(|e| Status::internal(e.to_string()))
        })
    }

    /// Checks the text and takes a query slot for `peer`.
    pub async fn admit(&self, peer: String, sql: &str) -> Result<QueryTicket, Status> {
        check_sql(sql, &self.sql).map_err(|e| error::over_limit(&e))?;
        self.queries
            .admit(PROTOCOL, peer, sql, None)
            .await
            .map_err(|e| error::interrupted(&e))
    }

    /// Plans `sql` read-only (see the module doc); the plan may hold `$n` placeholders.
    pub async fn plan(
        &self,
        principal: Option<&Principal>,
        sql: &str,
    ) -> Result<LogicalPlan, Status> {
        let ctx = self.session(principal)?;
        let sql = self
            .engine
            .time_travel(sql)
            .await
            .map_err(error::time_travel)?;
        let mut statements = Parser::parse_sql(&PostgreSqlDialect {}, &sql)
            .map_err(|e| Status::invalid_argument(format!("[42601] {e}")))?;
        let statement = match statements.len() {
            1 => statements.remove(0),
            0 => return Err(Status::invalid_argument("[42601] the SQL has no statement")),
            n => {
                return Err(Status::invalid_argument(format!(
                    "[42601] the SQL has {n} statements; send one query per request"
                )));
            }
        };
        match classify(&statement) {
            Verdict::Refuse(r) => return Err(error::refused(r)),
            Verdict::Plan(planned) if planned.len() == 1 && planned[0] == statement => {}
            // Client settings, transactions and cursors belong to a PostgreSQL session; a Flight
            // request is one query.
            Verdict::Plan(_) | Verdict::Handled | Verdict::Ignore(_) => {
                return Err(Status::unimplemented(format!(
                    "[0A000] `{}` is not supported over Flight SQL; send queries (SELECT, WITH, \
                     VALUES, EXPLAIN, SHOW)",
                    first_words(&statement.to_string())
                )));
            }
        }
        let plan = ctx
            .state()
            .statement_to_plan(DfStatement::Statement(Box::new(statement)))
            .await
            .map_err(|e| error::query_failed(&e))?;
        verify(&plan).map_err(error::refused)?;
        Ok(plan)
    }

    /// Runs `plan` with `params` bound under `ticket`: the batches come as the engine makes them,
    /// and the stream ends with an error at the statement timeout or a cancel.
    pub async fn execute(
        &self,
        plan: LogicalPlan,
        params: Option<ParamValues>,
        ticket: QueryTicket,
        principal: Option<&Principal>,
    ) -> Result<SendableRecordBatchStream, Status> {
        let plan = match params {
            Some(p) => {
                let p = coerce(&plan, p)?;
                plan.with_param_values(p)
                    .map_err(|e| error::query_failed(&e))?
            }
            None => plan,
        };
        let ctx = self.session(principal)?;
        let stream = ticket
            .during(async move { ctx.execute_logical_plan(plan).await?.execute_stream().await })
            .await
            .map_err(|e| error::interrupted(&e))?
            .map_err(|e| error::query_failed(&e))?;
        Ok(ticket.guard(stream))
    }
}

/// The result schema of a plan, as the client sees it ([`classic_schema`]).
pub fn result_schema(plan: &LogicalPlan) -> Schema {
    classic_schema(plan.schema().as_arrow()).as_ref().clone()
}

/// `schema` with Arrow's view types replaced by the classic ones (`Utf8View` → `Utf8`, `BinaryView`
/// → `Binary`, inside lists and structs too). The engine reads text as views; many Flight clients
/// (the Flight SQL JDBC driver, older ADBC and pyarrow releases) do not read them.
pub fn classic_schema(schema: &Schema) -> SchemaRef {
    Arc::new(Schema::new_with_metadata(
        schema
            .fields()
            .iter()
            .map(|f| classic_field(f))
            .collect::<Vec<_>>(),
        schema.metadata().clone(),
    ))
}

fn classic_field(f: &Field) -> FieldRef {
    Arc::new(f.clone().with_data_type(classic_type(f.data_type())))
}

fn classic_type(t: &DataType) -> DataType {
    match t {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::List(f) => DataType::List(classic_field(f)),
        DataType::LargeList(f) => DataType::LargeList(classic_field(f)),
        DataType::FixedSizeList(f, n) => DataType::FixedSizeList(classic_field(f), *n),
        DataType::Struct(fields) => {
            DataType::Struct(fields.iter().map(|f| classic_field(f)).collect())
        }
        DataType::Map(f, sorted) => DataType::Map(classic_field(f), *sorted),
        DataType::Dictionary(k, v) => DataType::Dictionary(k.clone(), Box::new(classic_type(v))),
        other => other.clone(),
    }
}

/// `batch` cast to `schema` (its [`classic_schema`]).
pub fn to_classic(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = batch
        .columns()
        .iter()
        .zip(schema.fields())
        .map(|(c, f)| {
            if c.data_type() == f.data_type() {
                Ok(c.clone())
            } else {
                arrow::compute::cast(c, f.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        schema.clone(),
        columns,
        &RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// The parameters of a plan (`$1`, `$2`, ...) as a schema, in order: field `$n` is parameter `n`,
/// typed when the plan says what it compares it with (`Null` otherwise: any value is accepted).
pub fn parameter_schema(plan: &LogicalPlan) -> Result<Schema, Status> {
    let types: HashMap<String, Option<DataType>> = plan
        .get_parameter_types()
        .map_err(|e| error::query_failed(&e))?;
    let mut numbered: Vec<(u32, String, DataType)> = types
        .into_iter()
        .map(|(id, t)| {
            let n = id
                .strip_prefix('$')
                .and_then(|n| n.parse::<u32>().ok())
                .unwrap_or(u32::MAX);
            (n, id, t.unwrap_or(DataType::Null))
        })
        .collect();
    numbered.sort();
    Ok(Schema::new(
        numbered
            .into_iter()
            .map(|(_, id, t)| Field::new(id, t, true))
            .collect::<Vec<_>>(),
    ))
}

/// The values bound to a prepared statement: one row of `batch`, column `i` for parameter `$i+1`.
pub fn bound_values(batch: &RecordBatch) -> Result<ParamValues, Status> {
    if batch.num_rows() != 1 {
        return Err(Status::invalid_argument(format!(
            "[22023] bind one row of parameters to a query (got {}); run the statement once per row",
            batch.num_rows()
        )));
    }
    let values = batch
        .columns()
        .iter()
        .map(|c| ScalarValue::try_from_array(c, 0))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| error::query_failed(&e))?;
    Ok(ParamValues::from(values))
}

/// Bound values cast to the types the plan gives their parameters: a client binds what its language
/// has (a Python `int` is `Int64`, a `float` is `Float64`) and a parameter compared with an `Int32`
/// column is an `Int32`.
fn coerce(plan: &LogicalPlan, params: ParamValues) -> Result<ParamValues, Status> {
    let ParamValues::List(values) = params else {
        return Ok(params);
    };
    let types = plan
        .get_parameter_types()
        .map_err(|e| error::query_failed(&e))?;
    let mut cast = Vec::with_capacity(values.len());
    for (i, v) in values.into_iter().enumerate() {
        let id = format!("${}", i + 1);
        let value = match types.get(&id) {
            Some(Some(t)) if v.value.data_type() != *t && !v.value.is_null() => {
                v.value.cast_to(t).map_err(|e| {
                    Status::invalid_argument(format!(
                        "[22P02] parameter {id}: cannot use {} as {t}: {}",
                        v.value.data_type(),
                        e.strip_backtrace()
                    ))
                })?
            }
            Some(Some(t)) if v.value.is_null() => {
                ScalarValue::try_from(t).map_err(|e| error::query_failed(&e))?
            }
            _ => v.value,
        };
        cast.push(value);
    }
    Ok(ParamValues::from(cast))
}

/// The first words of a statement, for messages.
fn first_words(sql: &str) -> String {
    sql.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}
