//! The dependency graph between milestones: an edge `a -> b` means `a`
//! requires `b` (from `a`'s `dependencies.requires`, or from `b`'s
//! `dependencies.enables`). Finds cycles, missing targets, the critical path
//! and one milestone's transitive neighbourhood.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use milestones_protocol::{DepEdge, DepsFocus, Map};

use crate::document;

#[derive(Debug, Default)]
pub struct DependencyGraph {
    nodes: BTreeSet<String>,
    requires: BTreeMap<String, BTreeSet<String>>,
}

impl DependencyGraph {
    /// Builds the graph from documents. `replacing` substitutes one document
    /// (a change not yet stored) for the stored version with the same id.
    pub fn build<'a>(docs: impl Iterator<Item = &'a Map>, replacing: Option<&'a Map>) -> Self {
        let skip = replacing.and_then(document::id);
        let mut graph = DependencyGraph::default();
        for doc in docs.filter(|d| skip.is_none() || document::id(d) != skip).chain(replacing) {
            graph.add_document(doc);
        }
        graph
    }

    /// Adds a milestone and the edges its document declares.
    pub fn add_document(&mut self, doc: &Map) {
        let Some(id) = document::id(doc) else { return };
        self.add_node(id);
        for edge in declared_edges(doc) {
            self.add_edge(&edge.from, &edge.to);
        }
    }

    pub fn add_node(&mut self, id: &str) {
        self.nodes.insert(id.to_owned());
    }

    pub fn add_edge(&mut self, from: &str, to: &str) {
        self.requires.entry(from.to_owned()).or_default().insert(to.to_owned());
    }

    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    pub fn edges(&self) -> Vec<DepEdge> {
        self.requires
            .iter()
            .flat_map(|(from, tos)| tos.iter().map(|to| DepEdge { from: from.clone(), to: to.clone() }))
            .collect()
    }

    /// Edges whose source or target is not a known milestone.
    pub fn missing(&self) -> Vec<DepEdge> {
        self.edges().into_iter().filter(|e| !self.nodes.contains(&e.to) || !self.nodes.contains(&e.from)).collect()
    }

    /// Every cycle, one per strongly connected component, each as the ids
    /// along it with the first repeated at the end.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let mut cycles = Vec::new();
        for component in self.strongly_connected() {
            let first = &component[0];
            let self_loop = self.requires.get(first).is_some_and(|t| t.contains(first));
            if component.len() > 1 || self_loop {
                let members: BTreeSet<&String> = component.iter().collect();
                cycles.push(self.cycle_through(first, &members));
            }
        }
        cycles.sort();
        cycles
    }

    /// The cycle that `id` is part of, if any.
    pub fn cycle_containing(&self, id: &str) -> Option<Vec<String>> {
        self.cycles().into_iter().find(|c| c.iter().any(|n| n == id)).map(|c| rotate_to(c, id))
    }

    /// A path from `start` back to itself inside one component.
    fn cycle_through(&self, start: &String, members: &BTreeSet<&String>) -> Vec<String> {
        // Breadth-first search for the shortest way back to `start`.
        let mut parent: HashMap<&String, &String> = HashMap::new();
        let mut queue = std::collections::VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            for next in self.requires.get(node).into_iter().flatten() {
                if !members.contains(next) {
                    continue;
                }
                if next == start {
                    let mut path = vec![node.clone()];
                    let mut cur = node;
                    while cur != start {
                        cur = parent[cur];
                        path.push(cur.clone());
                    }
                    path.reverse();
                    path.push(start.clone());
                    return path;
                }
                if !parent.contains_key(next) {
                    parent.insert(next, node);
                    queue.push_back(next);
                }
            }
        }
        vec![start.clone(), start.clone()]
    }

    /// Tarjan's algorithm, iteratively (a deep chain must not overflow the
    /// stack).
    fn strongly_connected(&self) -> Vec<Vec<String>> {
        let all: BTreeSet<&String> = self.nodes.iter().chain(self.requires.keys()).collect();
        let mut index: HashMap<&String, usize> = HashMap::new();
        let mut low: HashMap<&String, usize> = HashMap::new();
        let mut on_stack: BTreeSet<&String> = BTreeSet::new();
        let mut stack: Vec<&String> = Vec::new();
        let mut out = Vec::new();
        let mut counter = 0;
        let empty = BTreeSet::new();
        for root in &all {
            if index.contains_key(root) {
                continue;
            }
            let mut work: Vec<(&String, Vec<&String>)> = Vec::new();
            index.insert(root, counter);
            low.insert(root, counter);
            counter += 1;
            stack.push(root);
            on_stack.insert(root);
            work.push((root, self.requires.get(*root).unwrap_or(&empty).iter().rev().collect()));
            while let Some((node, pending)) = work.last_mut() {
                let node: &String = node;
                if let Some(next) = pending.pop() {
                    if !index.contains_key(next) {
                        index.insert(next, counter);
                        low.insert(next, counter);
                        counter += 1;
                        stack.push(next);
                        on_stack.insert(next);
                        work.push((next, self.requires.get(next).unwrap_or(&empty).iter().rev().collect()));
                    } else if on_stack.contains(next) {
                        let l = low[node].min(index[next]);
                        low.insert(node, l);
                    }
                    continue;
                }
                work.pop();
                if let Some((parent, _)) = work.last() {
                    let l = low[*parent].min(low[node]);
                    low.insert(parent, l);
                }
                if low[node] == index[node] {
                    let mut component = Vec::new();
                    while let Some(member) = stack.pop() {
                        on_stack.remove(member);
                        component.push(member.clone());
                        if member == node {
                            break;
                        }
                    }
                    component.sort();
                    out.push(component);
                }
            }
        }
        out
    }

    /// The longest chain of requirements, listed from the first milestone to
    /// finish to the last. Milestones on cycles are left out.
    pub fn critical_path(&self) -> Vec<String> {
        let in_cycle: BTreeSet<String> = self.cycles().into_iter().flatten().collect();
        // longest[n] = length of the longest chain starting at n (n first).
        let mut longest: HashMap<&String, (usize, Option<&String>)> = HashMap::new();
        let order = self.topological_order(&in_cycle);
        for node in order.iter().rev() {
            let best = self
                .requires
                .get(*node)
                .into_iter()
                .flatten()
                .filter(|t| !in_cycle.contains(*t))
                .filter_map(|t| longest.get(t).map(|(len, _)| (*len, t)))
                .max_by(|a, b| a.0.cmp(&b.0).then_with(|| b.1.cmp(a.1)));
            longest.insert(node, best.map_or((1, None), |(len, t)| (len + 1, Some(t))));
        }
        let Some(start) = longest
            .iter()
            .max_by(|a, b| a.1 .0.cmp(&b.1 .0).then_with(|| b.0.cmp(a.0)))
            .map(|(n, _)| *n)
        else {
            return Vec::new();
        };
        let mut chain = vec![start.clone()];
        let mut cur = start;
        while let Some((_, Some(next))) = longest.get(cur) {
            chain.push((*next).clone());
            cur = next;
        }
        chain.reverse();
        chain
    }

    /// Nodes ordered so that each comes before everything it requires.
    fn topological_order<'a>(&'a self, skip: &BTreeSet<String>) -> Vec<&'a String> {
        let all: BTreeSet<&String> =
            self.nodes.iter().chain(self.requires.values().flatten()).chain(self.requires.keys()).collect();
        let mut indegree: HashMap<&String, usize> = all.iter().map(|n| (*n, 0)).collect();
        for (from, tos) in &self.requires {
            if skip.contains(from) {
                continue;
            }
            for to in tos.iter().filter(|t| !skip.contains(*t)) {
                *indegree.entry(to).or_default() += 1;
            }
        }
        let mut ready: Vec<&String> =
            all.iter().filter(|n| !skip.contains(**n) && indegree[**n] == 0).copied().collect();
        let mut order = Vec::new();
        while let Some(n) = ready.pop() {
            order.push(n);
            for to in self.requires.get(n).into_iter().flatten().filter(|t| !skip.contains(*t)) {
                let d = indegree.entry(to).or_default();
                *d -= 1;
                if *d == 0 {
                    ready.push(to);
                }
            }
        }
        order
    }

    pub fn focus(&self, id: &str) -> DepsFocus {
        let mut required_by_map: BTreeMap<&String, Vec<&String>> = BTreeMap::new();
        for (from, tos) in &self.requires {
            for to in tos {
                required_by_map.entry(to).or_default().push(from);
            }
        }
        let requires = reach(id, |n| self.requires.get(n).map(|s| s.iter().collect()).unwrap_or_default());
        let required_by = reach(id, |n| required_by_map.get(&n.to_owned()).cloned().unwrap_or_default());
        DepsFocus { id: id.to_owned(), requires, required_by }
    }

    /// Longest requirement chain length, for analytics.
    pub fn longest_chain(&self) -> u64 {
        self.critical_path().len() as u64
    }
}

/// The edges one document declares: its own `requires`, and an edge from
/// each milestone it `enables` to itself. Database backends store exactly
/// these rows, so a graph rebuilt from them equals one built from documents.
pub fn declared_edges(doc: &Map) -> Vec<DepEdge> {
    let Some(id) = document::id(doc) else { return Vec::new() };
    let requires = document::requires(doc).map(|to| DepEdge { from: id.to_owned(), to: to.to_owned() });
    let enables = document::enables(doc).map(|from| DepEdge { from: from.to_owned(), to: id.to_owned() });
    requires.chain(enables).collect()
}

fn reach<'a>(start: &str, next: impl Fn(&str) -> Vec<&'a String>) -> Vec<String> {
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut todo = vec![start.to_owned()];
    while let Some(n) = todo.pop() {
        for m in next(&n) {
            if m != start && seen.insert(m.clone()) {
                todo.push(m.clone());
            }
        }
    }
    seen.into_iter().collect()
}

fn rotate_to(mut cycle: Vec<String>, id: &str) -> Vec<String> {
    cycle.pop();
    if let Some(pos) = cycle.iter().position(|n| n == id) {
        cycle.rotate_left(pos);
    }
    cycle.push(cycle[0].clone());
    cycle
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs(spec: &[(&str, &[&str])]) -> Vec<Map> {
        spec.iter()
            .map(|(id, reqs)| {
                let yaml = format!("id: {id}\ndependencies:\n  requires: [{}]\n", reqs.join(", "));
                crate::yaml::parse_document(&yaml, "test").unwrap()
            })
            .collect()
    }

    #[test]
    fn finds_cycles_and_the_critical_path() {
        let d = docs(&[("a", &["b"]), ("b", &["c"]), ("c", &[]), ("x", &["y"]), ("y", &["x"])]);
        let g = DependencyGraph::build(d.iter(), None);
        assert_eq!(g.cycles(), vec![vec!["x".to_string(), "y".into(), "x".into()]]);
        assert_eq!(g.critical_path(), vec!["c".to_string(), "b".into(), "a".into()]);
        assert_eq!(g.cycle_containing("y"), Some(vec!["y".to_string(), "x".into(), "y".into()]));
        let f = g.focus("b");
        assert_eq!(f.requires, vec!["c".to_string()]);
        assert_eq!(f.required_by, vec!["a".to_string()]);
    }

    #[test]
    fn a_replacement_that_closes_a_loop_is_seen() {
        let d = docs(&[("a", &["b"]), ("b", &[])]);
        let change = docs(&[("b", &["a"])]).remove(0);
        let g = DependencyGraph::build(d.iter(), Some(&change));
        assert_eq!(g.cycle_containing("b"), Some(vec!["b".to_string(), "a".into(), "b".into()]));
    }

    #[test]
    fn deep_chains_do_not_overflow() {
        let ids: Vec<String> = (0..20_000).map(|i| format!("m{i}")).collect();
        let d: Vec<Map> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let next = ids.get(i + 1).map(|n| format!("[{n}]")).unwrap_or("[]".into());
                crate::yaml::parse_document(&format!("id: {id}\ndependencies: {{requires: {next}}}\n"), "t").unwrap()
            })
            .collect();
        let g = DependencyGraph::build(d.iter(), None);
        assert!(g.cycles().is_empty());
        assert_eq!(g.longest_chain(), 20_000);
    }
}
