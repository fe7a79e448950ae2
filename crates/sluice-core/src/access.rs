//! `access.yml`: who may read what, masked how, filtered how, and who may operate and administer.
//!
//! The file sits next to `sluice.yml` and is reviewed in git like the rest of the project. Without
//! it, the built-in roles keep their meaning (`reader` reads everything, `operator` also operates,
//! `admin` also administers) and nothing is masked or filtered.
//!
//! ```yaml
//! masks:                              # per table; for every role without `unmask`
//!   silver.customers:
//!     email: hash                     # hash (HMAC with the PII key) | null | redact
//! users:                              # attributes row filters can use
//!   ana: {region: EU}
//! roles:
//!   analyst:
//!     read: [gold, silver.orders, "silver.dim_*"]   # a layer, a table, a pattern
//!     columns:                                      # tables readable in part
//!       silver.customers: [id, region, email]
//!     row_filters:
//!       silver.customers: "region = {{ user.region }}"
//!     unmask: false
//!     operate: false                  # run, cancel, retry, backfill, export
//!     administer: false               # tokens, grants, the audit log
//! ```
//!
//! Tables are named as SQL sees them (`layer.table`; bronze tables are `bronze.<source>__<table>`).
//! [`load_access`] checks every role, table and column it can against the project and reports each
//! problem with the file and line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::ConfigError;
use crate::model::ModelFile;
use crate::source::SourceDecl;
use crate::yaml::{Spanned, load_typed, read_text};

/// The file name, in the project folder.
pub const ACCESS_FILE: &str = "access.yml";

/// The layers a grant can name.
pub const LAYERS: [&str; 4] = ["bronze", "silver", "gold", "quarantine"];

/// The roles every project has; `access.yml` may redefine them.
pub const BUILT_IN_ROLES: [&str; 3] = ["reader", "operator", "admin"];

/// How a masked column reads for a role without `unmask`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaskKind {
    /// HMAC-SHA-256 of the value under the project's PII key (64 hex digits): joins still work.
    Hash,
    /// Always NULL.
    Null,
    /// `[redacted]` for text, NULL for other types.
    Redact,
}

/// `access.yml` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AccessFile {
    #[serde(default)]
    masks: BTreeMap<String, Spanned<BTreeMap<String, MaskKind>>>,
    #[serde(default)]
    users: BTreeMap<String, Spanned<BTreeMap<String, String>>>,
    #[serde(default)]
    roles: BTreeMap<String, Spanned<RoleFile>>,
}

/// One role as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleFile {
    /// Layers (`silver`), patterns (`silver.*`, `gold.fct_*`, `*`) and tables (`silver.orders`).
    #[serde(default)]
    read: Vec<Spanned<String>>,
    /// Tables readable in part: only these columns.
    #[serde(default)]
    columns: BTreeMap<String, Spanned<Vec<String>>>,
    /// A SQL predicate per table; `{{ user.name }}`, `{{ user.role }}` and `{{ user.<attribute> }}`
    /// become SQL string literals.
    #[serde(default)]
    row_filters: BTreeMap<String, Spanned<String>>,
    #[serde(default)]
    unmask: bool,
    #[serde(default)]
    operate: bool,
    #[serde(default)]
    administer: bool,
}

/// One role's grants, resolved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RoleGrants {
    /// Read grants: `*`, a layer, `layer.*`, `layer.pattern*` or `layer.table`.
    pub read: Vec<String>,
    /// Tables readable in part, with their columns.
    pub columns: BTreeMap<String, BTreeSet<String>>,
    /// Row filter templates per table.
    pub row_filters: BTreeMap<String, String>,
    /// Sees masked columns in clear.
    pub unmask: bool,
    /// May run, cancel, retry, backfill and export.
    pub operate: bool,
    /// May manage tokens and grants and read the audit log.
    pub administer: bool,
}

impl RoleGrants {
    /// The built-in role `name`, if it is one.
    pub fn built_in(name: &str) -> Option<RoleGrants> {
        let all = || vec!["*".to_string()];
        match name {
            "reader" => Some(RoleGrants {
                read: all(),
                ..RoleGrants::default()
            }),
            "operator" => Some(RoleGrants {
                read: all(),
                operate: true,
                ..RoleGrants::default()
            }),
            "admin" => Some(RoleGrants {
                read: all(),
                unmask: true,
                operate: true,
                administer: true,
                ..RoleGrants::default()
            }),
            _ => None,
        }
    }
}

/// `access.yml`, resolved and checked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AccessConfig {
    /// The file it came from.
    #[serde(skip)]
    pub path: PathBuf,
    /// Masks per table (`layer.table`) and column.
    pub masks: BTreeMap<String, BTreeMap<String, MaskKind>>,
    /// Attributes per user.
    pub users: BTreeMap<String, BTreeMap<String, String>>,
    /// Every role: the built-in ones (unless redefined) and the file's.
    pub roles: BTreeMap<String, RoleGrants>,
}

impl AccessConfig {
    /// The grants of role `name`.
    pub fn role(&self, name: &str) -> Option<&RoleGrants> {
        self.roles.get(name)
    }
}

/// Whether `pattern` (`*` matches any run of characters) matches `text`.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == text;
    };
    let Some(mut tail) = text.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = rest.split('*').collect();
    for (i, part) in parts.iter().enumerate() {
        if i + 1 == parts.len() {
            return tail.len() >= part.len() && tail.ends_with(part);
        }
        match tail.find(part) {
            Some(at) => tail = &tail[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether a read grant (`*`, `silver`, `silver.*`, `gold.fct_*`, `silver.orders`) covers
/// `schema.table`.
pub fn grant_covers(grant: &str, schema: &str, table: &str) -> bool {
    if grant == "*" {
        return true;
    }
    match grant.split_once('.') {
        None => grant == schema,
        Some((s, t)) => s == schema && glob_match(t, table),
    }
}

/// The names inside `{{ ... }}` of a row filter template, in order; an error names a malformed one.
pub fn template_vars(template: &str) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| "a `{{` is not closed by `}}`".to_string())?;
        let name = after[..end].trim();
        let attr = name
            .strip_prefix("user.")
            .filter(|a| crate::source::is_valid_identifier(a))
            .ok_or_else(|| {
                format!(
                    "`{{{{ {name} }}}}`: expected `{{{{ user.name }}}}`, `{{{{ user.role }}}}` \
                     or `{{{{ user.<attribute> }}}}`"
                )
            })?;
        out.push(attr.to_string());
        rest = &after[end + 2..];
    }
    Ok(out)
}

/// The tables of the project as SQL names them, with their declared columns (empty when the
/// project does not declare them).
pub fn project_tables(
    models: &[ModelFile],
    sources: &[SourceDecl],
) -> BTreeMap<String, BTreeSet<String>> {
    let mut out = BTreeMap::new();
    for m in models {
        let cols = m
            .properties
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect();
        out.insert(format!("{}.{}", m.layer.as_str(), m.name), cols);
    }
    for s in sources {
        for t in &s.tables {
            out.insert(format!("bronze.{}__{}", s.name, t.name), BTreeSet::new());
        }
    }
    out
}

/// Loads `access.yml` of the project in `root` (None when there is none), checked against the
/// project's `tables` ([`project_tables`]); every problem is collected.
pub fn load_access(
    root: &Path,
    tables: &BTreeMap<String, BTreeSet<String>>,
) -> Result<Option<AccessConfig>, Vec<ConfigError>> {
    let path = root.join(ACCESS_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    let text = read_text(&path).map_err(|e| vec![e])?;
    let raw: AccessFile = if text.trim().is_empty() {
        AccessFile::default()
    } else {
        load_typed(&path, &text)?
    };
    resolve(&path, raw, tables).map(Some)
}

/// Parses `text` as the `access.yml` at `path` (for tests and tools).
pub fn parse_access(
    path: &Path,
    text: &str,
    tables: &BTreeMap<String, BTreeSet<String>>,
) -> Result<AccessConfig, Vec<ConfigError>> {
    let raw: AccessFile = load_typed(path, text)?;
    resolve(path, raw, tables)
}

struct Checker<'a> {
    path: &'a Path,
    tables: &'a BTreeMap<String, BTreeSet<String>>,
    errors: Vec<ConfigError>,
}

impl Checker<'_> {
    fn fail(&mut self, at: Option<crate::error::Position>, field: String, message: String) {
        self.errors
            .push(ConfigError::at(self.path, at, &field, message));
    }

    /// A table name (`layer.table`) that must exist; quarantine tables are not known ahead.
    fn table(&mut self, at: Option<crate::error::Position>, field: String, name: &str) -> bool {
        let Some((layer, _)) = name.split_once('.') else {
            self.fail(
                at,
                field,
                format!("`{name}` is not a table: write `layer.table`, like `silver.orders`"),
            );
            return false;
        };
        if self.tables.contains_key(name) || layer == "quarantine" {
            return true;
        }
        let hint = crate::graph::suggest(name, self.tables.keys().map(String::as_str))
            .map(|h| format!(" (did you mean `{h}`?)"))
            .unwrap_or_default();
        self.fail(
            at,
            field,
            format!("unknown table `{name}`{hint}; tables are named as in SQL, `layer.table`"),
        );
        false
    }

    /// Columns of `table` that must exist when the project declares its columns.
    fn columns<'c>(
        &mut self,
        at: Option<crate::error::Position>,
        field: &str,
        table: &str,
        columns: impl Iterator<Item = &'c String>,
    ) {
        let declared = self.tables.get(table).cloned().unwrap_or_default();
        for c in columns {
            if !declared.is_empty() && !declared.contains(c) {
                let hint = crate::graph::suggest(c, declared.iter().map(String::as_str))
                    .map(|h| format!(" (did you mean `{h}`?)"))
                    .unwrap_or_default();
                self.fail(
                    at,
                    field.to_string(),
                    format!("unknown column `{c}` of `{table}`{hint}"),
                );
            }
        }
    }
}

fn resolve(
    path: &Path,
    raw: AccessFile,
    tables: &BTreeMap<String, BTreeSet<String>>,
) -> Result<AccessConfig, Vec<ConfigError>> {
    let mut ck = Checker {
        path,
        tables,
        errors: Vec::new(),
    };
    let mut out = AccessConfig {
        path: path.to_path_buf(),
        ..AccessConfig::default()
    };
    for (table, cols) in raw.masks {
        let field = format!("masks.{table}");
        if ck.table(cols.position(), field.clone(), &table) {
            ck.columns(cols.position(), &field, &table, cols.value.keys());
        }
        out.masks.insert(table, cols.value);
    }
    for (user, attrs) in raw.users {
        let ok = !user.is_empty()
            && user
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '@'));
        if !ok {
            ck.fail(
                attrs.position(),
                format!("users.{user}"),
                "a user name is 1 to 63 letters, digits, `_`, `-`, `.` or `@`".into(),
            );
        }
        out.users.insert(user, attrs.value);
    }
    for name in BUILT_IN_ROLES {
        if let Some(g) = RoleGrants::built_in(name) {
            out.roles.insert(name.to_string(), g);
        }
    }
    for (name, role) in raw.roles {
        let at = role.position();
        if !crate::source::is_valid_identifier(&name) {
            ck.fail(
                at,
                format!("roles.{name}"),
                "a role name is letters, digits and `_`, starting with a letter".into(),
            );
        }
        let role = role.value;
        let mut grants = RoleGrants {
            unmask: role.unmask,
            operate: role.operate,
            administer: role.administer,
            ..RoleGrants::default()
        };
        for (i, g) in role.read.iter().enumerate() {
            let field = format!("roles.{name}.read[{i}]");
            let text = g.value.trim();
            let layer = text.split('.').next().unwrap_or("");
            if text != "*" && !LAYERS.contains(&layer) {
                ck.fail(
                    g.position(),
                    field,
                    format!(
                        "`{text}`: a grant starts with a layer ({}) or is `*`",
                        LAYERS.join(", ")
                    ),
                );
            } else if text.contains('.') && !text.contains('*') {
                ck.table(g.position(), field, text);
            }
            grants.read.push(text.to_string());
        }
        for (table, cols) in role.columns {
            let field = format!("roles.{name}.columns.{table}");
            if ck.table(cols.position(), field.clone(), &table) {
                ck.columns(cols.position(), &field, &table, cols.value.iter());
            }
            if cols.value.is_empty() {
                ck.fail(
                    cols.position(),
                    field,
                    "list at least one column (or leave the table out)".into(),
                );
            }
            grants
                .columns
                .insert(table, cols.value.into_iter().collect());
        }
        for (table, filter) in role.row_filters {
            let field = format!("roles.{name}.row_filters.{table}");
            ck.table(filter.position(), field.clone(), &table);
            if filter.value.trim().is_empty() {
                ck.fail(
                    filter.position(),
                    field.clone(),
                    "the filter is empty".into(),
                );
            }
            if let Err(message) = template_vars(&filter.value) {
                ck.fail(filter.position(), field, message);
            }
            grants.row_filters.insert(table, filter.value);
        }
        out.roles.insert(name, grants);
    }
    if ck.errors.is_empty() {
        Ok(out)
    } else {
        Err(ck.errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> BTreeMap<String, BTreeSet<String>> {
        let mut t = BTreeMap::new();
        t.insert(
            "silver.customers".to_string(),
            ["id", "email", "region"].map(String::from).into(),
        );
        t.insert("gold.revenue".to_string(), BTreeSet::new());
        t
    }

    #[test]
    fn a_full_file_resolves_with_the_built_in_roles() {
        let text = "masks:\n  silver.customers:\n    email: hash\nusers:\n  ana: {region: EU}\n\
                    roles:\n  analyst:\n    read: [gold]\n    columns:\n      silver.customers: [id, email]\n\
                    \x20   row_filters:\n      silver.customers: \"region = {{ user.region }}\"\n";
        let a = parse_access(Path::new("access.yml"), text, &tables()).unwrap();
        assert_eq!(a.masks["silver.customers"]["email"], MaskKind::Hash);
        assert_eq!(a.users["ana"]["region"], "EU");
        let r = a.role("analyst").unwrap();
        assert_eq!(r.read, vec!["gold"]);
        assert!(!r.unmask && !r.operate);
        assert!(a.role("admin").unwrap().administer);
        assert!(a.role("reader").is_some());
    }

    #[test]
    fn unknown_tables_columns_and_layers_name_file_and_line() {
        let text = "roles:\n  analyst:\n    read: [platinum, silver.custmers]\n    columns:\n      silver.customers: [id, phone]\n";
        let errs = parse_access(Path::new("access.yml"), text, &tables()).unwrap_err();
        let all: Vec<String> = errs.iter().map(ToString::to_string).collect();
        let joined = all.join("\n");
        assert!(joined.contains("access.yml:3:"), "{joined}");
        assert!(
            joined.contains("`platinum`: a grant starts with a layer"),
            "{joined}"
        );
        assert!(
            joined.contains("unknown table `silver.custmers` (did you mean `silver.customers`?)"),
            "{joined}"
        );
        assert!(joined.contains("access.yml:5:"), "{joined}");
        assert!(joined.contains("unknown column `phone`"), "{joined}");
        let e = parse_access(
            Path::new("a.yml"),
            "roles:\n  r:\n    reed: []\n",
            &tables(),
        )
        .unwrap_err();
        assert!(e[0].to_string().contains("reed"), "{}", e[0]);
        let e = parse_access(
            Path::new("a.yml"),
            "masks:\n  silver.customers:\n    email: scramble\n",
            &tables(),
        )
        .unwrap_err();
        assert!(e[0].to_string().contains("scramble"), "{}", e[0]);
    }

    #[test]
    fn templates_and_grants_match() {
        assert_eq!(
            template_vars("region = {{ user.region }} or o = {{user.name}}").unwrap(),
            vec!["region", "name"]
        );
        assert!(template_vars("a = {{ region }}").is_err());
        assert!(template_vars("a = {{ user.region").is_err());
        assert!(grant_covers("*", "bronze", "x"));
        assert!(grant_covers("silver", "silver", "x"));
        assert!(grant_covers("silver.*", "silver", "x"));
        assert!(grant_covers("gold.fct_*", "gold", "fct_sales"));
        assert!(!grant_covers("gold.fct_*", "gold", "dim_sales"));
        assert!(!grant_covers("silver.orders", "silver", "orders2"));
        assert!(glob_match("a*b*c", "axxbyyc"));
        assert!(!glob_match("a*b*c", "axxbyy"));
    }
}
