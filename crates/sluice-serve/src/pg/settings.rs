//! Answers to `SHOW <setting>` for the settings drivers and BI tools ask about that the library's
//! `SET`/`SHOW` hook does not know (it answers those with an empty `unsupported_show_statement`).
//!
//! Metabase reads `SHOW timezone` to pick the report time zone; drivers and tools check
//! `transaction_read_only` before offering to edit data. The answers describe this endpoint as it is:
//! UTF-8, timestamps sent in UTC unless the client sets a time zone, and read-only.

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Schema};
use async_trait::async_trait;
use datafusion_postgres::QueryHook;
use datafusion_postgres::hooks::HookClient;
use datafusion_postgres::pgwire::api::ClientInfo;
use datafusion_postgres::pgwire::api::Type;
use datafusion_postgres::pgwire::api::results::{
    DataRowEncoder, FieldFormat, FieldInfo, QueryResponse, Response,
};
use datafusion_postgres::pgwire::error::{PgWireError, PgWireResult};
use sluice_engine::SessionContext;
use sluice_engine::plan::{EmptyRelation, LogicalPlan};
use sluice_engine::sql::sqlparser::ast::Statement;
use sluice_engine::{DFSchema, ParamValues};

/// The value of `setting` (lower case) on this endpoint, if this hook answers it. The time zone is
/// the one the client set (`SET TIME ZONE`), else UTC.
pub fn setting_value(setting: &str, client_time_zone: Option<&str>) -> Option<String> {
    let value = match setting {
        "server_version" => return Some(super::functions::server_version()),
        // Where unqualified names resolve, whatever a client sets (`current_schema()` agrees).
        "search_path" => return Some(format!("\"$user\", {}", super::functions::DEFAULT_SCHEMA)),
        "server_version_num" => super::functions::PG_VERSION_NUM,
        "timezone" => client_time_zone.unwrap_or("UTC"),
        "transaction_read_only" | "default_transaction_read_only" => "on",
        "standard_conforming_strings" | "integer_datetimes" => "on",
        "client_encoding" | "server_encoding" => "UTF8",
        "max_identifier_length" => "63",
        "is_superuser" => "off",
        _ => return None,
    };
    Some(value.to_string())
}

/// The setting a `SHOW` statement asks for, when it is one [`setting_value`] answers.
fn shown_setting(statement: &Statement) -> Option<String> {
    let Statement::ShowVariable { variable } = statement else {
        return None;
    };
    let [name] = variable.as_slice() else {
        return None;
    };
    let name = name.value.to_ascii_lowercase();
    setting_value(&name, None).map(|_| name)
}

fn answer(name: &str, value: String) -> PgWireResult<Response> {
    let fields = Arc::new(vec![FieldInfo::new(
        name.to_string(),
        None,
        None,
        Type::VARCHAR,
        FieldFormat::Text,
    )]);
    let mut encoder = DataRowEncoder::new(fields.clone());
    encoder.encode_field(&Some(value))?;
    let row = encoder.take_row();
    Ok(Response::Query(QueryResponse::new(
        fields,
        futures::stream::once(async move { Ok(row) }),
    )))
}

/// Answers `SHOW` of the settings in [`setting_value`]; install it before the library's `SET`/`SHOW`
/// hook.
#[derive(Debug, Default, Clone, Copy)]
pub struct SettingsHook;

impl SettingsHook {
    fn respond(statement: &Statement, client: &dyn HookClient) -> Option<PgWireResult<Response>> {
        let name = shown_setting(statement)?;
        let tz = client.metadata().get("timezone").map(String::as_str);
        let value = setting_value(&name, tz)?;
        Some(answer(&name, value))
    }
}

#[async_trait]
impl QueryHook for SettingsHook {
    async fn handle_simple_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::respond(statement, client)
    }

    async fn handle_extended_parse_query(
        &self,
        statement: &Statement,
        _session_context: &SessionContext,
        _client: &(dyn ClientInfo + Send + Sync),
    ) -> Option<PgWireResult<LogicalPlan>> {
        let name = shown_setting(statement)?;
        let schema = Schema::new(vec![Field::new(name, DataType::Utf8, false)]);
        Some(
            DFSchema::try_from(schema)
                .map(|schema| {
                    LogicalPlan::EmptyRelation(EmptyRelation {
                        produce_one_row: true,
                        schema: Arc::new(schema),
                    })
                })
                .map_err(|e| PgWireError::ApiError(Box::new(e))),
        )
    }

    async fn handle_extended_query(
        &self,
        statement: &Statement,
        _logical_plan: &LogicalPlan,
        _params: &ParamValues,
        _session_context: &SessionContext,
        client: &mut dyn HookClient,
    ) -> Option<PgWireResult<Response>> {
        Self::respond(statement, client)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_only_and_time_zone_are_answered() {
        assert_eq!(
            setting_value("transaction_read_only", None).as_deref(),
            Some("on")
        );
        assert_eq!(setting_value("timezone", None).as_deref(), Some("UTC"));
        assert_eq!(
            setting_value("timezone", Some("Europe/Paris")).as_deref(),
            Some("Europe/Paris")
        );
        assert_eq!(setting_value("work_mem", None), None);
        assert_eq!(
            setting_value("server_version_num", None).as_deref(),
            Some("160000")
        );
    }
}
