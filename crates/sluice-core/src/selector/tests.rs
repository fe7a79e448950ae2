//! The grammar against dbt's documented examples (docs.getdbt.com, reference/node-selection: syntax,
//! graph operators, set operators, methods, exclude, state), on a small project shaped like theirs.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::*;
use crate::AssetGraph;

/// A project: snowplow source → stg_* → marts, with paths, tags, configs and a previous state.
struct Facts {
    nodes: BTreeMap<&'static str, (ResourceType, &'static str, Vec<&'static str>, Value)>,
    state: Option<BTreeMap<&'static str, NodeState>>,
}

impl NodeFacts for Facts {
    fn resource_type(&self, node: &str) -> ResourceType {
        self.nodes[node].0
    }
    fn fqn(&self, node: &str) -> Vec<String> {
        let path = self.nodes[node].1;
        let mut fqn = vec!["jaffle".to_string()];
        if self.nodes[node].0 == ResourceType::Source {
            fqn.extend(node.split('.').map(str::to_string));
            return fqn;
        }
        let dirs: Vec<&str> = path.split('/').collect();
        fqn.extend(dirs[1..dirs.len() - 1].iter().map(|s| s.to_string()));
        fqn.push(node.to_string());
        fqn
    }
    fn path(&self, node: &str) -> Option<String> {
        Some(self.nodes[node].1.to_string())
    }
    fn tags(&self, node: &str) -> Vec<String> {
        self.nodes[node].2.iter().map(|s| s.to_string()).collect()
    }
    fn config(&self, node: &str, key: &str) -> Option<Value> {
        self.nodes[node].3.get(key).cloned()
    }
    fn state(&self, node: &str) -> Option<NodeState> {
        let s = self.state.as_ref()?;
        Some(s.get(node).copied().unwrap_or(NodeState::Unmodified))
    }
    fn has_state(&self) -> bool {
        self.state.is_some()
    }
}

fn project() -> (AssetGraph, Facts) {
    let mut g = AssetGraph::new();
    for (a, b) in [
        ("snowplow.events", "stg_sessions"),
        ("stg_sessions", "snowplow_sessions"),
        ("snowplow_sessions", "fct_sessions"),
        ("shop.orders", "stg_orders"),
        ("stg_orders", "fct_orders"),
        ("stg_invoices", "fct_revenue"),
        ("stg_accounts", "fct_revenue"),
        ("stg_accounts", "dim_accounts"),
        ("fct_orders", "fct_revenue"),
        ("fct_revenue", "export:revenue_to_crm"),
        ("country_codes", "dim_accounts"),
    ] {
        g.add_edge(a, b);
    }
    use ResourceType::*;
    let table = json!({"materialized": "table"});
    let incr = json!({"materialized": "incremental", "tags": ["nightly"]});
    let view = json!({"materialized": "view"});
    let nodes = BTreeMap::from([
        (
            "snowplow.events",
            (Source, "sources/snowplow.yml", vec![], json!({})),
        ),
        (
            "shop.orders",
            (Source, "sources/shop.yml", vec!["pii"], json!({})),
        ),
        (
            "stg_sessions",
            (
                Model,
                "models/staging/stg_sessions.sql",
                vec![],
                view.clone(),
            ),
        ),
        (
            "stg_orders",
            (Model, "models/staging/stg_orders.sql", vec![], view.clone()),
        ),
        (
            "stg_invoices",
            (
                Model,
                "models/staging/finance/stg_invoices.sql",
                vec![],
                view.clone(),
            ),
        ),
        (
            "stg_accounts",
            (
                Model,
                "models/staging/finance/stg_accounts.sql",
                vec![],
                view,
            ),
        ),
        (
            "snowplow_sessions",
            (
                Model,
                "models/marts/snowplow_sessions.sql",
                vec!["nightly"],
                incr.clone(),
            ),
        ),
        (
            "fct_sessions",
            (
                Model,
                "models/marts/fct_sessions.sql",
                vec![],
                table.clone(),
            ),
        ),
        (
            "fct_orders",
            (Model, "models/marts/fct_orders.sql", vec!["nightly"], incr),
        ),
        (
            "fct_revenue",
            (
                Model,
                "models/marts/finance/fct_revenue.sql",
                vec!["nightly"],
                table.clone(),
            ),
        ),
        (
            "dim_accounts",
            (
                Model,
                "models/marts/finance/dim_accounts.sql",
                vec![],
                table,
            ),
        ),
        (
            "country_codes",
            (
                Seed,
                "seeds/country_codes.csv",
                vec![],
                json!({"materialized": "seed"}),
            ),
        ),
        (
            "export:revenue_to_crm",
            (Export, "exports/revenue_to_crm.yml", vec![], json!({})),
        ),
    ]);
    (g, Facts { nodes, state: None })
}

fn sel(select: &str, exclude: &str) -> Vec<String> {
    let (g, f) = project();
    super::select(&g, &f, select, exclude)
        .unwrap_or_else(|e| panic!("{select}: {e}"))
        .into_iter()
        .collect()
}

fn names(s: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = s.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn graph_operators_from_the_dbt_docs() {
    // dbt run --select "my_model+"  → my_model and all descendants
    assert_eq!(
        sel("stg_orders+", ""),
        names(&[
            "stg_orders",
            "fct_orders",
            "fct_revenue",
            "export:revenue_to_crm"
        ])
    );
    // "+my_model" → my_model and all ancestors
    assert_eq!(
        sel("+fct_orders", ""),
        names(&["fct_orders", "stg_orders", "shop.orders"])
    );
    // "+my_model+" → ancestors and descendants
    assert_eq!(
        sel("+fct_orders+", ""),
        names(&[
            "shop.orders",
            "stg_orders",
            "fct_orders",
            "fct_revenue",
            "export:revenue_to_crm"
        ])
    );
    // "my_model+1" → first-degree descendants only
    assert_eq!(
        sel("stg_orders+1", ""),
        names(&["stg_orders", "fct_orders"])
    );
    // "2+my_model" → parents and grandparents
    assert_eq!(
        sel("2+fct_revenue", ""),
        names(&[
            "fct_revenue",
            "stg_invoices",
            "stg_accounts",
            "fct_orders",
            "stg_orders"
        ])
    );
    // "3+my_model+4" → ancestors up to the 3rd degree, descendants down to the 4th
    assert_eq!(
        sel("1+fct_orders+1", ""),
        names(&["stg_orders", "fct_orders", "fct_revenue"])
    );
    // "@my_model" → my_model, its descendants, and the ancestors of its descendants
    assert_eq!(
        sel("@stg_accounts", ""),
        names(&[
            "stg_accounts",
            "fct_revenue",
            "dim_accounts",
            "export:revenue_to_crm",
            "stg_invoices",
            "fct_orders",
            "stg_orders",
            "shop.orders",
            "country_codes",
        ])
    );
}

#[test]
fn set_operators_from_the_dbt_docs() {
    // Union: dbt run --select "+snowplow_sessions +fct_orders"
    assert_eq!(
        sel("+snowplow_sessions +fct_orders", ""),
        names(&[
            "snowplow.events",
            "stg_sessions",
            "snowplow_sessions",
            "shop.orders",
            "stg_orders",
            "fct_orders",
        ])
    );
    // Intersection: dbt run --select "stg_invoices+,stg_accounts+" → models downstream of both
    assert_eq!(
        sel("stg_invoices+,stg_accounts+", ""),
        names(&["fct_revenue", "export:revenue_to_crm"])
    );
    // dbt run --select "marts.finance,tag:nightly" → in marts/finance and tagged nightly
    assert_eq!(
        sel("marts.finance,tag:nightly", ""),
        names(&["fct_revenue"])
    );
    // Several --select arguments are joined by spaces (a union) by the CLI.
    assert_eq!(
        sel("stg_orders stg_sessions", ""),
        names(&["stg_orders", "stg_sessions"])
    );
}

#[test]
fn methods_from_the_dbt_docs() {
    assert_eq!(
        sel("tag:nightly", ""),
        names(&["snowplow_sessions", "fct_orders", "fct_revenue"])
    );
    // path: a folder (relative to the project) or a file.
    assert_eq!(
        sel("path:models/staging/finance", ""),
        names(&["stg_invoices", "stg_accounts"])
    );
    assert_eq!(sel("path:models/marts/fct_orders.sql", ""), ["fct_orders"]);
    // No method and a slash: a path.
    assert_eq!(
        sel("models/marts/finance", ""),
        names(&["fct_revenue", "dim_accounts"])
    );
    // file: by file name, with or without the extension.
    assert_eq!(sel("file:fct_orders.sql", ""), ["fct_orders"]);
    assert_eq!(sel("file:fct_orders", ""), ["fct_orders"]);
    // config.materialized:incremental
    assert_eq!(
        sel("config.materialized:incremental", ""),
        names(&["snowplow_sessions", "fct_orders"])
    );
    // config values that are lists match on any item.
    assert_eq!(
        sel("config.tags:nightly", ""),
        names(&["snowplow_sessions", "fct_orders"])
    );
    // dbt run --select "source:snowplow+" → everything that selects from the snowplow source
    assert_eq!(
        sel("source:snowplow+", ""),
        names(&[
            "snowplow.events",
            "stg_sessions",
            "snowplow_sessions",
            "fct_sessions"
        ])
    );
    assert_eq!(sel("source:shop.orders", ""), ["shop.orders"]);
    assert_eq!(sel("resource_type:seed", ""), ["country_codes"]);
    assert_eq!(
        sel("resource_type:source", ""),
        names(&["shop.orders", "snowplow.events"])
    );
    assert_eq!(sel("export:revenue_to_crm", ""), ["export:revenue_to_crm"]);
    // fqn: the project name may be left out; a folder selects what is inside it; wildcards.
    assert_eq!(
        sel("fqn:jaffle.staging.finance.*", ""),
        names(&["stg_invoices", "stg_accounts"])
    );
    assert_eq!(
        sel("staging.finance", ""),
        names(&["stg_invoices", "stg_accounts"])
    );
    assert_eq!(
        sel("*.finance.*", ""),
        names(&[
            "stg_invoices",
            "stg_accounts",
            "fct_revenue",
            "dim_accounts"
        ])
    );
    assert_eq!(
        sel("stg_*", ""),
        names(&["stg_sessions", "stg_orders", "stg_invoices", "stg_accounts"])
    );
    assert_eq!(sel("package:jaffle", "").len(), 13);
}

#[test]
fn exclude_from_the_dbt_docs() {
    // dbt run --select "my_package".*+ --exclude "my_package.a_big_model+"
    assert_eq!(
        sel("stg_orders+", "fct_revenue+"),
        names(&["stg_orders", "fct_orders"])
    );
    // The docs' long example: "@source:snowplow,tag:nightly models/export" minus an intersection.
    assert_eq!(
        sel(
            "@source:snowplow,tag:nightly path:exports",
            "config.materialized:incremental"
        ),
        names(&["export:revenue_to_crm"])
    );
    // Excluding everything leaves nothing, without an error.
    assert!(sel("stg_orders", "stg_orders").is_empty());
}

#[test]
fn todays_forms_keep_working() {
    // A source table by its bare table name, `source.table`, `tag:x`, and empty = everything.
    assert_eq!(sel("orders", ""), ["shop.orders"]);
    assert_eq!(
        sel("shop.orders+1", ""),
        names(&["shop.orders", "stg_orders"])
    );
    assert_eq!(sel("", "").len(), 13);
    assert_eq!(sel("tag:pii", ""), ["shop.orders"]);
    // TagsOnly (no paths or configs) still resolves names and graph operators.
    let (g, _) = project();
    let t = TagsOnly(|_: &str| Vec::new());
    let got = super::select(&g, &t, "+stg_orders", "").unwrap();
    assert_eq!(
        got.into_iter().collect::<Vec<_>>(),
        ["shop.orders", "stg_orders"]
    );
}

#[test]
fn state_modified_compares_with_the_previous_manifest() {
    let (g, mut f) = project();
    let err = super::select(&g, &f, "state:modified+", "").unwrap_err();
    assert!(matches!(err, SelectorError::NoState(_)), "{err}");
    assert!(err.to_string().contains("--state"));
    f.state = Some(BTreeMap::from([
        (
            "stg_orders",
            NodeState::Modified(Changes {
                body: true,
                ..Changes::default()
            }),
        ),
        (
            "dim_accounts",
            NodeState::Modified(Changes {
                configs: true,
                relation: true,
                ..Changes::default()
            }),
        ),
        (
            "fct_orders",
            NodeState::Modified(Changes {
                macros: true,
                contract: true,
                ..Changes::default()
            }),
        ),
        ("country_codes", NodeState::New),
    ]));
    let run =
        |s: &str| -> Vec<String> { super::select(&g, &f, s, "").unwrap().into_iter().collect() };
    // state:modified includes new nodes (as in dbt).
    assert_eq!(
        run("state:modified"),
        names(&["stg_orders", "dim_accounts", "fct_orders", "country_codes"])
    );
    assert_eq!(
        run("state:modified+"),
        names(&[
            "stg_orders",
            "fct_orders",
            "fct_revenue",
            "export:revenue_to_crm",
            "dim_accounts",
            "country_codes"
        ])
    );
    assert_eq!(run("state:modified.body"), ["stg_orders"]);
    assert_eq!(run("state:modified.configs"), ["dim_accounts"]);
    assert_eq!(run("state:modified.relation"), ["dim_accounts"]);
    assert_eq!(run("state:modified.macros"), ["fct_orders"]);
    // dbt's documented CI step after a macro change: the models that call it, and their downstream.
    assert_eq!(
        run("state:modified.macros+"),
        names(&["fct_orders", "fct_revenue", "export:revenue_to_crm"])
    );
    assert_eq!(run("state:modified.contract"), ["fct_orders"]);
    assert!(run("state:modified.persisted_descriptions").is_empty());
    assert_eq!(run("state:new"), ["country_codes"]);
    assert_eq!(
        run("state:modified,resource_type:model"),
        names(&["stg_orders", "dim_accounts", "fct_orders"])
    );
    // Nothing modified is not an error.
    f.state = Some(BTreeMap::new());
    assert!(
        super::select(&g, &f, "state:modified+", "")
            .unwrap()
            .is_empty()
    );
}

/// (selection, column, words the message must hold)
#[test]
fn bad_selectors_say_where_and_what_was_expected() {
    let (g, f) = project();
    let cases: &[(&str, usize, &[&str])] = &[
        ("a,,b", 3, &["a selector on each side of `,`"]),
        ("stg_orders,", 12, &["the end of the selector"]),
        (
            "tags:nightly",
            1,
            &["a selector method", "did you mean `tag:`"],
        ),
        ("tag:", 5, &["a value after `tag:`"]),
        ("@+stg_orders", 1, &["either `@` or a leading `+`"]),
        ("stg+orders", 4, &["`+` or `@` only at the start or end"]),
        (
            "fct_orders state:changed",
            18,
            &["a state: value", "modified"],
        ),
        ("+", 2, &["a node name"]),
        ("ünï+cödé", 4, &["`+` or `@` only"]),
    ];
    for (text, column, words) in cases {
        let e = super::select(&g, &f, text, "").unwrap_err();
        let SelectorError::Syntax { column: c, .. } = &e else {
            panic!("{text}: not a syntax error: {e}");
        };
        assert_eq!(c, column, "{text}: {e}");
        for w in *words {
            assert!(e.to_string().contains(w), "{text}: `{e}` lacks `{w}`");
        }
    }
    let e = super::select(&g, &f, "stg_order", "").unwrap_err();
    assert_eq!(
        e.to_string(),
        "selector `stg_order` matches no node (did you mean `stg_orders`?)"
    );
    // Today's comma lists (a union before dbt's grammar) get a hint instead of an empty run.
    let e = super::select(&g, &f, "stg_orders,stg_sessions", "").unwrap_err();
    assert!(matches!(e, SelectorError::EmptyIntersection(_)), "{e}");
    assert!(e.to_string().contains("separate them with spaces"));
    // A bad --exclude is reported too.
    assert!(super::select(&g, &f, "", "tag:").is_err());
}

#[test]
fn globs() {
    assert!(glob_match("stg_*", "stg_orders"));
    assert!(glob_match("*", ""));
    assert!(glob_match("a?c", "abc"));
    assert!(!glob_match("a?c", "ac"));
    assert!(glob_match("*.finance.*", "x.finance.y"));
    assert!(!glob_match("stg_*", "fct_orders"));
}
