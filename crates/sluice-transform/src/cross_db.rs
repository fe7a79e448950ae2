//! dbt's cross-database macros (`dbt.dateadd`, `dbt.datediff`, `dbt.type_string`, …) and the most used
//! `dbt_utils` macros that need no warehouse (`generate_surrogate_key`, `dateadd`, …), written for
//! DataFusion, so that projects calling them run without the package.

use std::sync::Arc;

use minijinja::value::{Object, Value};
use minijinja::{Error, ErrorKind, State};

/// The macros `dbt.` offers here.
pub const DBT_MACROS: &[&str] = &[
    "dateadd",
    "datediff",
    "date_trunc",
    "safe_cast",
    "cast",
    "concat",
    "hash",
    "split_part",
    "listagg",
    "string_literal",
    "position",
    "length",
    "replace",
    "right",
    "escape_single_quotes",
    "current_timestamp",
    "type_string",
    "type_int",
    "type_bigint",
    "type_float",
    "type_numeric",
    "type_boolean",
    "type_timestamp",
];

/// The `dbt_utils` macros offered here (besides the `dbt.` ones it re-exports).
pub const DBT_UTILS_MACROS: &[&str] = &["generate_surrogate_key", "surrogate_key"];

/// The `dbt` / `dbt_utils` namespace object.
#[derive(Debug)]
pub(crate) struct CrossDb {
    /// `dbt_utils` also offers the surrogate key macros.
    pub utils: bool,
}

fn text(v: &Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

fn arg<'a>(args: &'a [Value], i: usize, method: &str, name: &str) -> Result<&'a Value, Error> {
    args.get(i).ok_or_else(|| {
        Error::new(
            ErrorKind::MissingArgument,
            format!("{method}() needs `{name}` (argument {})", i + 1),
        )
    })
}

/// `datediff` in DataFusion for one date part.
fn datediff(first: &str, second: &str, part: &str) -> Result<String, Error> {
    let (a, b) = (
        format!("cast({first} as timestamp)"),
        format!("cast({second} as timestamp)"),
    );
    let epoch =
        |secs: u64| format!("cast(floor(date_part('epoch', {b} - {a}) / {secs}) as bigint)");
    Ok(match part.to_ascii_lowercase().as_str() {
        "day" | "days" => format!("(cast({second} as date) - cast({first} as date))"),
        "week" | "weeks" => {
            format!("cast(floor((cast({second} as date) - cast({first} as date)) / 7) as bigint)")
        }
        "hour" | "hours" => epoch(3600),
        "minute" | "minutes" => epoch(60),
        "second" | "seconds" => epoch(1),
        "month" | "months" => format!(
            "((date_part('year', {b}) - date_part('year', {a})) * 12 + (date_part('month', {b}) - date_part('month', {a})))"
        ),
        "quarter" | "quarters" => format!(
            "((date_part('year', {b}) - date_part('year', {a})) * 4 + (date_part('quarter', {b}) - date_part('quarter', {a})))"
        ),
        "year" | "years" => format!("(date_part('year', {b}) - date_part('year', {a}))"),
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("datediff: date part `{other}` is not supported"),
            ));
        }
    })
}

impl Object for CrossDb {
    fn call_method(
        self: &Arc<Self>,
        _state: &mut State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let a = |i: usize, name: &str| arg(args, i, method, name).map(text);
        let sql = match method {
            "dateadd" => format!(
                "({} + ({}) * interval '1 {}')",
                a(2, "from_date_or_timestamp")?,
                a(1, "interval")?,
                a(0, "datepart")?.trim_matches(['\'', '"'])
            ),
            "datediff" => datediff(
                &a(0, "first_date")?,
                &a(1, "second_date")?,
                a(2, "datepart")?.trim_matches(['\'', '"']),
            )?,
            "date_trunc" => format!(
                "date_trunc('{}', {})",
                a(0, "datepart")?.trim_matches(['\'', '"']),
                a(1, "date")?
            ),
            "safe_cast" => format!("try_cast({} as {})", a(0, "field")?, a(1, "type")?),
            "cast" => format!("cast({} as {})", a(0, "field")?, a(1, "type")?),
            "concat" => {
                let fields: Vec<String> = match arg(args, 0, method, "fields")?.try_iter() {
                    Ok(it) => it.map(|v| text(&v)).collect(),
                    Err(_) => vec![a(0, "fields")?],
                };
                format!("concat({})", fields.join(", "))
            }
            "hash" => format!("md5(cast({} as varchar))", a(0, "field")?),
            "split_part" => format!(
                "split_part({}, {}, {})",
                a(0, "string_text")?,
                a(1, "delimiter_text")?,
                a(2, "part_number")?
            ),
            "listagg" => {
                let delim = args.get(1).map(text).unwrap_or_else(|| "','".into());
                match args.get(2).filter(|v| !v.is_none() && !v.is_undefined()) {
                    Some(order) => format!(
                        "string_agg({}, {delim} order by {})",
                        a(0, "measure")?,
                        text(order)
                    ),
                    None => format!("string_agg({}, {delim})", a(0, "measure")?),
                }
            }
            "string_literal" => format!("'{}'", a(0, "value")?.replace('\'', "''")),
            "escape_single_quotes" => a(0, "expression")?.replace('\'', "''"),
            "position" => format!(
                "strpos({}, {})",
                a(1, "string_text")?,
                a(0, "substring_text")?
            ),
            "length" => format!("length({})", a(0, "expression")?),
            "replace" => format!(
                "replace({}, {}, {})",
                a(0, "field")?,
                a(1, "old_chars")?,
                a(2, "new_chars")?
            ),
            "right" => format!(
                "right({}, {})",
                a(0, "string_text")?,
                a(1, "length_expression")?
            ),
            "current_timestamp" => "now()".into(),
            "type_string" => "varchar".into(),
            "type_int" | "type_bigint" => "bigint".into(),
            "type_float" => "double".into(),
            "type_numeric" => "decimal(28, 6)".into(),
            "type_boolean" => "boolean".into(),
            "type_timestamp" => "timestamp".into(),
            "generate_surrogate_key" | "surrogate_key" if self.utils => {
                let fields: Vec<String> = match arg(args, 0, method, "field_list")?.try_iter() {
                    Ok(it) if arg(args, 0, method, "field_list")?.as_str().is_none() => {
                        it.map(|v| text(&v)).collect()
                    }
                    _ => args.iter().map(text).collect(),
                };
                let parts: Vec<String> = fields
                    .iter()
                    .map(|f| {
                        format!("coalesce(cast({f} as varchar), '_dbt_utils_surrogate_key_null_')")
                    })
                    .collect();
                format!("md5(concat_ws('-', {}))", parts.join(", "))
            }
            other => {
                return Err(Error::new(
                    ErrorKind::UnknownMethod,
                    format!(
                        "`{}.{other}` is not available in Sluice",
                        if self.utils { "dbt_utils" } else { "dbt" }
                    ),
                ));
            }
        };
        Ok(Value::from_safe_string(sql))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minijinja::Environment;

    fn render(src: &str) -> String {
        let mut env = Environment::new();
        env.add_global("dbt", Value::from_object(CrossDb { utils: false }));
        env.add_global("dbt_utils", Value::from_object(CrossDb { utils: true }));
        env.render_str(src, ()).unwrap()
    }

    #[test]
    fn renders_datafusion_sql() {
        assert_eq!(
            render("{{ dbt.dateadd('day', 7, 'order_date') }}"),
            "(order_date + (7) * interval '1 day')"
        );
        assert_eq!(
            render("{{ dbt.datediff('a', 'b', 'day') }}"),
            "(cast(b as date) - cast(a as date))"
        );
        assert_eq!(render("{{ dbt.type_string() }}"), "varchar");
        assert_eq!(
            render("{{ dbt.safe_cast('x', dbt.type_int()) }}"),
            "try_cast(x as bigint)"
        );
        assert_eq!(
            render("{{ dbt_utils.generate_surrogate_key(['a', 'b']) }}"),
            "md5(concat_ws('-', coalesce(cast(a as varchar), '_dbt_utils_surrogate_key_null_'), coalesce(cast(b as varchar), '_dbt_utils_surrogate_key_null_')))"
        );
        assert_eq!(
            render("{{ dbt.concat(['a', \"'-'\", 'b']) }}"),
            "concat(a, '-', b)"
        );
    }
}
