//! The dependency graph between milestones: an edge `a -> b` means `a`
//! requires `b` (from `a`'s `dependencies.requires`, or from `b`'s
//! `dependencies.enables`). Finds cycles, missing targets, the critical path
//! and one milestone's transitive neighbourhood.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::hash::BuildHasher;
use std::sync::OnceLock;

mod paths;

use hashbrown::HashTable;
use milestones_protocol::{DepEdge, DependencyFigures, DepsFocus, Map};

use self::paths::Paths;
use crate::document;

/// Ids are interned to indices, so that graphs of a hundred thousand
/// milestones are walked over integers rather than strings.
#[derive(Default, Clone)]
pub struct DependencyGraph {
    names: Names,
    /// Each name's place in `names`, found by the name. Asked twice per
    /// edge while the graph is built: hashed fast, and the names are not
    /// held twice.
    index: HashTable<usize>,
    hasher: foldhash::fast::RandomState,
    /// True for milestones; false for ids seen only at the end of an edge.
    milestone: Vec<bool>,
    requires: Vec<Vec<usize>>,
    /// The cycles, the critical path and what requires each node, worked
    /// out once: a graph a store keeps answers many requests. A change to
    /// one milestone is followed where `Paths` can; otherwise they are
    /// worked out afresh on first use.
    worked_out: OnceLock<Paths>,
    /// Each node's place among the names sorted, for breaking ties by name
    /// without comparing strings.
    rank: OnceLock<Vec<u32>>,
}

impl std::fmt::Debug for DependencyGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = (0..self.names.len()).map(|i| &self.names[i]).collect();
        f.debug_struct("DependencyGraph").field("names", &names).field("requires", &self.requires).finish()
    }
}

/// The node names, end to end in one buffer: a graph of a hundred
/// thousand names is two allocations, not a hundred thousand, and finding
/// one touches its bytes directly.
#[derive(Default, Clone)]
struct Names {
    text: String,
    /// Where each name ends in `text`.
    ends: Vec<usize>,
}

impl Names {
    fn len(&self) -> usize {
        self.ends.len()
    }

    fn push(&mut self, name: &str) {
        self.text.push_str(name);
        self.ends.push(self.text.len());
    }
}

impl std::ops::Index<usize> for Names {
    type Output = str;

    fn index(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.text[start..self.ends[i]]
    }
}

impl DependencyGraph {
    /// A graph with room for `nodes` milestones: growing its index would
    /// hash every name again each time.
    pub fn with_capacity(nodes: usize) -> Self {
        let mut graph = DependencyGraph::default();
        graph.index.reserve(nodes, |_| 0);
        graph.names.ends.reserve(nodes);
        graph.milestone.reserve(nodes);
        graph.requires.reserve(nodes);
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

    fn intern(&mut self, id: &str) -> usize {
        let hash = self.hasher.hash_one(id);
        if let Some(&i) = self.index.find(hash, |&i| &self.names[i] == id) {
            return i;
        }
        // A kept graph's paths take the new node in; its ranks are sorted
        // again when next asked for.
        if let Some(paths) = self.worked_out.get_mut() {
            paths.add_node();
        }
        self.rank = OnceLock::new();
        let i = self.names.len();
        self.names.push(id);
        let (names, hasher) = (&self.names, &self.hasher);
        self.index.insert_unique(hash, i, |&j| hasher.hash_one(&names[j]));
        self.milestone.push(false);
        self.requires.push(Vec::new());
        i
    }

    /// Where `id` is in `names`.
    fn position(&self, id: &str) -> Option<usize> {
        self.index.find(self.hasher.hash_one(id), |&i| &self.names[i] == id).copied()
    }

    /// Orders nodes by name, through their ranks.
    fn by_name(&self, a: usize, b: usize) -> std::cmp::Ordering {
        let rank = self.rank.get_or_init(|| {
            // Stores add most ids in order: a stable sort finds the runs.
            let mut order: Vec<usize> = (0..self.names.len()).collect();
            order.sort_by(|a, b| self.names[*a].cmp(&self.names[*b]));
            let mut rank = vec![0; order.len()];
            for (place, node) in order.into_iter().enumerate() {
                rank[node] = place as u32;
            }
            rank
        });
        rank[a].cmp(&rank[b])
    }

    pub fn add_node(&mut self, id: &str) {
        let i = self.intern(id);
        self.milestone[i] = true;
    }

    /// Marks `id` as a milestone, or as one no longer (its name stays
    /// while edges name it).
    pub fn set_milestone(&mut self, id: &str, milestone: bool) {
        let i = self.intern(id);
        if self.milestone[i] != milestone {
            self.milestone[i] = milestone;
            if let Some(mut paths) = self.worked_out.take() {
                paths.follow_milestone(self);
                self.worked_out = OnceLock::from(paths);
            }
        }
    }

    /// Puts `to` in place of whatever `from` required until now: a store
    /// that keeps its graph between writes passes each milestone whose
    /// edges a write changed.
    pub fn set_requires<'a>(&mut self, from: &str, to: impl IntoIterator<Item = &'a str>) {
        let f = self.intern(from);
        let mut requires: Vec<usize> = Vec::new();
        for to in to {
            let t = self.intern(to);
            if !requires.contains(&t) {
                requires.push(t);
            }
        }
        let old = std::mem::replace(&mut self.requires[f], requires);
        if old == self.requires[f] {
            return;
        }
        // Followed while it can be; worked out afresh on first use if not.
        if let Some(mut paths) = self.worked_out.take() {
            if paths.follow_requires(self, f, &old) {
                self.worked_out = OnceLock::from(paths);
            }
        }
    }

    pub fn add_edge(&mut self, from: &str, to: &str) {
        let (f, t) = (self.intern(from), self.intern(to));
        if !self.requires[f].contains(&t) {
            self.forget_worked_out();
            self.requires[f].push(t);
        }
    }

    /// Forgets what was worked out from the edges (not the names' ranks,
    /// which only a new name changes).
    fn forget_worked_out(&mut self) {
        self.worked_out = OnceLock::new();
    }

    /// Works out the cycles, the critical path and the edges the other way
    /// round now, so that every request that shares this graph finds them.
    pub fn work_out(&self) {
        self.paths();
    }

    pub fn node_count(&self) -> usize {
        self.milestone.iter().filter(|m| **m).count()
    }

    fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Every edge, ordered by source then target.
    pub fn edges(&self) -> Vec<DepEdge> {
        let mut edges: Vec<DepEdge> = self.edge_indices().map(|(f, t)| self.edge(f, t)).collect();
        edges.sort();
        edges
    }

    fn edge_indices(&self) -> impl Iterator<Item = (usize, usize)> + Clone + '_ {
        self.requires.iter().enumerate().flat_map(|(f, tos)| tos.iter().map(move |t| (f, *t)))
    }

    fn edge(&self, from: usize, to: usize) -> DepEdge {
        DepEdge { from: self.names[from].to_owned(), to: self.names[to].to_owned() }
    }

    /// Edges whose source or target is not a known milestone.
    pub fn missing(&self) -> Vec<DepEdge> {
        let mut missing: Vec<DepEdge> = self
            .edge_indices()
            .filter(|(f, t)| !self.milestone[*f] || !self.milestone[*t])
            .map(|(f, t)| self.edge(f, t))
            .collect();
        missing.sort();
        missing
    }

    /// Every cycle, one per strongly connected component, each as the ids
    /// along it with the first repeated at the end.
    pub fn cycles(&self) -> Vec<Vec<String>> {
        let mut cycles: Vec<Vec<String>> =
            self.cycle_indices().iter().map(|c| c.iter().map(|i| self.names[*i].to_owned()).collect()).collect();
        cycles.sort();
        cycles
    }

    fn cycle_indices(&self) -> &[Vec<usize>] {
        &self.paths().cycles
    }

    fn paths(&self) -> &Paths {
        self.worked_out.get_or_init(|| Paths::find(self))
    }

    /// Neighbours in name order, so that every walk is deterministic.
    fn sorted_requires(&self, node: usize) -> Vec<usize> {
        let mut next = self.requires[node].clone();
        next.sort_by(|a, b| self.by_name(*a, *b));
        next
    }

    /// The shortest path from `start` back to itself inside one component.
    fn cycle_through(&self, start: usize, members: &HashSet<usize>) -> Vec<usize> {
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([start]);
        while let Some(node) = queue.pop_front() {
            for next in self.sorted_requires(node) {
                if !members.contains(&next) {
                    continue;
                }
                if next == start {
                    let mut path = vec![node];
                    let mut cur = node;
                    while cur != start {
                        cur = parent[&cur];
                        path.push(cur);
                    }
                    path.reverse();
                    path.push(start);
                    return path;
                }
                parent.entry(next).or_insert_with(|| {
                    queue.push_back(next);
                    node
                });
            }
        }
        vec![start, start]
    }

    /// The longest chain of requirements, listed from the first milestone to
    /// finish to the last. Milestones on cycles are left out.
    pub fn critical_path(&self) -> Vec<String> {
        self.critical_indices().iter().map(|i| self.names[*i].to_owned()).collect()
    }

    fn critical_indices(&self) -> &[usize] {
        &self.paths().critical
    }

    /// The edges between the milestones of `focus` (its id, what it
    /// requires and what requires it), and those of them that are
    /// missing, each ordered as [`Self::edges`] and [`Self::missing`].
    pub fn edges_within(&self, focus: &DepsFocus) -> (Vec<DepEdge>, Vec<DepEdge>) {
        let part: HashSet<usize> = std::iter::once(&focus.id)
            .chain(&focus.requires)
            .chain(&focus.required_by)
            .filter_map(|id| self.position(id))
            .collect();
        let (mut edges, mut missing) = (Vec::new(), Vec::new());
        for &from in &part {
            for &to in self.requires[from].iter().filter(|to| part.contains(to)) {
                edges.push(self.edge(from, to));
                if !self.milestone[from] || !self.milestone[to] {
                    missing.push(self.edge(from, to));
                }
            }
        }
        edges.sort();
        missing.sort();
        (edges, missing)
    }

    pub fn focus(&self, id: &str) -> DepsFocus {
        let (requires, required_by) = match self.position(id) {
            Some(start) => {
                let required_by = &self.paths().required_by;
                (self.reach(start, |n| &self.requires[n]), self.reach(start, |n| &required_by[n]))
            }
            None => (Vec::new(), Vec::new()),
        };
        DepsFocus { id: id.to_owned(), requires, required_by }
    }

    /// Every node reachable from `start` along `next`, by name.
    fn reach<'a>(&self, start: usize, next: impl Fn(usize) -> &'a [usize]) -> Vec<String> {
        let mut seen: BTreeSet<&str> = BTreeSet::new();
        let mut visited = vec![false; self.names.len()];
        let mut todo = vec![start];
        while let Some(n) = todo.pop() {
            for &m in next(n) {
                if m != start && !visited[m] {
                    visited[m] = true;
                    seen.insert(self.name(m));
                    todo.push(m);
                }
            }
        }
        seen.into_iter().map(str::to_owned).collect()
    }

    /// Longest requirement chain length.
    pub fn longest_chain(&self) -> u64 {
        self.critical_indices().len() as u64
    }

    /// The figures `stats` gives of the graph.
    pub fn figures(&self) -> DependencyFigures {
        let requiring = self.requires.iter().map(Vec::len).filter(|n| *n > 0);
        DependencyFigures {
            total: self.requires.iter().map(|r| r.len() as u64).sum(),
            milestones_with_dependencies: requiring.clone().count() as u64,
            max_per_milestone: requiring.max().unwrap_or(0) as u64,
            longest_chain: self.longest_chain(),
        }
    }
}

/// The shortest cycle through `start`, found by walking outward with `next`
/// (the ids a milestone requires) and never looking at the rest of the
/// graph: a write checks its own neighbourhood, not the whole project.
/// Returns the ids along the cycle, `start` first and last.
pub fn find_cycle_through<E>(
    start: &str,
    mut next: impl FnMut(&str) -> Result<Vec<String>, E>,
) -> Result<Option<Vec<String>>, E> {
    let mut parent: HashMap<String, String> = HashMap::new();
    let mut queue = VecDeque::from([start.to_owned()]);
    while let Some(node) = queue.pop_front() {
        let mut targets = next(&node)?;
        targets.sort();
        for target in targets {
            if target == start {
                let mut path = vec![node.clone()];
                let mut cur = &node;
                while cur != start {
                    cur = &parent[cur];
                    path.push(cur.clone());
                }
                path.reverse();
                path.push(start.to_owned());
                return Ok(Some(path));
            }
            if !parent.contains_key(&target) {
                parent.insert(target.clone(), node.clone());
                queue.push_back(target);
            }
        }
    }
    Ok(None)
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

#[cfg(test)]
mod tests {
    use super::*;

    fn build(docs: &[Map]) -> DependencyGraph {
        let mut graph = DependencyGraph::default();
        docs.iter().for_each(|d| graph.add_document(d));
        graph
    }

    fn docs(spec: &[(&str, &[&str])]) -> Vec<Map> {
        spec.iter()
            .map(|(id, reqs)| {
                let yaml = format!("id: {id}\ndependencies:\n  requires: [{}]\n", reqs.join(", "));
                crate::yaml::parse_document(&yaml, "test").unwrap()
            })
            .collect()
    }

    /// A graph works its cycles and critical path out once, and again
    /// after any change (a store keeps one graph for many requests).
    #[test]
    fn what_was_worked_out_follows_changes() {
        let mut g = build(&docs(&[("a", &["b"]), ("b", &[])]));
        g.work_out();
        assert_eq!((g.cycles().len(), g.longest_chain()), (0, 2));
        g.add_edge("b", "c");
        assert_eq!(g.critical_path(), vec!["c".to_string(), "b".into(), "a".into()], "a new edge and node");
        assert_eq!(g.focus("c").required_by, ["a", "b"], "what requires a new node");
        g.add_edge("c", "a");
        assert_eq!(g.cycles(), vec![vec!["a".to_string(), "b".into(), "c".into(), "a".into()]], "a new cycle");
        assert_eq!(g.critical_path(), Vec::<String>::new(), "every milestone is on the cycle");
    }

    #[test]
    fn finds_cycles_and_the_critical_path() {
        let d = docs(&[("a", &["b"]), ("b", &["c"]), ("c", &[]), ("x", &["y"]), ("y", &["x"])]);
        let g = build(&d);
        assert_eq!(g.cycles(), vec![vec!["x".to_string(), "y".into(), "x".into()]]);
        assert_eq!(g.critical_path(), vec!["c".to_string(), "b".into(), "a".into()]);
        let f = g.focus("b");
        assert_eq!(f.requires, vec!["c".to_string()]);
        assert_eq!(f.required_by, vec!["a".to_string()]);
    }

    #[test]
    fn a_cycle_is_found_by_walking_out_from_one_milestone() {
        let edges: HashMap<&str, Vec<&str>> = [("a", vec!["b"]), ("b", vec!["c", "d"]), ("d", vec!["a"])].into();
        let next = |n: &str| Ok::<_, ()>(edges.get(n).into_iter().flatten().map(|s| s.to_string()).collect());
        assert_eq!(find_cycle_through("b", next), Ok(Some(vec!["b".to_string(), "d".into(), "a".into(), "b".into()])));
        assert_eq!(find_cycle_through("c", next), Ok(None));
    }

    /// The critical path on many small random graphs, cycles among them,
    /// against a chain found by the definition: the longest chain of
    /// requirements among milestones on no cycle (a cycle: a milestone
    /// that can reach itself), ties going to the smaller ids.
    #[test]
    fn the_critical_path_is_the_longest_chain_off_every_cycle() {
        let mut seed: u64 = 0x5eed;
        let mut random = |below: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % below
        };
        for _ in 0..300 {
            let n = 2 + random(14) as usize;
            let names: Vec<String> = (0..n).map(|i| format!("m{i:02}")).collect();
            let requires: Vec<Vec<usize>> =
                (0..n).map(|_| (0..random(4)).map(|_| random(n as u64) as usize).collect()).collect();
            let spec: Vec<(&str, Vec<&str>)> = names
                .iter()
                .zip(&requires)
                .map(|(name, r)| (name.as_str(), r.iter().map(|t| names[*t].as_str()).collect()))
                .collect();
            let spec: Vec<(&str, &[&str])> = spec.iter().map(|(name, r)| (*name, r.as_slice())).collect();
            let g = build(&docs(&spec));

            let reaches = |from: usize, to: usize| {
                let (mut seen, mut todo) = (vec![false; n], requires[from].clone());
                while let Some(at) = todo.pop() {
                    if at == to {
                        return true;
                    }
                    if !std::mem::replace(&mut seen[at], true) {
                        todo.extend(&requires[at]);
                    }
                }
                false
            };
            let on_cycle: Vec<bool> = (0..n).map(|i| reaches(i, i)).collect();
            // Longest chain from each node, by names: (length, chain).
            fn chain(at: usize, requires: &[Vec<usize>], on_cycle: &[bool], names: &[String]) -> Vec<String> {
                let mut best: Vec<String> = Vec::new();
                let mut targets: Vec<usize> = requires[at].iter().copied().filter(|t| !on_cycle[*t]).collect();
                targets.sort_by(|a, b| names[*a].cmp(&names[*b]));
                for t in targets {
                    let c = chain(t, requires, on_cycle, names);
                    if c.len() > best.len() {
                        best = c;
                    }
                }
                best.push(names[at].clone());
                best
            }
            let mut expected: Vec<String> = Vec::new();
            for i in (0..n).filter(|i| !on_cycle[*i]) {
                let c = chain(i, &requires, &on_cycle, &names);
                if c.len() > expected.len() {
                    expected = c;
                }
            }
            assert_eq!(g.critical_path(), expected, "requires: {requires:?}");
            let cyclic: BTreeSet<String> = g.cycles().into_iter().flatten().collect();
            let on: BTreeSet<String> = (0..n).filter(|i| on_cycle[*i]).map(|i| names[i].clone()).collect();
            assert!(cyclic.is_subset(&on), "a cycle through milestones on none: {cyclic:?}, {requires:?}");
        }
    }

    /// A graph kept between changes, each change followed (or its paths
    /// worked out afresh), answers as one built from scratch after every
    /// change: random requirements and milestones coming and going.
    #[test]
    fn a_followed_graph_answers_as_one_built_afresh() {
        struct Random(u64);
        impl Random {
            fn below(&mut self, bound: usize) -> usize {
                self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((self.0 >> 33) % bound as u64) as usize
            }
            /// What a node requires: mostly nodes before it (a cycle now
            /// and then).
            fn requires(&mut self, from: usize, n: usize) -> Vec<usize> {
                let count = self.below(3);
                (0..count).map(|_| if self.below(8) == 0 { self.below(n) } else { self.below(from + 1) }).collect()
            }
        }
        let mut random = Random(0xf011);
        for _ in 0..200 {
            let n = 2 + random.below(40);
            let names: Vec<String> = (0..n).map(|i| format!("m{i:02}")).collect();
            let mut requires: Vec<Vec<usize>> = (0..n).map(|from| random.requires(from, n)).collect();
            let mut milestone = vec![true; n];
            let fresh = |requires: &[Vec<usize>], milestone: &[bool]| {
                let mut g = DependencyGraph::default();
                for i in (0..n).filter(|i| milestone[*i]) {
                    g.add_node(&names[i]);
                }
                for (from, tos) in requires.iter().enumerate() {
                    tos.iter().for_each(|to| g.add_edge(&names[from], &names[*to]));
                }
                g
            };
            let answers = |g: &DependencyGraph| {
                let focus: Vec<_> = names.iter().map(|id| g.focus(id)).collect();
                (g.edges(), g.missing(), g.cycles(), g.critical_path(), g.node_count(), g.figures(), focus)
            };
            let mut kept = fresh(&requires, &milestone);
            for _ in 0..25 {
                let node = random.below(n);
                if random.below(4) == 0 {
                    milestone[node] = !milestone[node];
                    kept.set_milestone(&names[node], milestone[node]);
                } else {
                    requires[node] = random.requires(node, n);
                    kept.set_requires(&names[node], requires[node].iter().map(|t| names[*t].as_str()));
                }
                // A milestone that went takes its edges with it, as in a store.
                if !milestone[node] {
                    requires[node].clear();
                    kept.set_requires(&names[node], []);
                }
                assert_eq!(
                    answers(&kept),
                    answers(&fresh(&requires, &milestone)),
                    "requires {requires:?}, milestones {milestone:?}"
                );
            }
        }
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
        let g = build(&d);
        assert!(g.cycles().is_empty());
        assert_eq!(g.longest_chain(), 20_000);
    }
}
