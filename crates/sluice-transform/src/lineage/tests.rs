use std::collections::BTreeSet;

use sluice_engine::SessionContext;

use super::Subtype::{self, *};
use super::{LineageError, PlanLineage, plan_lineage};

async fn lineage(sql: &str) -> PlanLineage {
    let ctx = SessionContext::new();
    for ddl in [
        "create table orders (id int, customer_id int, amount double, status varchar, ordered_at timestamp)",
        "create table customers (id int, name varchar, country varchar)",
        "create table refunds (order_id int, amount double)",
    ] {
        ctx.sql(ddl).await.unwrap();
    }
    let plan = ctx.state().create_logical_plan(sql).await.unwrap();
    plan_lineage(&plan).unwrap()
}

/// The inputs of output column `name` as `table.column: SUBTYPE[,SUBTYPE]` strings.
fn column(l: &PlanLineage, name: &str) -> BTreeSet<String> {
    let (_, sources) = l
        .columns
        .iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no output column {name} in {:?}", l.columns));
    render(sources)
}

fn render(sources: &super::Sources) -> BTreeSet<String> {
    sources
        .iter()
        .map(|(f, how)| {
            let how: Vec<&str> = how.iter().map(|s| s.as_str()).collect();
            format!("{}.{}: {}", f.relation, f.column, how.join(","))
        })
        .collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[tokio::test]
async fn identity_transformation_and_filter() {
    let l = lineage(
        "select id as order_id, amount * 1.2 as gross, upper(status) as status \
         from orders where status <> 'test'",
    )
    .await;
    let names: Vec<&str> = l.columns.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["order_id", "gross", "status"]);
    assert_eq!(column(&l, "order_id"), set(&["orders.id: IDENTITY"]));
    assert_eq!(column(&l, "gross"), set(&["orders.amount: TRANSFORMATION"]));
    assert_eq!(
        column(&l, "status"),
        set(&["orders.status: TRANSFORMATION"])
    );
    assert_eq!(render(&l.dataset), set(&["orders.status: FILTER"]));
}

#[tokio::test]
async fn select_star_is_identity_for_every_column() {
    let l = lineage("select * from customers").await;
    assert_eq!(l.columns.len(), 3);
    for (name, sources) in &l.columns {
        assert_eq!(
            render(sources),
            set(&[&format!("customers.{name}: IDENTITY")])
        );
    }
    assert!(l.dataset.is_empty());
}

#[tokio::test]
async fn joins_keep_each_side_and_record_keys() {
    let l = lineage(
        "select o.id, c.name, o.amount - coalesce(r.amount, 0) as net \
         from orders o join customers c on o.customer_id = c.id \
         left join refunds r on r.order_id = o.id and r.amount > 0",
    )
    .await;
    assert_eq!(column(&l, "id"), set(&["orders.id: IDENTITY"]));
    assert_eq!(column(&l, "name"), set(&["customers.name: IDENTITY"]));
    assert_eq!(
        column(&l, "net"),
        set(&[
            "orders.amount: TRANSFORMATION",
            "refunds.amount: TRANSFORMATION"
        ])
    );
    assert_eq!(
        render(&l.dataset),
        set(&[
            "customers.id: JOIN",
            "orders.customer_id: JOIN",
            "orders.id: JOIN",
            "refunds.amount: JOIN",
            "refunds.order_id: JOIN",
        ])
    );
}

#[tokio::test]
async fn aggregates_group_keys_and_having() {
    let l = lineage(
        "select c.country, count(*) as orders, sum(o.amount) as revenue, \
                max(o.amount) / nullif(min(o.amount), 0) as spread \
         from orders o join customers c on o.customer_id = c.id \
         group by c.country having sum(o.amount) > 100 order by revenue desc",
    )
    .await;
    assert_eq!(column(&l, "country"), set(&["customers.country: IDENTITY"]));
    // count(*) reads no column's value: only the dataset shapes it.
    assert_eq!(column(&l, "orders"), set(&[]));
    assert_eq!(column(&l, "revenue"), set(&["orders.amount: AGGREGATION"]));
    assert_eq!(column(&l, "spread"), set(&["orders.amount: AGGREGATION"]));
    let dataset = render(&l.dataset);
    for expected in [
        "customers.country: GROUP_BY",
        "orders.amount: FILTER,SORT",
        "orders.customer_id: JOIN",
    ] {
        assert!(dataset.contains(expected), "{expected} not in {dataset:?}");
    }
}

#[tokio::test]
async fn window_functions_record_partition_and_order() {
    let l = lineage(
        "select id, row_number() over (partition by customer_id order by ordered_at) as nth, \
                sum(amount) over (partition by customer_id) as customer_total \
         from orders",
    )
    .await;
    assert_eq!(
        column(&l, "nth"),
        set(&["orders.customer_id: WINDOW", "orders.ordered_at: WINDOW"])
    );
    assert_eq!(
        column(&l, "customer_total"),
        set(&["orders.amount: AGGREGATION", "orders.customer_id: WINDOW"])
    );
}

#[tokio::test]
async fn ctes_and_nested_expressions_compose() {
    let l = lineage(
        "with paid as (select id, customer_id, amount as paid_amount from orders where status = 'paid'), \
              per_customer as (select customer_id, sum(paid_amount) as total from paid group by customer_id) \
         select c.name, p.total, p.total * 2 as doubled \
         from per_customer p join customers c on c.id = p.customer_id",
    )
    .await;
    assert_eq!(column(&l, "name"), set(&["customers.name: IDENTITY"]));
    // An aggregate under a transformation is still an aggregation.
    assert_eq!(column(&l, "total"), set(&["orders.amount: AGGREGATION"]));
    assert_eq!(column(&l, "doubled"), set(&["orders.amount: AGGREGATION"]));
    let dataset = render(&l.dataset);
    for expected in [
        "orders.status: FILTER",
        "orders.customer_id: JOIN,GROUP_BY",
        "customers.id: JOIN",
    ] {
        assert!(dataset.contains(expected), "{expected} not in {dataset:?}");
    }
}

#[tokio::test]
async fn unions_merge_their_branches_by_position() {
    let l =
        lineage("select id, amount from orders union all select order_id, -amount from refunds")
            .await;
    assert_eq!(
        column(&l, "id"),
        set(&["orders.id: IDENTITY", "refunds.order_id: IDENTITY"])
    );
    assert_eq!(
        column(&l, "amount"),
        set(&["orders.amount: IDENTITY", "refunds.amount: TRANSFORMATION"])
    );
}

#[tokio::test]
async fn case_conditions_are_conditional() {
    let l = lineage(
        "select case when status = 'refunded' then -amount else amount end as signed, \
                case country when 'NL' then 'EU' else 'other' end as region \
         from orders join customers on customers.id = orders.customer_id",
    )
    .await;
    assert_eq!(
        column(&l, "signed"),
        set(&[
            "orders.amount: TRANSFORMATION",
            "orders.status: CONDITIONAL"
        ])
    );
    assert_eq!(
        column(&l, "region"),
        set(&["customers.country: CONDITIONAL"])
    );
}

#[tokio::test]
async fn subqueries_scalar_exists_and_in() {
    let l = lineage(
        "select o.id, \
                (select max(r.amount) from refunds r where r.order_id = o.id) as biggest_refund \
         from orders o \
         where exists (select 1 from customers c where c.id = o.customer_id and c.country = 'NL') \
           and o.id not in (select order_id from refunds)",
    )
    .await;
    let refund = column(&l, "biggest_refund");
    assert!(refund.contains("refunds.amount: AGGREGATION"), "{refund:?}");
    // The correlation (an outer reference) decides which refund rows count.
    assert!(refund.contains("orders.id: FILTER"), "{refund:?}");
    assert!(refund.contains("refunds.order_id: FILTER"), "{refund:?}");
    let dataset = render(&l.dataset);
    for expected in [
        "customers.country: FILTER",
        "customers.id: FILTER",
        "orders.customer_id: FILTER",
        "refunds.order_id: FILTER",
    ] {
        assert!(dataset.contains(expected), "{expected} not in {dataset:?}");
    }
}

#[tokio::test]
async fn distinct_values_and_literals() {
    let l = lineage(
        "select distinct country, 'x' as tag from customers \
         union all select * from (values ('SE', 'y')) as v(country, tag)",
    )
    .await;
    assert_eq!(column(&l, "country"), set(&["customers.country: IDENTITY"]));
    assert_eq!(column(&l, "tag"), set(&[]));
}

#[tokio::test]
async fn distinct_on_unnest_and_recursive_ctes() {
    let l = lineage(
        "select distinct on (customer_id) customer_id, amount from orders \
         order by customer_id, ordered_at desc",
    )
    .await;
    assert_eq!(
        column(&l, "customer_id"),
        set(&["orders.customer_id: IDENTITY"])
    );
    assert_eq!(column(&l, "amount"), set(&["orders.amount: IDENTITY"]));
    let dataset = render(&l.dataset);
    for expected in [
        "orders.customer_id: GROUP_BY,SORT",
        "orders.ordered_at: SORT",
    ] {
        assert!(dataset.contains(expected), "{expected} not in {dataset:?}");
    }

    let l = lineage("select id, unnest(make_array(amount, amount * 2)) as a from orders").await;
    assert_eq!(column(&l, "id"), set(&["orders.id: IDENTITY"]));
    assert_eq!(column(&l, "a"), set(&["orders.amount: TRANSFORMATION"]));

    // The recursive step reads the work table: its columns lead back to the static term's inputs.
    let l = lineage(
        "with recursive r(n, total) as ( \
             select id, amount from orders where status = 'paid' \
             union all select n + 1, total * 2 from r where n < 5) \
         select n, total from r",
    )
    .await;
    assert_eq!(
        column(&l, "n"),
        set(&["orders.id: IDENTITY,TRANSFORMATION"])
    );
    assert_eq!(
        column(&l, "total"),
        set(&["orders.amount: IDENTITY,TRANSFORMATION"])
    );
    assert_eq!(
        render(&l.dataset),
        set(&["orders.id: FILTER", "orders.status: FILTER"])
    );
}

#[tokio::test]
async fn statements_are_not_queries() {
    let ctx = SessionContext::new();
    ctx.sql("create table t (a int)").await.unwrap();
    let plan = ctx
        .state()
        .create_logical_plan("insert into t values (1)")
        .await
        .unwrap();
    assert!(matches!(
        plan_lineage(&plan),
        Err(LineageError::NotAQuery(_))
    ));
}

#[test]
fn subtypes_use_openlineage_words() {
    assert_eq!(Subtype::GroupBy.as_str(), "GROUP_BY");
    assert_eq!(Identity.kind(), "DIRECT");
    assert_eq!(Conditional.kind(), "INDIRECT");
    assert!(Identity < Transformation && Transformation < Aggregation);
    assert_eq!(
        serde_json::to_string(&Subtype::GroupBy).unwrap(),
        "\"GROUP_BY\""
    );
}
