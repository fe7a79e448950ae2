//! Tests of the Flight SQL endpoint with arrow-flight's own client against an in-process server:
//! statements, prepared statements with parameters, the listings, server information, the status
//! codes of refused and failing requests, time travel and shutdown.

use arrow::array::{
    Array, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, UnionArray,
};
use arrow::datatypes::{DataType, Field, Schema};
use arrow_flight::flight_service_client::FlightServiceClient;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    CommandGetDbSchemas, CommandGetTables, CommandPreparedStatementQuery, CommandStatementQuery,
    ProstMessageExt, SqlInfo,
};
use arrow_flight::{FlightDescriptor, FlightInfo, Ticket};
use futures::TryStreamExt;
use prost::Message;
use std::sync::Arc;
use tonic::Code;
use tonic::transport::Channel;

use super::*;
use crate::test_support::{SALES_ROWS, Served};

async fn start(served: &Served) -> FlightHandle {
    FlightServer::bind(&served.state.engine, "127.0.0.1:0")
        .await
        .unwrap()
        .spawn()
}

async fn channel(addr: SocketAddr) -> Channel {
    tonic::transport::Endpoint::new(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .unwrap()
}

async fn client(addr: SocketAddr) -> FlightSqlServiceClient<Channel> {
    FlightSqlServiceClient::new(channel(addr).await)
}

/// The plain Flight client, whose errors keep their gRPC status.
async fn raw_client(addr: SocketAddr) -> FlightServiceClient<Channel> {
    FlightServiceClient::new(channel(addr).await)
}

async fn fetch(client: &mut FlightSqlServiceClient<Channel>, info: FlightInfo) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("an endpoint with a ticket");
        let stream = client.do_get(ticket).await.unwrap();
        batches.extend(stream.try_collect::<Vec<_>>().await.unwrap());
    }
    batches
}

async fn query(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<RecordBatch> {
    let info = client.execute(sql.to_string(), None).await.unwrap();
    fetch(client, info).await
}

fn rows(batches: &[RecordBatch]) -> usize {
    batches.iter().map(RecordBatch::num_rows).sum()
}

/// The status a statement's `GetFlightInfo` fails with.
async fn statement_status(addr: SocketAddr, sql: &str) -> tonic::Status {
    let mut raw = raw_client(addr).await;
    let cmd = CommandStatementQuery {
        query: sql.to_string(),
        transaction_id: None,
    };
    let descriptor = FlightDescriptor::new_cmd(cmd.as_any().encode_to_vec());
    match raw.get_flight_info(descriptor).await {
        Ok(_) => panic!("`{sql}` was accepted"),
        Err(status) => status,
    }
}

/// A text column's values (lake tables read as `Utf8View`, listings are `Utf8`).
fn strings(batch: &RecordBatch, column: &str) -> Vec<String> {
    let column = batch.column_by_name(column).unwrap();
    let text = arrow::compute::cast(column, &DataType::Utf8).unwrap();
    let a = text.as_any().downcast_ref::<StringArray>().unwrap();
    (0..a.len()).map(|i| a.value(i).to_string()).collect()
}

#[tokio::test]
async fn statements_stream_the_rows_the_engine_returns() {
    let served = Served::new().await;
    let server = start(&served).await;
    let mut c = client(server.local_addr()).await;

    let batches = query(&mut c, "select * from bronze.files__sales").await;
    assert_eq!(rows(&batches), SALES_ROWS as usize);
    assert_eq!(batches[0].schema().field(0).name(), "sale_id");

    let batches = query(
        &mut c,
        "select region, revenue from gold.by_region where region is not null order by revenue",
    )
    .await;
    assert_eq!(rows(&batches), 2);
    // The engine reads text as Utf8View; clients get plain Utf8, in the data and in the FlightInfo.
    assert_eq!(batches[0].schema().field(0).data_type(), &DataType::Utf8);
    let info = c
        .execute("select region from gold.by_region".into(), None)
        .await
        .unwrap();
    let announced = info.try_decode_schema().unwrap();
    assert_eq!(announced.field(0).data_type(), &DataType::Utf8);
    let revenue = batches[0]
        .column(1)
        .as_any()
        .downcast_ref::<Float64Array>()
        .unwrap();
    assert_eq!(revenue.values(), &[15.0, 20.0]);

    // An empty result still carries its schema.
    let info = c
        .execute(
            "select sale_id from bronze.files__sales where false".into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(info.clone().try_decode_schema().unwrap().fields().len(), 1);
    assert_eq!(rows(&fetch(&mut c, info).await), 0);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn prepared_statements_bind_parameters() {
    let served = Served::new().await;
    let server = start(&served).await;
    let mut c = client(server.local_addr()).await;

    let mut stmt = c
        .prepare(
            "select region, revenue from gold.by_region where revenue > $1 order by revenue".into(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(stmt.dataset_schema().unwrap().fields().len(), 2);
    assert_eq!(stmt.parameter_schema().unwrap().field(0).name(), "$1");
    // A Python-style int for a double column: cast to the parameter's type.
    let params = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, false)])),
        vec![Arc::new(Int64Array::from(vec![10]))],
    )
    .unwrap();
    stmt.set_parameters(params).unwrap();
    let info = stmt.execute().await.unwrap();
    let batches = fetch(&mut c, info).await;
    assert_eq!(rows(&batches), 2);
    assert_eq!(strings(&batches[0], "region"), ["north", "south"]);

    let handle = {
        let info = stmt.execute().await.unwrap();
        let ticket = info.endpoint[0].ticket.clone().unwrap();
        let any = arrow_flight::sql::Any::decode(ticket.ticket).unwrap();
        any.unpack::<CommandPreparedStatementQuery>()
            .unwrap()
            .unwrap()
            .prepared_statement_handle
    };
    stmt.close().await.unwrap();
    // A closed statement is gone.
    let gone = CommandPreparedStatementQuery {
        prepared_statement_handle: handle,
    };
    let mut raw = raw_client(server.local_addr()).await;
    let err = raw
        .do_get(Ticket::new(gone.as_any().encode_to_vec()))
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "{err:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn listings_show_the_published_lake() {
    let served = Served::new().await;
    let server = start(&served).await;
    let mut c = client(server.local_addr()).await;

    let info = c.get_catalogs().await.unwrap();
    let batches = fetch(&mut c, info).await;
    assert_eq!(strings(&batches[0], "catalog_name"), ["sluice"]);

    let info = c
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: None,
        })
        .await
        .unwrap();
    let schemas = strings(&fetch(&mut c, info).await[0], "db_schema_name");
    assert!(schemas.contains(&"gold".to_string()), "{schemas:?}");
    assert!(schemas.contains(&"bronze".to_string()), "{schemas:?}");
    assert!(!schemas.iter().any(|s| s == "staging"), "{schemas:?}");

    let info = c
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: Some("gold".into()),
            table_name_filter_pattern: Some("by_%".into()),
            table_types: vec![],
            include_schema: true,
        })
        .await
        .unwrap();
    let batches = fetch(&mut c, info).await;
    assert_eq!(strings(&batches[0], "table_name"), ["by_region"]);
    assert_eq!(strings(&batches[0], "table_type"), ["TABLE"]);
    let ipc = batches[0]
        .column_by_name("table_schema")
        .unwrap()
        .as_any()
        .downcast_ref::<arrow::array::BinaryArray>()
        .unwrap()
        .value(0)
        .to_vec();
    let schema = Schema::try_from(arrow_flight::IpcMessage(ipc.into())).unwrap();
    assert_eq!(schema.field(1).name(), "revenue");

    let info = c.get_table_types().await.unwrap();
    let types = strings(&fetch(&mut c, info).await[0], "table_type");
    assert_eq!(types, ["TABLE", "VIEW"]);
    server.stop().await.unwrap();
}

#[tokio::test]
async fn sql_info_says_read_only() {
    let served = Served::new().await;
    let server = start(&served).await;
    let mut c = client(server.local_addr()).await;
    let info = c
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerReadOnly,
            SqlInfo::FlightSqlServerName,
        ])
        .await
        .unwrap();
    let batches = fetch(&mut c, info).await;
    let batch = &batches[0];
    assert_eq!(batch.num_rows(), 2);
    let names = batch
        .column(0)
        .as_any()
        .downcast_ref::<arrow::array::UInt32Array>()
        .unwrap();
    let values = batch
        .column(1)
        .as_any()
        .downcast_ref::<UnionArray>()
        .unwrap();
    for i in 0..batch.num_rows() {
        let value = values.value(i);
        match names.value(i) {
            n if n == SqlInfo::FlightSqlServerReadOnly as u32 => {
                let b = value.as_any().downcast_ref::<BooleanArray>().unwrap();
                assert!(b.value(0));
            }
            n if n == SqlInfo::FlightSqlServerName as u32 => {
                let s = value.as_any().downcast_ref::<StringArray>().unwrap();
                assert_eq!(s.value(0), "Sluice");
            }
            other => panic!("unexpected info {other}"),
        }
    }
    server.stop().await.unwrap();
}

#[tokio::test]
async fn refusals_and_failures_have_their_codes() {
    let served = Served::new().await;
    let server = start(&served).await;
    let addr = server.local_addr();

    for sql in [
        "insert into gold.by_region values ('x', 1.0)",
        "drop table gold.by_region",
        "create table gold.t as select 1",
        "set datafusion.execution.batch_size = 1",
    ] {
        let s = statement_status(addr, sql).await;
        assert_eq!(s.code(), Code::PermissionDenied, "{sql}: {s:?}");
        assert!(s.message().contains("read-only"), "{sql}: {}", s.message());
    }
    let s = statement_status(addr, "select * from gold.nope").await;
    assert_eq!(s.code(), Code::NotFound, "{s:?}");
    assert!(s.message().starts_with("[42P01]"), "{}", s.message());
    let s = statement_status(addr, "select nope from gold.by_region").await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    let s = statement_status(addr, "selec 1").await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    let s = statement_status(addr, "select 1; select 2").await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    let s = statement_status(addr, "begin").await;
    assert_eq!(s.code(), Code::Unimplemented, "{s:?}");

    let mut c = client(addr).await;
    let err = c
        .execute_update("delete from gold.by_region".into(), None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("read-only"), "{err}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn time_travel_reads_an_earlier_version() {
    let served = Served::new().await;
    let server = start(&served).await;
    let mut c = client(server.local_addr()).await;
    let batches = query(&mut c, "select region from gold.by_region VERSION AS OF 0").await;
    assert_eq!(rows(&batches), 3);
    let s = statement_status(
        server.local_addr(),
        "select region from gold.by_region VERSION AS OF 9",
    )
    .await;
    assert_eq!(s.code(), Code::InvalidArgument, "{s:?}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn a_taken_address_is_a_clear_error_and_stop_frees_the_port() {
    let served = Served::new().await;
    let first = start(&served).await;
    let addr = first.local_addr().to_string();
    let err = FlightServer::bind(&served.state.engine, &addr)
        .await
        .unwrap_err();
    assert!(matches!(err, FlightError::Bind { .. }), "{err}");
    assert!(err.to_string().contains(&addr), "{err}");
    first.stop().await.unwrap();
    // Stopped: the address can be bound again.
    let again = FlightServer::bind(&served.state.engine, &addr)
        .await
        .unwrap();
    assert_eq!(again.local_addr().to_string(), addr);
}

#[tokio::test]
async fn with_authentication_every_call_needs_a_token() {
    use crate::auth::{Role, create_token, revoke_token};
    let served = Served::new().await;
    let store = (*served.state.state).clone();
    let token = create_token(&store, "ana", Role::Reader, None, chrono::Utc::now()).unwrap();
    let server = FlightServer::bind(&served.state.engine, "127.0.0.1:0")
        .await
        .unwrap()
        .with_auth(store.clone())
        .spawn();
    let addr = server.local_addr();

    // No credentials, a wrong token, another user's name: UNAUTHENTICATED.
    let status = statement_status(addr, "SELECT 1").await;
    assert_eq!(status.code(), Code::Unauthenticated, "{status}");
    let mut wrong = client(addr).await;
    wrong.set_token("slu_not_a_token".to_string());
    let err = wrong.execute("SELECT 1".into(), None).await.unwrap_err();
    assert!(err.to_string().contains("invalid token"), "{err}");
    let mut other = client(addr).await;
    assert!(other.handshake("bo", &token.secret).await.is_err());

    // A bearer token works, and so does a handshake with the user name and token.
    let mut bearer = client(addr).await;
    bearer.set_token(token.secret.clone());
    let rows: usize = query(&mut bearer, "SELECT 1 AS one")
        .await
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(rows, 1);
    let mut signed_in = client(addr).await;
    signed_in.handshake("ana", &token.secret).await.unwrap();
    let rows: usize = query(&mut signed_in, "SELECT 1 AS one")
        .await
        .iter()
        .map(RecordBatch::num_rows)
        .sum();
    assert_eq!(rows, 1);

    // A revoked token stops working at once.
    assert!(revoke_token(&store, &token.record.id).unwrap());
    let err = bearer.execute("SELECT 1".into(), None).await.unwrap_err();
    assert!(err.to_string().contains("revoked"), "{err}");
    server.stop().await.unwrap();
}

#[tokio::test]
async fn access_yml_holds_over_flight_queries_and_listings() {
    let (served, ana, _, _) = crate::access::tests::governed().await;
    let server = FlightServer::bind(&served.state.engine, "127.0.0.1:0")
        .await
        .unwrap()
        .with_auth((*served.state.state).clone())
        .with_access(served.state.access.clone(), None)
        .spawn();
    let addr = server.local_addr();
    let mut c = client(addr).await;
    c.set_token(ana);

    // The row filter and the mask: only north, hashed.
    let batches = query(
        &mut c,
        "select count(*) as n, min(region) as r from bronze.files__sales",
    )
    .await;
    let n = batches[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    let north = served
        .state
        .engine
        .query("select count(*) from bronze.files__sales where region = 'north'")
        .await
        .unwrap()[0]
        .column(0)
        .as_any()
        .downcast_ref::<Int64Array>()
        .unwrap()
        .value(0);
    assert_eq!(n, north);
    assert_eq!(
        strings(&batches[0], "r"),
        [crate::access::mask::hmac_hex(
            crate::access::tests::KEY,
            "north"
        )]
    );

    // An ungranted table: PERMISSION_DENIED, and absent from GetTables.
    let err = c
        .execute("select * from gold.by_region".into(), None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("permission denied for table gold.by_region"),
        "{err}"
    );
    let info = c
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: None,
            table_name_filter_pattern: None,
            table_types: vec![],
            include_schema: false,
        })
        .await
        .unwrap();
    let batches = fetch(&mut c, info).await;
    let names: Vec<String> = batches
        .iter()
        .flat_map(|b| strings(b, "table_name"))
        .collect();
    assert_eq!(names, ["files__sales"]);
    server.stop().await.unwrap();
}
