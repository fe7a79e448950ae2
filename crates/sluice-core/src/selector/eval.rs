//! Evaluating a parsed selection over the asset graph.

use std::collections::{BTreeSet, VecDeque};

use serde_json::Value;

use super::parse::{Atom, Depth, Method, Selection, parse};
use super::{NodeFacts, NodeState, ResourceType, SelectorError};
use crate::graph::{AssetGraph, suggest};
use crate::node_id::NodeId;

/// Parses and evaluates `select` minus `exclude` (both in dbt's grammar). Empty `select` selects every
/// node; empty `exclude` excludes nothing.
pub fn select(
    graph: &AssetGraph,
    facts: &dyn NodeFacts,
    select: &str,
    exclude: &str,
) -> Result<BTreeSet<String>, SelectorError> {
    let included = parse(select)?;
    let excluded = parse(exclude)?;
    let mut out = if included.terms.is_empty() {
        graph.nodes().map(str::to_string).collect()
    } else {
        evaluate(graph, facts, &included)?
    };
    if out.is_empty() && select.contains(',') && !uses_state(&included) {
        return Err(SelectorError::EmptyIntersection(select.trim().to_string()));
    }
    if !excluded.terms.is_empty() {
        let drop = evaluate(graph, facts, &excluded)?;
        out.retain(|n| !drop.contains(n));
    }
    Ok(out)
}

fn uses_state(s: &Selection) -> bool {
    s.terms
        .iter()
        .flat_map(|t| &t.atoms)
        .any(|a| a.method == Method::State)
}

/// The nodes a parsed selection names: the union of its terms, each the intersection of its atoms.
pub fn evaluate(
    graph: &AssetGraph,
    facts: &dyn NodeFacts,
    selection: &Selection,
) -> Result<BTreeSet<String>, SelectorError> {
    let mut out = BTreeSet::new();
    for term in &selection.terms {
        let mut acc: Option<BTreeSet<String>> = None;
        for atom in &term.atoms {
            let nodes = atom_nodes(graph, facts, atom)?;
            acc = Some(match acc {
                None => nodes,
                Some(prev) => prev.intersection(&nodes).cloned().collect(),
            });
        }
        out.extend(acc.unwrap_or_default());
    }
    Ok(out)
}

fn atom_nodes(
    graph: &AssetGraph,
    facts: &dyn NodeFacts,
    atom: &Atom,
) -> Result<BTreeSet<String>, SelectorError> {
    if atom.method == Method::State && !facts.has_state() {
        return Err(SelectorError::NoState(atom.text.clone()));
    }
    // A node's exact name selects that node alone (as before dbt's grammar): a model named `orders`
    // does not also pick the source table `shop.orders`, nor a folder of the same name.
    let roots: BTreeSet<String> = if atom.method == Method::Default && graph.contains(&atom.value) {
        BTreeSet::from([atom.value.clone()])
    } else {
        graph
            .nodes()
            .filter(|n| matches(facts, atom, n))
            .map(str::to_string)
            .collect()
    };
    let may_be_empty = matches!(
        atom.method,
        Method::Tag | Method::Config(_) | Method::State | Method::ResourceType
    );
    if roots.is_empty() && !may_be_empty {
        return Err(SelectorError::NoMatch {
            selector: atom.text.clone(),
            suggestion: suggest(&atom.value, graph.nodes()),
        });
    }
    let mut out = roots.clone();
    for r in &roots {
        if atom.at {
            let below = walk(graph, r, Depth::All, false);
            for d in below.iter().chain(std::iter::once(r)) {
                out.extend(walk(graph, d, Depth::All, true));
            }
            out.extend(below);
        }
        out.extend(walk(graph, r, atom.parents, true));
        out.extend(walk(graph, r, atom.children, false));
    }
    Ok(out)
}

/// Ancestors (`up`) or descendants of `start` within `depth` generations, not including `start`.
fn walk(graph: &AssetGraph, start: &str, depth: Depth, up: bool) -> BTreeSet<String> {
    let limit = match depth {
        Depth::None => return BTreeSet::new(),
        Depth::All => usize::MAX,
        Depth::Up(n) => n,
    };
    let mut seen = BTreeSet::new();
    let mut queue = VecDeque::from([(start.to_string(), 0usize)]);
    while let Some((n, d)) = queue.pop_front() {
        if d >= limit {
            continue;
        }
        let next: Vec<&str> = if up {
            graph.parents(&n).collect()
        } else {
            graph.children(&n).collect()
        };
        for m in next {
            if seen.insert(m.to_string()) {
                queue.push_back((m.to_string(), d + 1));
            }
        }
    }
    seen
}

fn matches(facts: &dyn NodeFacts, atom: &Atom, node: &str) -> bool {
    let v = atom.value.as_str();
    match &atom.method {
        Method::Default => {
            if looks_like_path(v) {
                return path_matches(facts, v, node);
            }
            node == v
                || glob_match(v, node)
                || (facts.resource_type(node) == ResourceType::Source
                    && source_table(node).is_some_and(|(_, t)| glob_match(v, &t)))
                || fqn_matches(&facts.fqn(node), v)
        }
        Method::Fqn => fqn_matches(&facts.fqn(node), v),
        Method::Tag => facts.tags(node).iter().any(|t| glob_match(v, t)),
        Method::Path => path_matches(facts, v, node),
        Method::File => facts.path(node).is_some_and(|p| {
            let file = p.rsplit('/').next().unwrap_or(&p);
            let stem = file.rsplit_once('.').map_or(file, |(s, _)| s);
            glob_match(v, file) || glob_match(v, stem)
        }),
        Method::Config(key) => facts
            .config(node, key)
            .is_some_and(|c| config_matches(&c, v)),
        Method::Source => {
            facts.resource_type(node) == ResourceType::Source
                && (glob_match(v, node)
                    || source_table(node).is_some_and(|(src, _)| glob_match(v, &src)))
        }
        Method::ResourceType => facts.resource_type(node).as_str() == v,
        Method::Export => {
            matches!(node.parse(), Ok(NodeId::Export(name)) if glob_match(v, &name))
        }
        Method::State => state_matches(facts.state(node), v),
        Method::Package => facts.fqn(node).first().is_some_and(|p| glob_match(v, p)),
    }
}

/// The source and table of a source-table node.
fn source_table(node: &str) -> Option<(String, String)> {
    match node.parse() {
        Ok(NodeId::SourceTable { source, table }) => Some((source, table)),
        _ => None,
    }
}

/// dbt's rule: a value with a `/`, or ending in a file extension it knows, is a path.
fn looks_like_path(v: &str) -> bool {
    v.contains('/')
        || v.contains('\\')
        || [".sql", ".py", ".csv", ".yml", ".yaml"]
            .iter()
            .any(|ext| v.ends_with(ext))
}

fn path_matches(facts: &dyn NodeFacts, v: &str, node: &str) -> bool {
    let Some(path) = facts.path(node) else {
        return false;
    };
    let want = v.trim_start_matches("./").trim_end_matches('/');
    path == want || path.starts_with(&format!("{want}/")) || glob_match(want, &path)
}

/// dbt's qualified-name rule: the value's dotted parts match the start of the fqn (with or without
/// the project name), or the value is the node's own name.
fn fqn_matches(fqn: &[String], v: &str) -> bool {
    if fqn.last().is_some_and(|leaf| glob_match(v, leaf)) {
        return true;
    }
    let parts: Vec<&str> = v.split('.').collect();
    let prefix = |fqn: &[String]| {
        parts.len() <= fqn.len() && parts.iter().zip(fqn).all(|(p, f)| glob_match(p, f))
    };
    prefix(fqn) || fqn.get(1..).is_some_and(prefix)
}

fn config_matches(c: &Value, v: &str) -> bool {
    match c {
        Value::String(s) => glob_match(v, s),
        Value::Array(items) => items.iter().any(|i| config_matches(i, v)),
        Value::Bool(b) => v.eq_ignore_ascii_case(if *b { "true" } else { "false" }),
        Value::Number(n) => n.to_string() == v,
        Value::Null | Value::Object(_) => false,
    }
}

fn state_matches(state: Option<NodeState>, v: &str) -> bool {
    let Some(state) = state else {
        return false;
    };
    match (v, state) {
        ("new", NodeState::New) => true,
        ("old", s) => s != NodeState::New,
        ("modified", NodeState::New | NodeState::Modified(_)) => true,
        ("modified.body", NodeState::Modified(c)) => c.body,
        ("modified.configs", NodeState::Modified(c)) => c.configs,
        ("modified.relation", NodeState::Modified(c)) => c.relation,
        ("modified.persisted_descriptions", NodeState::Modified(c)) => c.persisted_descriptions,
        ("modified.macros", NodeState::Modified(c)) => c.macros,
        ("modified.contract", NodeState::Modified(c)) => c.contract,
        ("unmodified", NodeState::Unmodified) => true,
        _ => false,
    }
}

/// Shell-style glob: `*` any run of characters, `?` one character; everything else literal.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    if !pattern.contains(['*', '?']) {
        return pattern == text;
    }
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}
