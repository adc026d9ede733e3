//! Strongly connected components (Tarjan) and short cycles that show how one hangs together.

use std::collections::{BTreeSet, VecDeque};

/// The strongly connected components of more than one node (or with a self loop), each sorted,
/// in order of their smallest node.
pub fn cyclic_components(n: usize, adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    struct State<'a> {
        adj: &'a [Vec<usize>],
        index: Vec<Option<usize>>,
        low: Vec<usize>,
        on_stack: Vec<bool>,
        stack: Vec<usize>,
        next: usize,
        out: Vec<Vec<usize>>,
    }
    fn connect(s: &mut State, v: usize) {
        s.index[v] = Some(s.next);
        s.low[v] = s.next;
        s.next += 1;
        s.stack.push(v);
        s.on_stack[v] = true;
        for &w in &s.adj[v] {
            match s.index[w] {
                None => {
                    connect(s, w);
                    s.low[v] = s.low[v].min(s.low[w]);
                }
                Some(iw) if s.on_stack[w] => s.low[v] = s.low[v].min(iw),
                Some(_) => {}
            }
        }
        if Some(s.low[v]) == s.index[v] {
            let mut comp = Vec::new();
            while let Some(w) = s.stack.pop() {
                s.on_stack[w] = false;
                comp.push(w);
                if w == v {
                    break;
                }
            }
            if comp.len() > 1 || s.adj[v].contains(&v) {
                comp.sort_unstable();
                s.out.push(comp);
            }
        }
    }
    let mut s = State {
        adj,
        index: vec![None; n],
        low: vec![0; n],
        on_stack: vec![false; n],
        stack: Vec::new(),
        next: 0,
        out: Vec::new(),
    };
    for v in 0..n {
        if s.index[v].is_none() {
            connect(&mut s, v);
        }
    }
    s.out.sort();
    s.out
}

/// Short cycles inside one component that between them use every edge of it: for each edge
/// `u -> v`, the shortest way back `v -> ... -> u`; shortest cycles first, a cycle kept only if it
/// uses an edge no kept cycle used. Each cycle starts and ends at the same node.
pub fn covering_cycles(comp: &[usize], adj: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let inside: BTreeSet<usize> = comp.iter().copied().collect();
    let mut candidates: Vec<Vec<usize>> = Vec::new();
    for &u in comp {
        for &v in adj[u].iter().filter(|v| inside.contains(v)) {
            if let Some(back) = shortest_path(v, u, &inside, adj) {
                let mut cycle = vec![u];
                cycle.extend(back);
                candidates.push(rotate_to_min(cycle));
            }
        }
    }
    candidates.sort_by(|a, b| a.len().cmp(&b.len()).then_with(|| a.cmp(b)));
    candidates.dedup();
    let mut covered: BTreeSet<(usize, usize)> = BTreeSet::new();
    let mut out = Vec::new();
    for cycle in candidates {
        let pairs: Vec<(usize, usize)> = cycle.windows(2).map(|w| (w[0], w[1])).collect();
        if pairs.iter().any(|p| !covered.contains(p)) {
            covered.extend(pairs);
            out.push(cycle);
        }
    }
    out
}

/// `from -> ... -> to` inside `inside`, fewest edges (BFS, neighbours in order).
fn shortest_path(from: usize, to: usize, inside: &BTreeSet<usize>, adj: &[Vec<usize>]) -> Option<Vec<usize>> {
    let mut prev = std::collections::HashMap::new();
    let mut queue = VecDeque::from([from]);
    prev.insert(from, from);
    while let Some(x) = queue.pop_front() {
        if x == to {
            let mut path = vec![to];
            let mut cur = to;
            while cur != from {
                cur = prev[&cur];
                path.push(cur);
            }
            path.reverse();
            return Some(path);
        }
        for &y in &adj[x] {
            if inside.contains(&y) && !prev.contains_key(&y) {
                prev.insert(y, x);
                queue.push_back(y);
            }
        }
    }
    None
}

/// The same closed cycle starting at its smallest node (so duplicates compare equal).
fn rotate_to_min(cycle: Vec<usize>) -> Vec<usize> {
    let open = &cycle[..cycle.len() - 1];
    let start = (0..open.len()).min_by_key(|&i| open[i]).unwrap_or(0);
    let mut out: Vec<usize> = open[start..].iter().chain(&open[..start]).copied().collect();
    out.push(out[0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_components_and_cycles() {
        // 0 <-> 1, 1 -> 2 -> 0, 3 alone, 4 -> 4
        let adj = vec![vec![1], vec![0, 2], vec![0], vec![0], vec![4]];
        let comps = cyclic_components(5, &adj);
        assert_eq!(comps, vec![vec![0, 1, 2], vec![4]]);
        let cycles = covering_cycles(&comps[0], &adj);
        assert_eq!(cycles, vec![vec![0, 1, 0], vec![0, 1, 2, 0]]);
    }
}
