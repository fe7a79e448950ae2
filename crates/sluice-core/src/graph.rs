//! The asset graph: nodes named by asset, edges from `ref()`/`source()`.
//!
//! The graph is built from what each node says it reads; nobody writes edges by hand. Validation reports
//! every unknown reference and the first cycle found, with the cycle spelled out (`a -> b -> c -> a`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::error::GraphError;

/// A directed acyclic graph of assets, keyed by name. Edges point from an upstream asset to its consumer.
#[derive(Debug, Clone, Default)]
pub struct AssetGraph {
    upstream: BTreeMap<String, BTreeSet<String>>,
    downstream: BTreeMap<String, BTreeSet<String>>,
}

impl AssetGraph {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node with no edges (idempotent).
    pub fn add_node(&mut self, name: &str) {
        // Looked up first: edges re-add known nodes, and a key is only allocated for a new one.
        if !self.upstream.contains_key(name) {
            self.upstream.insert(name.to_string(), BTreeSet::new());
        }
        if !self.downstream.contains_key(name) {
            self.downstream.insert(name.to_string(), BTreeSet::new());
        }
    }

    /// Adds the edge `from -> to` (`to` reads `from`). Both nodes must already exist.
    pub fn add_edge(&mut self, from: &str, to: &str) {
        self.add_node(from);
        self.add_node(to);
        if let Some(ups) = self.upstream.get_mut(to) {
            ups.insert(from.to_string());
        }
        if let Some(downs) = self.downstream.get_mut(from) {
            downs.insert(to.to_string());
        }
    }

    /// Whether `name` is a node.
    pub fn contains(&self, name: &str) -> bool {
        self.upstream.contains_key(name)
    }

    /// All node names, sorted.
    pub fn nodes(&self) -> impl Iterator<Item = &str> {
        self.upstream.keys().map(String::as_str)
    }

    /// The direct upstream of `name`.
    pub fn parents(&self, name: &str) -> impl Iterator<Item = &str> {
        self.upstream
            .get(name)
            .into_iter()
            .flat_map(|s| s.iter().map(String::as_str))
    }

    /// The direct downstream of `name`.
    pub fn children(&self, name: &str) -> impl Iterator<Item = &str> {
        self.downstream
            .get(name)
            .into_iter()
            .flat_map(|s| s.iter().map(String::as_str))
    }

    /// Every `(from, to)` edge.
    pub fn edges(&self) -> Vec<(String, String)> {
        self.downstream
            .iter()
            .flat_map(|(from, tos)| tos.iter().map(move |to| (from.clone(), to.clone())))
            .collect()
    }

    /// Finds a cycle, returned closed (`[a, b, c, a]`), or `None` if the graph is acyclic.
    pub fn find_cycle(&self) -> Option<Vec<String>> {
        #[derive(Clone, Copy, PartialEq)]
        enum Mark {
            Visiting,
            Done,
        }
        let mut marks: BTreeMap<&str, Mark> = BTreeMap::new();
        for start in self.nodes() {
            if marks.contains_key(start) {
                continue;
            }
            // Iterative DFS keeping the current path so the cycle can be spelled out.
            let mut path: Vec<&str> = vec![start];
            let mut iters: Vec<Vec<&str>> = vec![self.children(start).collect()];
            marks.insert(start, Mark::Visiting);
            while let Some(children) = iters.last_mut() {
                if let Some(next) = children.pop() {
                    match marks.get(next) {
                        Some(Mark::Visiting) => {
                            let pos = path.iter().position(|n| *n == next).unwrap_or(0);
                            let mut cycle: Vec<String> =
                                path[pos..].iter().map(|s| s.to_string()).collect();
                            cycle.push(next.to_string());
                            return Some(cycle);
                        }
                        Some(Mark::Done) => {}
                        None => {
                            marks.insert(next, Mark::Visiting);
                            path.push(next);
                            let mut kids: Vec<&str> = self.children(next).collect();
                            kids.reverse();
                            iters.push(kids);
                        }
                    }
                } else {
                    iters.pop();
                    if let Some(done) = path.pop() {
                        marks.insert(done, Mark::Done);
                    }
                }
            }
        }
        None
    }

    /// Nodes in topological order (upstream first); ties broken by name for stable output.
    pub fn topological_order(&self) -> Result<Vec<String>, GraphError> {
        let mut indegree: BTreeMap<&str, usize> = self
            .upstream
            .iter()
            .map(|(k, v)| (k.as_str(), v.len()))
            .collect();
        let mut ready: VecDeque<&str> = indegree
            .iter()
            .filter(|(_, d)| **d == 0)
            .map(|(k, _)| *k)
            .collect();
        let mut order = Vec::with_capacity(indegree.len());
        while let Some(n) = ready.pop_front() {
            order.push(n.to_string());
            for c in self.children(n) {
                if let Some(d) = indegree.get_mut(c) {
                    *d -= 1;
                    if *d == 0 {
                        ready.push_back(c);
                    }
                }
            }
        }
        // Nodes on a cycle never reach indegree 0; only then is the cycle searched for and spelled out.
        if order.len() < indegree.len()
            && let Some(cycle) = self.find_cycle()
        {
            return Err(GraphError::Cycle(cycle));
        }
        Ok(order)
    }

    /// Every node reachable downstream of `name` (not including it).
    pub fn descendants(&self, name: &str) -> BTreeSet<String> {
        self.walk(name, |n| self.children(n).collect())
    }

    /// Every node reachable upstream of `name` (not including it).
    pub fn ancestors(&self, name: &str) -> BTreeSet<String> {
        self.walk(name, |n| self.parents(n).collect())
    }

    fn walk<'a>(&'a self, name: &str, next: impl Fn(&str) -> Vec<&'a str>) -> BTreeSet<String> {
        let mut seen = BTreeSet::new();
        let mut queue: Vec<String> = next(name).into_iter().map(str::to_string).collect();
        while let Some(n) = queue.pop() {
            if seen.insert(n.clone()) {
                queue.extend(next(&n).into_iter().map(str::to_string));
            }
        }
        seen
    }
}

/// The closest name in `candidates` to `name` by edit distance, if it is close enough to be a likely typo.
pub fn suggest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for c in candidates {
        let d = levenshtein(name, c);
        if d <= (name.len().max(3) / 3).max(2) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c.to_string())
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != *cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(edges: &[(&str, &str)]) -> AssetGraph {
        let mut g = AssetGraph::new();
        for (a, b) in edges {
            g.add_edge(a, b);
        }
        g
    }

    #[test]
    fn topo_order_respects_edges() {
        let g = graph(&[
            ("src", "stg"),
            ("stg", "fct"),
            ("src", "fct"),
            ("fct", "mart"),
        ]);
        let order = g.topological_order().unwrap();
        let pos = |n: &str| order.iter().position(|x| x == n).unwrap();
        assert!(pos("src") < pos("stg") && pos("stg") < pos("fct") && pos("fct") < pos("mart"));
    }

    #[test]
    fn cycle_is_named() {
        let g = graph(&[("a", "b"), ("b", "c"), ("c", "a"), ("x", "a")]);
        let err = g.topological_order().unwrap_err();
        assert_eq!(err.to_string(), "cycle: a -> b -> c -> a");
    }

    #[test]
    fn selection_plus_syntax() {
        let g = graph(&[
            ("s.t", "stg"),
            ("stg", "fct"),
            ("fct", "mart"),
            ("other", "x"),
        ]);
        let none = crate::selector::TagsOnly(|_: &str| Vec::new());
        let none = &none;
        let sel = crate::selector::select_nodes(&g, "stg+", none).unwrap();
        assert_eq!(sel.into_iter().collect::<Vec<_>>(), ["fct", "mart", "stg"]);
        let sel = crate::selector::select_nodes(&g, "+fct", none).unwrap();
        assert_eq!(sel.into_iter().collect::<Vec<_>>(), ["fct", "s.t", "stg"]);
        let sel = crate::selector::select_nodes(&g, "t", none).unwrap();
        assert_eq!(sel.into_iter().collect::<Vec<_>>(), ["s.t"]);
        assert!(crate::selector::select_nodes(&g, "nope", none).is_err());
        let tags = crate::selector::TagsOnly(|n: &str| {
            if n == "x" {
                vec!["daily".to_string()]
            } else {
                vec![]
            }
        });
        assert_eq!(
            crate::selector::select_nodes(&g, "tag:daily", &tags)
                .unwrap()
                .len(),
            1
        );
    }

    #[test]
    fn suggestions() {
        assert_eq!(
            suggest("stg_order", ["stg_orders", "fct_orders"]).as_deref(),
            Some("stg_orders")
        );
        assert_eq!(suggest("zzz", ["stg_orders"]), None);
    }
}
