//! [`FlightSqlService`] for Sluice: statements, prepared statements and the catalog listings over
//! the [`QueryPath`] (the PostgreSQL wire's session and guard).
//!
//! A statement's `FlightInfo` has one endpoint whose ticket carries the SQL
//! ([`TicketStatementQuery`]); `DoGet` plans it again and streams DataFusion's batches as they come
//! (nothing is collected: a ten-million-row result holds a few batches at a time). A prepared
//! statement's ticket is the statement command itself, so `DoGet` finds its SQL and bound values in
//! [`PreparedStatements`].
//!
//! Every request goes through [`SluiceFlightSql::into_server`], which wraps the service in the
//! authentication interceptor ([`FlightAuth`]).

use std::pin::Pin;
use std::sync::Arc;

use arrow::datatypes::Schema;
use arrow::ipc::writer::IpcWriteOptions;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError as ArrowFlightError;
use arrow_flight::flight_service_server::{FlightService, FlightServiceServer};
use tonic::service::interceptor::InterceptedService;

use super::auth::{self, FlightAuth};
use arrow_flight::sql::server::{FlightSqlService, PeekableFlightDataStream};
use arrow_flight::sql::{
    ActionClosePreparedStatementRequest, ActionCreatePreparedStatementRequest,
    ActionCreatePreparedStatementResult, CommandGetCatalogs, CommandGetDbSchemas,
    CommandGetSqlInfo, CommandGetTableTypes, CommandGetTables, CommandPreparedStatementQuery,
    CommandPreparedStatementUpdate, CommandStatementIngest, CommandStatementQuery,
    CommandStatementSubstraitPlan, CommandStatementUpdate, DoPutPreparedStatementResult,
    ProstMessageExt, SqlInfo, TicketStatementQuery,
};
use arrow_flight::{
    Action, FlightDescriptor, FlightEndpoint, FlightInfo, HandshakeRequest, HandshakeResponse,
    IpcMessage, SchemaAsIpc, Ticket,
};
use futures::{Stream, StreamExt, TryStreamExt};
use prost::Message;
use sluice_engine::plan::LogicalPlan;
use sluice_engine::{ParamValues, SendableRecordBatchStream};
use tonic::{Request, Response, Status, Streaming};

use super::error;
use super::metadata;
use super::prepared::PreparedStatements;
use super::query::{
    QueryPath, bound_values, classic_schema, parameter_schema, result_schema, to_classic,
};
use crate::auth::Principal;

/// Rows of parameters read from one `DoPut` before it is refused (a query binds one).
const MAX_BOUND_ROWS: usize = 1024;

type DoGetStream = <SluiceFlightSql as FlightService>::DoGetStream;

/// The Flight SQL service over the lake.
#[derive(Debug, Clone)]
pub struct SluiceFlightSql {
    path: QueryPath,
    prepared: Arc<PreparedStatements>,
}

impl SluiceFlightSql {
    /// A service running queries on `path`.
    pub fn new(path: QueryPath) -> Self {
        Self {
            path,
            prepared: Arc::new(PreparedStatements::default()),
        }
    }

    /// The service with `access` applied (see [`QueryPath::with_access`]).
    pub fn with_access(
        self,
        access: crate::access::Access,
        query_memory_limit: Option<usize>,
    ) -> Self {
        Self {
            path: self.path.with_access(access, query_memory_limit),
            prepared: self.prepared,
        }
    }

    /// The gRPC service to mount, every RPC passing through `auth` first.
    pub fn into_server(
        self,
        auth: FlightAuth,
    ) -> InterceptedService<FlightServiceServer<Self>, FlightAuth> {
        FlightServiceServer::with_interceptor(self, auth)
    }

    /// Plans `sql` under a query slot (planning reads table metadata; it counts as work).
    async fn plan<T>(&self, request: &Request<T>, sql: &str) -> Result<LogicalPlan, Status> {
        let ticket = self.path.admit(peer(request), sql).await?;
        let principal = principal_of(request);
        ticket
            .during(self.path.plan(principal.as_ref(), sql))
            .await
            .map_err(|e| error::interrupted(&e))?
    }

    /// Plans and runs `sql` and streams its result.
    async fn run<T>(
        &self,
        request: &Request<T>,
        sql: &str,
        params: Option<ParamValues>,
    ) -> Result<Response<DoGetStream>, Status> {
        let ticket = self.path.admit(peer(request), sql).await?;
        tracing::debug!(query = ticket.id(), %sql, "Flight SQL query");
        let principal = principal_of(request);
        let plan = ticket
            .during(self.path.plan(principal.as_ref(), sql))
            .await
            .map_err(|e| error::interrupted(&e))??;
        let read = crate::audit::Read {
            principal: principal.clone(),
            protocol: super::query::PROTOCOL,
            client: peer(request),
            action: "sql",
            sql: sql.to_string(),
            tables: crate::audit::tables_of_plan(&plan),
            columns: crate::audit::columns_of(plan.schema().as_arrow()),
        };
        let stream = self
            .path
            .execute(plan, params, ticket, principal.as_ref())
            .await?;
        let stream = match self.path.auditor() {
            Some(a) => {
                let seq = a
                    .read_started(&read)
                    .await
                    .map_err(|e| Status::internal(e.to_string()))?;
                a.count(seq, &read, stream)
            }
            None => stream,
        };
        Ok(Response::new(encode(stream)))
    }
}

/// Who made the call (set by the token check; none when authentication is off).
fn principal_of<T>(request: &Request<T>) -> Option<Principal> {
    request.extensions().get::<Principal>().cloned()
}

/// The client's address, for the registry (`GET /api/queries`).
fn peer<T>(request: &Request<T>) -> String {
    request
        .remote_addr()
        .map_or_else(|| "flight".to_string(), |a| a.to_string())
}

/// DataFusion's stream as Flight data: batches are encoded as they arrive (view types cast to the
/// classic ones, see [`classic_schema`]); an error ends the stream with its status.
fn encode(stream: SendableRecordBatchStream) -> DoGetStream {
    let engine_schema = stream.schema();
    let schema = classic_schema(&engine_schema);
    let cast = schema != engine_schema;
    let target = schema.clone();
    let batches = stream
        .map_err(|e| ArrowFlightError::Tonic(Box::new(error::query_failed(&e))))
        .and_then(move |batch| {
            let out = if cast {
                to_classic(&batch, &target).map_err(ArrowFlightError::Arrow)
            } else {
                Ok(batch)
            };
            futures::future::ready(out)
        });
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(batches)
            .map_err(Status::from),
    )
}

/// One listing batch as Flight data.
fn encode_batch(batch: arrow::array::RecordBatch) -> DoGetStream {
    let schema = batch.schema();
    Box::pin(
        FlightDataEncoderBuilder::new()
            .with_schema(schema)
            .build(futures::stream::once(async move { Ok(batch) }))
            .map_err(Status::from),
    )
}

/// A `FlightInfo` whose one endpoint's ticket is `ticket`.
fn info(
    schema: &Schema,
    ticket: Vec<u8>,
    descriptor: FlightDescriptor,
) -> Result<Response<FlightInfo>, Status> {
    let info = FlightInfo::new()
        .try_with_schema(schema)
        .map_err(|e| Status::internal(format!("cannot encode the result schema: {e}")))?
        .with_endpoint(FlightEndpoint::new().with_ticket(Ticket::new(ticket)))
        .with_descriptor(descriptor);
    Ok(Response::new(info))
}

/// A schema as an IPC message (the prepared statement's schemas).
fn schema_bytes(schema: &Schema) -> Result<prost::bytes::Bytes, Status> {
    let IpcMessage(bytes) =
        IpcMessage::try_from(SchemaAsIpc::new(schema, &IpcWriteOptions::default()))
            .map_err(|e| Status::internal(format!("cannot encode a schema: {e}")))?;
    Ok(bytes)
}

fn read_only(what: &str) -> Status {
    Status::unimplemented(format!(
        "[0A000] {what} is not supported: Sluice serves the lake read-only over Flight SQL \
         (tables are written by `sluice run`); send queries"
    ))
}

#[tonic::async_trait]
impl FlightSqlService for SluiceFlightSql {
    type FlightService = SluiceFlightSql;

    /// No authentication yet: every handshake succeeds, so clients that always shake hands (JDBC
    /// with a user name) connect.
    async fn do_handshake(
        &self,
        request: Request<Streaming<HandshakeRequest>>,
    ) -> Result<
        Response<Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>>,
        Status,
    > {
        let response = HandshakeResponse {
            protocol_version: 0,
            payload: prost::bytes::Bytes::new(),
        };
        // The interceptor has checked the credentials. A client that signed in with a user name
        // and token (ADBC's username/password) gets the token back as the bearer header it sends
        // from then on.
        let bearer = auth::basic_token(request.metadata());
        let mut response = Response::new(Box::pin(futures::stream::once(async { Ok(response) }))
            as Pin<Box<dyn Stream<Item = Result<HandshakeResponse, Status>> + Send>>);
        if let Some(token) = bearer {
            let value = format!("Bearer {token}")
                .parse()
                .map_err(|_| Status::unauthenticated("the token is not a valid header value"))?;
            response.metadata_mut().insert("authorization", value);
        }
        Ok(response)
    }

    async fn get_flight_info_statement(
        &self,
        query: CommandStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let plan = self.plan(&request, &query.query).await?;
        let ticket = TicketStatementQuery {
            statement_handle: query.query.into_bytes().into(),
        };
        info(
            &result_schema(&plan),
            ticket.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_statement(
        &self,
        ticket: TicketStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let sql = std::str::from_utf8(&ticket.statement_handle)
            .map_err(|_| Status::invalid_argument("the statement ticket is not UTF-8 SQL"))?;
        self.run(&request, sql, None).await
    }

    async fn do_action_create_prepared_statement(
        &self,
        query: ActionCreatePreparedStatementRequest,
        request: Request<Action>,
    ) -> Result<ActionCreatePreparedStatementResult, Status> {
        let plan = self.plan(&request, &query.query).await?;
        let dataset_schema = schema_bytes(&result_schema(&plan))?;
        let parameter_schema = schema_bytes(&parameter_schema(&plan)?)?;
        let handle = self.prepared.create(query.query);
        Ok(ActionCreatePreparedStatementResult {
            prepared_statement_handle: handle.into(),
            dataset_schema,
            parameter_schema,
        })
    }

    async fn do_put_prepared_statement_query(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<PeekableFlightDataStream>,
    ) -> Result<DoPutPreparedStatementResult, Status> {
        let handle = query.prepared_statement_handle;
        // Fails early for an unknown handle, before reading the parameters.
        self.prepared.get(&handle)?;
        let mut batches = FlightRecordBatchStream::new_from_flight_data(
            request.into_inner().map_err(ArrowFlightError::from),
        );
        let mut bound = Vec::new();
        let mut rows = 0;
        while let Some(batch) = batches.next().await {
            let batch = batch.map_err(Status::from)?;
            rows += batch.num_rows();
            if rows > MAX_BOUND_ROWS {
                return Err(Status::invalid_argument(format!(
                    "[22023] more than {MAX_BOUND_ROWS} rows of parameters; bind one row to a query"
                )));
            }
            if batch.num_rows() > 0 {
                bound.push(batch);
            }
        }
        match bound.as_slice() {
            [] => {}
            [one] => self.prepared.bind(&handle, bound_values(one)?)?,
            _ => {
                return Err(Status::invalid_argument(format!(
                    "[22023] bind one row of parameters to a query (got {rows}); run the \
                     statement once per row"
                )));
            }
        }
        Ok(DoPutPreparedStatementResult {
            prepared_statement_handle: Some(handle),
        })
    }

    async fn get_flight_info_prepared_statement(
        &self,
        cmd: CommandPreparedStatementQuery,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let prepared = self.prepared.get(&cmd.prepared_statement_handle)?;
        let plan = self.plan(&request, &prepared.sql).await?;
        info(
            &result_schema(&plan),
            cmd.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_prepared_statement(
        &self,
        query: CommandPreparedStatementQuery,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let prepared = self.prepared.get(&query.prepared_statement_handle)?;
        self.run(&request, &prepared.sql, prepared.params).await
    }

    async fn do_action_close_prepared_statement(
        &self,
        query: ActionClosePreparedStatementRequest,
        _request: Request<Action>,
    ) -> Result<(), Status> {
        self.prepared.close(&query.prepared_statement_handle)
    }

    async fn get_flight_info_catalogs(
        &self,
        query: CommandGetCatalogs,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_catalogs(
        &self,
        query: CommandGetCatalogs,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        Ok(Response::new(encode_batch(metadata::catalogs(query)?)))
    }

    async fn get_flight_info_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_schemas(
        &self,
        query: CommandGetDbSchemas,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.path.session(principal_of(&request).as_ref())?;
        let batch = metadata::db_schemas(&session, query)?;
        Ok(Response::new(encode_batch(batch)))
    }

    async fn get_flight_info_tables(
        &self,
        query: CommandGetTables,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder().schema();
        info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_tables(
        &self,
        query: CommandGetTables,
        request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let session = self.path.session(principal_of(&request).as_ref())?;
        let batch = metadata::tables(&session, query).await?;
        Ok(Response::new(encode_batch(batch)))
    }

    async fn get_flight_info_table_types(
        &self,
        query: CommandGetTableTypes,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.into_builder().schema();
        info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_table_types(
        &self,
        _query: CommandGetTableTypes,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        Ok(Response::new(encode_batch(metadata::table_types()?)))
    }

    async fn get_flight_info_sql_info(
        &self,
        query: CommandGetSqlInfo,
        request: Request<FlightDescriptor>,
    ) -> Result<Response<FlightInfo>, Status> {
        let schema = query.clone().into_builder(metadata::sql_info()?).schema();
        info(
            &schema,
            query.as_any().encode_to_vec(),
            request.into_inner(),
        )
    }

    async fn do_get_sql_info(
        &self,
        query: CommandGetSqlInfo,
        _request: Request<Ticket>,
    ) -> Result<Response<DoGetStream>, Status> {
        let batch = query
            .into_builder(metadata::sql_info()?)
            .build()
            .map_err(|e| Status::internal(format!("cannot build the server information: {e}")))?;
        Ok(Response::new(encode_batch(batch)))
    }

    async fn do_put_statement_update(
        &self,
        _ticket: CommandStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only("executing an update"))
    }

    async fn do_put_prepared_statement_update(
        &self,
        _query: CommandPreparedStatementUpdate,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only("executing a prepared update"))
    }

    async fn do_put_statement_ingest(
        &self,
        _ticket: CommandStatementIngest,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(read_only("bulk ingestion"))
    }

    async fn do_put_substrait_plan(
        &self,
        _query: CommandStatementSubstraitPlan,
        _request: Request<PeekableFlightDataStream>,
    ) -> Result<i64, Status> {
        Err(Status::unimplemented(
            "[0A000] Substrait plans are not supported; send SQL",
        ))
    }

    async fn register_sql_info(&self, _id: i32, _result: &SqlInfo) {}
}
