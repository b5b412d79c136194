//! Sparse union-find over 64-bit document ids (Tarjan 1975), as datatrove's `MinhashDedupCluster`
//! builds clusters from duplicate pairs.
//!
//! Only documents that take part in at least one duplicate pair get an entry, so memory grows with
//! the number of duplicates, not of documents. The root of every set is its **smallest** id
//! (union by minimum, path halving on find): the document kept from a cluster is therefore the
//! first one in input order, independent of the order in which pairs are merged.
use std::collections::HashMap;

/// Disjoint sets of `u64` ids; ids never added are singletons.
#[derive(Debug, Default, Clone)]
pub struct UnionFind {
    parent: HashMap<u64, u64>,
}

impl UnionFind {
    /// Empty structure.
    pub fn new() -> Self {
        Self::default()
    }

    /// Root (smallest member) of `x`'s set.
    pub fn find(&mut self, x: u64) -> u64 {
        let mut cur = x;
        loop {
            let p = match self.parent.get(&cur) {
                Some(&p) if p != cur => p,
                _ => return cur,
            };
            let gp = self.parent.get(&p).copied().unwrap_or(p);
            // Path halving: point `cur` at its grandparent.
            if gp != p {
                self.parent.insert(cur, gp);
            }
            cur = gp;
        }
    }

    /// Merge the sets of `a` and `b`; returns whether they were separate.
    pub fn union(&mut self, a: u64, b: u64) -> bool {
        let ra = self.find(a);
        let rb = self.find(b);
        if ra == rb {
            self.parent.entry(a).or_insert(a);
            return false;
        }
        let (root, child) = if ra < rb { (ra, rb) } else { (rb, ra) };
        self.parent.insert(child, root);
        self.parent.entry(root).or_insert(root);
        true
    }

    /// Every id that was part of a union, in no particular order.
    pub fn members(&self) -> impl Iterator<Item = u64> + '_ {
        self.parent.keys().copied()
    }

    /// Number of ids with an entry.
    pub fn len(&self) -> usize {
        self.parent.len()
    }

    /// Whether no union was made.
    pub fn is_empty(&self) -> bool {
        self.parent.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn chains_merge_to_smallest() {
        let mut uf = UnionFind::new();
        assert!(uf.union(5, 9));
        assert!(uf.union(9, 2));
        assert!(!uf.union(2, 5));
        assert_eq!(uf.find(9), 2);
        assert_eq!(uf.find(5), 2);
        assert_eq!(uf.find(7), 7);
        assert_eq!(uf.len(), 3);
    }

    proptest! {
        #[test]
        fn roots_are_component_minima(pairs in proptest::collection::vec((0u64..40, 0u64..40), 0..60)) {
            let mut uf = UnionFind::new();
            for &(a, b) in &pairs { uf.union(a, b); }
            // Reference: naive label propagation.
            let mut label: Vec<u64> = (0..40).collect();
            loop {
                let mut changed = false;
                for &(a, b) in &pairs {
                    let m = label[a as usize].min(label[b as usize]);
                    for x in [a, b] {
                        if label[x as usize] != m { label[x as usize] = m; changed = true; }
                    }
                }
                if !changed { break; }
            }
            for x in 0..40u64 {
                prop_assert_eq!(uf.find(x), label[x as usize]);
            }
        }
    }
}
