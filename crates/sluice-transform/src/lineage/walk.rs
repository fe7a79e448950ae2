//! The walk over a logical plan: each node's output columns as [`Sources`], bottom-up.

use std::collections::BTreeSet;

use sluice_engine::DFSchema;
use sluice_engine::expr::Column;
use sluice_engine::extension::logical_expr::utils::grouping_set_to_exprlist;
use sluice_engine::extension::logical_expr::{Distinct, Expr, JoinType, LogicalPlan, SortExpr};
use sluice_engine::extension::tree_node::{TreeNode, TreeNodeRecursion};

use super::{InputField, LineageError, Sources, Subtype};

/// What a plan node produces: the sources of each of its output columns, in schema order, and the
/// indirect sources of the whole relation.
#[derive(Debug, Clone)]
pub(super) struct Node<'p> {
    pub schema: &'p DFSchema,
    pub fields: Vec<Sources>,
    pub dataset: Sources,
}

/// Walks plans and expressions; stateless (the outer scopes of correlated subqueries are passed down).
#[derive(Debug, Default)]
pub(super) struct Walker;

/// Adds every source of `from` into `into`.
fn merge(into: &mut Sources, from: Sources) {
    for (field, how) in from {
        into.entry(field).or_default().extend(how);
    }
}

/// The sources of a value computed from `sources`: direct subtypes become at least `level`
/// (an identity under a function is a transformation; an aggregation stays one).
fn promote(sources: Sources, level: Subtype) -> Sources {
    sources
        .into_iter()
        .map(|(field, how)| {
            let how = how
                .into_iter()
                .map(|s| if s.is_direct() { s.max(level) } else { s })
                .collect();
            (field, how)
        })
        .collect()
}

/// The same inputs, all used only as `subtype` (an indirect use).
fn indirect(sources: Sources, subtype: Subtype) -> Sources {
    sources
        .into_keys()
        .map(|field| (field, BTreeSet::from([subtype])))
        .collect()
}

/// The name of a plan node for messages.
fn node_name(plan: &LogicalPlan) -> String {
    plan.display().to_string()
}

impl Walker {
    /// The sources of `plan`'s output. `outer` holds the inputs of the enclosing queries, innermost
    /// last, for the outer references of correlated subqueries.
    pub fn plan<'p>(
        &self,
        plan: &'p LogicalPlan,
        outer: &[&Node<'_>],
    ) -> Result<Node<'p>, LineageError> {
        let node = match plan {
            LogicalPlan::TableScan(scan) => {
                let relation = scan.table_name.to_string();
                let source = scan.source.schema();
                let indices: Vec<usize> = match &scan.projection {
                    Some(p) => p.clone(),
                    None => (0..source.fields().len()).collect(),
                };
                let fields = indices
                    .iter()
                    .map(|&i| {
                        let column = source.field(i).name().clone();
                        Sources::from([(
                            InputField {
                                relation: relation.clone(),
                                column,
                            },
                            BTreeSet::from([Subtype::Identity]),
                        )])
                    })
                    .collect();
                // Filters pushed into a scan name the table's own columns.
                let mut dataset = Sources::new();
                for f in &scan.filters {
                    f.apply(|e| {
                        if let Expr::Column(c) = e {
                            dataset.insert(
                                InputField {
                                    relation: relation.clone(),
                                    column: c.name.clone(),
                                },
                                BTreeSet::from([Subtype::Filter]),
                            );
                        }
                        Ok(TreeNodeRecursion::Continue)
                    })
                    .map_err(|e| LineageError::Unsupported(e.to_string()))?;
                }
                Node {
                    schema: scan.projected_schema.as_ref(),
                    fields,
                    dataset,
                }
            }
            LogicalPlan::Projection(p) => {
                let input = self.plan(&p.input, outer)?;
                let fields = p
                    .expr
                    .iter()
                    .map(|e| self.expr(e, &input, outer, plan))
                    .collect::<Result<_, _>>()?;
                Node {
                    schema: p.schema.as_ref(),
                    fields,
                    dataset: input.dataset,
                }
            }
            LogicalPlan::Filter(f) => {
                let mut input = self.plan(&f.input, outer)?;
                let used = self.expr(&f.predicate, &input, outer, plan)?;
                merge(&mut input.dataset, indirect(used, Subtype::Filter));
                input
            }
            LogicalPlan::Aggregate(a) => {
                let input = self.plan(&a.input, outer)?;
                let groups = grouping_set_to_exprlist(&a.group_expr)
                    .map_err(|e| LineageError::Unsupported(e.to_string()))?;
                let mut fields = Vec::with_capacity(a.schema.fields().len());
                let mut dataset = input.dataset.clone();
                for g in &groups {
                    let sources = self.expr(g, &input, outer, plan)?;
                    merge(&mut dataset, indirect(sources.clone(), Subtype::GroupBy));
                    fields.push(sources);
                }
                // Grouping sets add an internal grouping id between the keys and the aggregates.
                if fields.len() + a.aggr_expr.len() < a.schema.fields().len() {
                    fields.push(indirect(
                        fields.iter().cloned().fold(Sources::new(), |mut all, s| {
                            merge(&mut all, s);
                            all
                        }),
                        Subtype::GroupBy,
                    ));
                }
                for e in &a.aggr_expr {
                    fields.push(self.expr(e, &input, outer, plan)?);
                }
                Node {
                    schema: a.schema.as_ref(),
                    fields,
                    dataset,
                }
            }
            LogicalPlan::Window(w) => {
                let input = self.plan(&w.input, outer)?;
                let mut fields = input.fields.clone();
                for e in &w.window_expr {
                    fields.push(self.expr(e, &input, outer, plan)?);
                }
                Node {
                    schema: w.schema.as_ref(),
                    fields,
                    dataset: input.dataset,
                }
            }
            LogicalPlan::Sort(s) => {
                let mut input = self.plan(&s.input, outer)?;
                let used = self.sorts(&s.expr, &input, outer, plan)?;
                merge(&mut input.dataset, indirect(used, Subtype::Sort));
                input
            }
            LogicalPlan::Join(j) => {
                let left = self.plan(&j.left, outer)?;
                let right = self.plan(&j.right, outer)?;
                let mut keys = Sources::new();
                for (l, r) in &j.on {
                    merge(&mut keys, self.expr(l, &left, outer, plan)?);
                    merge(&mut keys, self.expr(r, &right, outer, plan)?);
                }
                let both_schema = left
                    .schema
                    .join(right.schema)
                    .map_err(|e| LineageError::Unsupported(e.to_string()))?;
                let both = Node {
                    schema: &both_schema,
                    fields: left.fields.iter().chain(&right.fields).cloned().collect(),
                    dataset: Sources::new(),
                };
                if let Some(filter) = &j.filter {
                    merge(&mut keys, self.expr(filter, &both, outer, plan)?);
                }
                let mut dataset = left.dataset.clone();
                merge(&mut dataset, right.dataset.clone());
                merge(&mut dataset, indirect(keys.clone(), Subtype::Join));
                let width = j.schema.fields().len();
                let fields = match j.join_type {
                    JoinType::LeftSemi | JoinType::LeftAnti => left.fields,
                    JoinType::RightSemi | JoinType::RightAnti => right.fields,
                    // A mark join adds one boolean column: whether the row had a match.
                    JoinType::LeftMark => {
                        let mut f = left.fields;
                        f.push(indirect(keys, Subtype::Join));
                        f
                    }
                    JoinType::RightMark => {
                        let mut f = right.fields;
                        f.push(indirect(keys, Subtype::Join));
                        f
                    }
                    _ => both.fields,
                };
                if fields.len() != width {
                    return Err(LineageError::Unsupported(format!(
                        "{} join with {} columns where {width} were expected",
                        j.join_type,
                        fields.len()
                    )));
                }
                Node {
                    schema: j.schema.as_ref(),
                    fields,
                    dataset,
                }
            }
            LogicalPlan::Union(u) => {
                let mut fields = vec![Sources::new(); u.schema.fields().len()];
                let mut dataset = Sources::new();
                for input in &u.inputs {
                    let n = self.plan(input, outer)?;
                    for (all, one) in fields.iter_mut().zip(n.fields) {
                        merge(all, one);
                    }
                    merge(&mut dataset, n.dataset);
                }
                Node {
                    schema: u.schema.as_ref(),
                    fields,
                    dataset,
                }
            }
            LogicalPlan::RecursiveQuery(r) => {
                let base = self.plan(&r.static_term, outer)?;
                let step = self.plan(&r.recursive_term, outer)?;
                // The recursive term reads the query's own work table, whose columns are those of
                // the static term: trace through them to the real inputs.
                let names: Vec<&String> = r
                    .static_term
                    .schema()
                    .fields()
                    .iter()
                    .map(|f| f.name())
                    .collect();
                let resolve_own = |sources: Sources| -> Sources {
                    let mut out = Sources::new();
                    for (field, how) in sources {
                        if field.relation != r.name {
                            out.entry(field).or_default().extend(how);
                            continue;
                        }
                        let Some(i) = names.iter().position(|n| **n == field.column) else {
                            continue;
                        };
                        for use_ in how {
                            let through = base.fields[i].clone();
                            merge(
                                &mut out,
                                if use_.is_direct() {
                                    promote(through, use_)
                                } else {
                                    indirect(through, use_)
                                },
                            );
                        }
                    }
                    out
                };
                let mut fields = base.fields.clone();
                for (all, one) in fields.iter_mut().zip(step.fields) {
                    merge(all, resolve_own(one));
                }
                let mut dataset = base.dataset.clone();
                merge(&mut dataset, resolve_own(step.dataset));
                Node {
                    schema: r.schema.as_ref(),
                    fields,
                    dataset,
                }
            }
            // One input, the same columns in the same order (renamed at most).
            LogicalPlan::SubqueryAlias(_)
            | LogicalPlan::Subquery(_)
            | LogicalPlan::Limit(_)
            | LogicalPlan::Repartition(_)
            | LogicalPlan::Distinct(Distinct::All(_)) => {
                let [input_plan] = plan.inputs()[..] else {
                    return Err(LineageError::Unsupported(node_name(plan)));
                };
                let input = self.plan(input_plan, outer)?;
                Node {
                    schema: plan.schema().as_ref(),
                    ..input
                }
            }
            LogicalPlan::Distinct(Distinct::On(d)) => {
                let input = self.plan(&d.input, outer)?;
                let mut dataset = input.dataset.clone();
                let mut keys = Sources::new();
                for e in &d.on_expr {
                    merge(&mut keys, self.expr(e, &input, outer, plan)?);
                }
                if let Some(sorts) = &d.sort_expr {
                    merge(
                        &mut dataset,
                        indirect(self.sorts(sorts, &input, outer, plan)?, Subtype::Sort),
                    );
                }
                merge(&mut dataset, indirect(keys, Subtype::GroupBy));
                let fields = d
                    .select_expr
                    .iter()
                    .map(|e| self.expr(e, &input, outer, plan))
                    .collect::<Result<_, _>>()?;
                Node {
                    schema: d.schema.as_ref(),
                    fields,
                    dataset,
                }
            }
            LogicalPlan::Unnest(u) => {
                let input = self.plan(&u.input, outer)?;
                let unnested: BTreeSet<usize> = u
                    .list_type_columns
                    .iter()
                    .map(|(i, _)| *i)
                    .chain(u.struct_type_columns.iter().copied())
                    .collect();
                let fields = u
                    .dependency_indices
                    .iter()
                    .map(|&i| {
                        let sources = input.fields.get(i).cloned().unwrap_or_default();
                        if unnested.contains(&i) {
                            promote(sources, Subtype::Transformation)
                        } else {
                            sources
                        }
                    })
                    .collect();
                Node {
                    schema: u.schema.as_ref(),
                    fields,
                    dataset: input.dataset,
                }
            }
            LogicalPlan::Values(v) => Node {
                schema: v.schema.as_ref(),
                fields: vec![Sources::new(); v.schema.fields().len()],
                dataset: Sources::new(),
            },
            LogicalPlan::EmptyRelation(e) => Node {
                schema: e.schema.as_ref(),
                fields: vec![Sources::new(); e.schema.fields().len()],
                dataset: Sources::new(),
            },
            LogicalPlan::Extension(_) => return Err(LineageError::Unsupported(node_name(plan))),
            LogicalPlan::Statement(_)
            | LogicalPlan::Explain(_)
            | LogicalPlan::Analyze(_)
            | LogicalPlan::Dml(_)
            | LogicalPlan::Ddl(_)
            | LogicalPlan::Copy(_)
            | LogicalPlan::DescribeTable(_) => {
                return Err(LineageError::NotAQuery(node_name(plan)));
            }
        };
        if node.fields.len() != plan.schema().fields().len() {
            return Err(LineageError::Unsupported(format!(
                "{} with {} traced columns for {} output columns",
                node_name(plan),
                node.fields.len(),
                plan.schema().fields().len()
            )));
        }
        Ok(node)
    }

    /// The inputs of sort keys.
    fn sorts(
        &self,
        sorts: &[SortExpr],
        input: &Node<'_>,
        outer: &[&Node<'_>],
        plan: &LogicalPlan,
    ) -> Result<Sources, LineageError> {
        let mut used = Sources::new();
        for s in sorts {
            merge(&mut used, self.expr(&s.expr, input, outer, plan)?);
        }
        Ok(used)
    }

    /// The sources of the value of `expr` evaluated over `input` (`plan` names the node in errors).
    fn expr(
        &self,
        expr: &Expr,
        input: &Node<'_>,
        outer: &[&Node<'_>],
        plan: &LogicalPlan,
    ) -> Result<Sources, LineageError> {
        match expr {
            Expr::Column(c) => resolve(c, input, plan),
            Expr::OuterReferenceColumn(_, c) => {
                // The innermost enclosing query that has the column.
                for scope in outer.iter().rev() {
                    if scope.schema.maybe_index_of_column(c).is_some() {
                        return resolve(c, scope, plan);
                    }
                }
                Err(LineageError::Unresolved {
                    column: c.flat_name(),
                    node: node_name(plan),
                })
            }
            Expr::Alias(a) => self.expr(&a.expr, input, outer, plan),
            Expr::Case(case) => {
                let mut out = Sources::new();
                let mut conditions = Sources::new();
                if let Some(operand) = &case.expr {
                    merge(&mut conditions, self.expr(operand, input, outer, plan)?);
                }
                for (when, then) in &case.when_then_expr {
                    merge(&mut conditions, self.expr(when, input, outer, plan)?);
                    merge(
                        &mut out,
                        promote(
                            self.expr(then, input, outer, plan)?,
                            Subtype::Transformation,
                        ),
                    );
                }
                if let Some(e) = &case.else_expr {
                    merge(
                        &mut out,
                        promote(self.expr(e, input, outer, plan)?, Subtype::Transformation),
                    );
                }
                merge(&mut out, indirect(conditions, Subtype::Conditional));
                Ok(out)
            }
            Expr::AggregateFunction(af) => {
                let mut out = Sources::new();
                for a in &af.params.args {
                    merge(
                        &mut out,
                        promote(self.expr(a, input, outer, plan)?, Subtype::Aggregation),
                    );
                }
                if let Some(f) = &af.params.filter {
                    merge(
                        &mut out,
                        indirect(self.expr(f, input, outer, plan)?, Subtype::Filter),
                    );
                }
                merge(
                    &mut out,
                    indirect(
                        self.sorts(&af.params.order_by, input, outer, plan)?,
                        Subtype::Sort,
                    ),
                );
                Ok(out)
            }
            Expr::WindowFunction(wf) => {
                let mut out = Sources::new();
                for a in &wf.params.args {
                    merge(
                        &mut out,
                        promote(self.expr(a, input, outer, plan)?, Subtype::Aggregation),
                    );
                }
                let mut window = Sources::new();
                for p in &wf.params.partition_by {
                    merge(&mut window, self.expr(p, input, outer, plan)?);
                }
                merge(
                    &mut window,
                    self.sorts(&wf.params.order_by, input, outer, plan)?,
                );
                merge(&mut out, indirect(window, Subtype::Window));
                if let Some(f) = &wf.params.filter {
                    merge(
                        &mut out,
                        indirect(self.expr(f, input, outer, plan)?, Subtype::Filter),
                    );
                }
                Ok(out)
            }
            Expr::ScalarSubquery(sq) => {
                let scopes = with_scope(outer, input);
                let sub = self.plan(&sq.subquery, &scopes)?;
                let mut out = Sources::new();
                if let Some(first) = sub.fields.into_iter().next() {
                    merge(&mut out, promote(first, Subtype::Transformation));
                }
                merge(&mut out, sub.dataset);
                Ok(out)
            }
            Expr::Exists(e) => {
                let scopes = with_scope(outer, input);
                let sub = self.plan(&e.subquery.subquery, &scopes)?;
                Ok(indirect(subquery_all(sub), Subtype::Filter))
            }
            Expr::InSubquery(i) => {
                let scopes = with_scope(outer, input);
                let sub = self.plan(&i.subquery.subquery, &scopes)?;
                let mut out = self.expr(&i.expr, input, outer, plan)?;
                merge(&mut out, subquery_all(sub));
                Ok(promote(out, Subtype::Transformation))
            }
            Expr::SetComparison(s) => {
                let scopes = with_scope(outer, input);
                let sub = self.plan(&s.subquery.subquery, &scopes)?;
                let mut out = self.expr(&s.expr, input, outer, plan)?;
                merge(&mut out, subquery_all(sub));
                Ok(promote(out, Subtype::Transformation))
            }
            // Every other expression computes its value row by row from its children.
            other => {
                let mut out = Sources::new();
                let mut failed = None;
                other
                    .apply_children(|child| match self.expr(child, input, outer, plan) {
                        Ok(s) => {
                            merge(&mut out, promote(s, Subtype::Transformation));
                            Ok(TreeNodeRecursion::Continue)
                        }
                        Err(e) => {
                            failed = Some(e);
                            Ok(TreeNodeRecursion::Stop)
                        }
                    })
                    .map_err(|e| LineageError::Unsupported(e.to_string()))?;
                match failed {
                    Some(e) => Err(e),
                    None => Ok(out),
                }
            }
        }
    }
}

/// The sources of a column of `input`.
fn resolve(c: &Column, input: &Node<'_>, plan: &LogicalPlan) -> Result<Sources, LineageError> {
    input
        .schema
        .maybe_index_of_column(c)
        .and_then(|i| input.fields.get(i))
        .cloned()
        .ok_or_else(|| LineageError::Unresolved {
            column: c.flat_name(),
            node: node_name(plan),
        })
}

/// `outer` with `input` as the innermost scope.
fn with_scope<'a, 'b>(outer: &[&'a Node<'b>], input: &'a Node<'b>) -> Vec<&'a Node<'b>> {
    let mut scopes = outer.to_vec();
    scopes.push(input);
    scopes
}

/// Every source a subquery's result depends on (its columns and its dataset).
fn subquery_all(sub: Node<'_>) -> Sources {
    let mut all = sub.dataset;
    for f in sub.fields {
        merge(&mut all, f);
    }
    all
}
