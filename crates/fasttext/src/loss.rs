//! The four losses of fastText 0.9.2 (src/loss.cc): their shared lookup tables, the Huffman tree
//! of hierarchical softmax, and top-k prediction with fastText's scoring.
//!
//! Prediction scores are `log(p + 1e-5)` (fastText's `std_log`), and fastText prints
//! `exp(score)`, i.e. `p + 1e-5`; we keep that so printed probabilities agree. One-vs-all and
//! negative sampling predict with the same 512-entry sigmoid table used in training; softmax
//! and hierarchical softmax use `exp` directly, as fastText does.
use crate::args::LossName;
use crate::matrix::Matrix;

const SIGMOID_TABLE_SIZE: usize = 512;
const MAX_SIGMOID: f32 = 8.0;
const LOG_TABLE_SIZE: usize = 512;

/// fastText's sigmoid and log lookup tables (same sizes and indexing, so training losses and
/// ova/ns probabilities round the same way).
#[derive(Debug, Clone)]
pub struct Tables {
    sigmoid: Vec<f32>,
    log: Vec<f32>,
}

impl Default for Tables {
    fn default() -> Self {
        Self::new()
    }
}

impl Tables {
    /// Build the tables.
    pub fn new() -> Self {
        let sigmoid = (0..=SIGMOID_TABLE_SIZE)
            .map(|i| {
                let x = (i as f32 * 2.0 * MAX_SIGMOID) / SIGMOID_TABLE_SIZE as f32 - MAX_SIGMOID;
                (1.0 / (1.0 + (-x).exp() as f64)) as f32
            })
            .collect();
        let log = (0..=LOG_TABLE_SIZE)
            .map(|i| {
                let x = ((i as f64 + 1e-5) / LOG_TABLE_SIZE as f64) as f32;
                x.ln()
            })
            .collect();
        Tables { sigmoid, log }
    }

    /// Table sigmoid.
    #[inline]
    pub fn sigmoid(&self, x: f32) -> f32 {
        if x < -MAX_SIGMOID {
            0.0
        } else if x > MAX_SIGMOID {
            1.0
        } else {
            let i = ((x + MAX_SIGMOID) * SIGMOID_TABLE_SIZE as f32 / MAX_SIGMOID / 2.0) as usize;
            self.sigmoid[i.min(SIGMOID_TABLE_SIZE)]
        }
    }

    /// Table log (for loss reporting).
    #[inline]
    pub fn log(&self, x: f32) -> f32 {
        if x > 1.0 {
            return 0.0;
        }
        let i = (x * LOG_TABLE_SIZE as f32) as isize;
        self.log[i.clamp(0, LOG_TABLE_SIZE as isize) as usize]
    }
}

/// `log(x + 1e-5)`, fastText's prediction score.
#[inline]
pub fn std_log(x: f32) -> f32 {
    (x as f64 + 1e-5).ln() as f32
}

#[derive(Debug, Clone, Copy)]
struct Node {
    parent: i32,
    left: i32,
    right: i32,
    count: i64,
    binary: bool,
}

/// The Huffman tree of hierarchical softmax, built from label counts sorted by descending count
/// (as the dictionary stores them). Internal node `osz + j` uses output row `j`.
#[derive(Debug, Clone)]
pub struct HsTree {
    osz: usize,
    nodes: Vec<Node>,
    /// Per label: output rows on the path to the root.
    pub paths: Vec<Vec<i32>>,
    /// Per label: branch taken at each node of the path (true = right).
    pub codes: Vec<Vec<bool>>,
}

impl HsTree {
    /// Build the tree (fastText's `buildTree`: a two-queue Huffman construction).
    pub fn new(counts: &[i64]) -> Self {
        let osz = counts.len();
        let total = (2 * osz).saturating_sub(1);
        let mut nodes =
            vec![Node { parent: -1, left: -1, right: -1, count: 1_000_000_000_000_000, binary: false }; total];
        for (n, &c) in nodes.iter_mut().zip(counts) {
            n.count = c;
        }
        let mut leaf = osz as i64 - 1;
        let mut node = osz;
        for i in osz..total {
            let mut mini = [0usize; 2];
            for m in mini.iter_mut() {
                if leaf >= 0 && nodes[leaf as usize].count < nodes[node].count {
                    *m = leaf as usize;
                    leaf -= 1;
                } else {
                    *m = node;
                    node += 1;
                }
            }
            nodes[i].left = mini[0] as i32;
            nodes[i].right = mini[1] as i32;
            nodes[i].count = nodes[mini[0]].count + nodes[mini[1]].count;
            nodes[mini[0]].parent = i as i32;
            nodes[mini[1]].parent = i as i32;
            nodes[mini[1]].binary = true;
        }
        let mut paths = Vec::with_capacity(osz);
        let mut codes = Vec::with_capacity(osz);
        for i in 0..osz {
            let (mut path, mut code) = (Vec::new(), Vec::new());
            let mut j = i;
            while nodes[j].parent != -1 {
                path.push(nodes[j].parent - osz as i32);
                code.push(nodes[j].binary);
                j = nodes[j].parent as usize;
            }
            paths.push(path);
            codes.push(code);
        }
        HsTree { osz, nodes, paths, codes }
    }

    #[allow(clippy::too_many_arguments)]
    fn dfs(&self, k: usize, threshold: f32, node: usize, score: f32, heap: &mut Vec<(f32, i32)>, hidden: &[f32], wo: &Matrix) {
        if score < std_log(threshold) {
            return;
        }
        if heap.len() == k && score < worst(heap) {
            return;
        }
        let n = self.nodes[node];
        if n.left == -1 && n.right == -1 {
            push_k(heap, k, (score, node as i32));
            return;
        }
        let f = wo.dot_row(hidden, node - self.osz);
        let f = (1.0 / (1.0 + (-(f as f64)).exp())) as f32;
        self.dfs(k, threshold, n.left as usize, score + std_log(1.0 - f), heap, hidden, wo);
        self.dfs(k, threshold, n.right as usize, score + std_log(f), heap, hidden, wo);
    }
}

/// fastText keeps its top-k in a `std::vector` managed with `std::push_heap`/`pop_heap`/
/// `sort_heap` under `a.score > b.score` (a min-heap on score). Labels with equal scores (common:
/// saturated sigmoids all score `log(1e-5)`) come out in an order decided by those exact
/// sift steps, so we reproduce the classic binary-heap sifts the C++ standard library uses
/// rather than sorting with our own tie-break.
#[inline]
fn heap_less(a: &(f32, i32), b: &(f32, i32)) -> bool {
    a.0 > b.0
}

/// Sift `value` up from `hole` towards `top`.
fn sift_up(h: &mut [(f32, i32)], mut hole: usize, top: usize, value: (f32, i32)) {
    while hole > top {
        let parent = (hole - 1) / 2;
        if !heap_less(&h[parent], &value) {
            break;
        }
        h[hole] = h[parent];
        hole = parent;
    }
    h[hole] = value;
}

/// Move the hole at `hole` down to a leaf (always taking the larger child), then sift `value`
/// up from there: the standard library's `__adjust_heap`.
fn adjust(h: &mut [(f32, i32)], mut hole: usize, len: usize, value: (f32, i32)) {
    let top = hole;
    let mut child = hole;
    while len >= 2 && child < (len - 1) / 2 {
        child = 2 * (child + 1);
        if heap_less(&h[child], &h[child - 1]) {
            child -= 1;
        }
        h[hole] = h[child];
        hole = child;
    }
    if len % 2 == 0 && len >= 2 && child == (len - 2) / 2 {
        child = 2 * (child + 1);
        h[hole] = h[child - 1];
        hole = child - 1;
    }
    sift_up(h, hole, top, value);
}

fn push_heap(h: &mut Vec<(f32, i32)>, item: (f32, i32)) {
    h.push(item);
    let last = h.len() - 1;
    sift_up(h, last, 0, item);
}

/// Move the front to position `len - 1` and restore the heap on `0..len-1`.
fn pop_heap(h: &mut [(f32, i32)], len: usize) {
    if len > 1 {
        let value = h[len - 1];
        h[len - 1] = h[0];
        adjust(h, 0, len - 1, value);
    }
}

/// Keep the best `k` (score, id) pairs, as fastText's `findKBest`/`dfs` do.
fn push_k(heap: &mut Vec<(f32, i32)>, k: usize, item: (f32, i32)) {
    push_heap(heap, item);
    if heap.len() > k {
        let n = heap.len();
        pop_heap(heap, n);
        heap.pop();
    }
}

/// Smallest score kept (the heap's front).
fn worst(heap: &[(f32, i32)]) -> f32 {
    heap[0].0
}

/// `std::sort_heap`: best first.
fn sort_heap(h: &mut [(f32, i32)]) {
    let mut len = h.len();
    while len > 1 {
        pop_heap(h, len);
        len -= 1;
    }
}

/// Top-`k` labels for a hidden vector: `(log(p + 1e-5), label id)`, best first.
/// `out` is scratch of length `nlabels`.
pub fn predict(
    loss: LossName,
    tables: &Tables,
    hs: Option<&HsTree>,
    wo: &Matrix,
    hidden: &[f32],
    k: usize,
    threshold: f32,
    out: &mut Vec<f32>,
) -> Vec<(f32, i32)> {
    let mut heap: Vec<(f32, i32)> = Vec::with_capacity(k + 1);
    if k == 0 {
        return heap;
    }
    match (loss, hs) {
        (LossName::Hs, Some(tree)) => {
            if tree.osz > 0 {
                tree.dfs(k, threshold, 2 * tree.osz - 2, 0.0, &mut heap, hidden, wo);
            }
        }
        _ => {
            let osz = wo.rows();
            out.clear();
            out.extend((0..osz).map(|i| wo.dot_row(hidden, i)));
            match loss {
                LossName::Softmax | LossName::Hs => softmax(out),
                LossName::Ova | LossName::Ns => {
                    for v in out.iter_mut() {
                        *v = tables.sigmoid(*v);
                    }
                }
            }
            for (i, &p) in out.iter().enumerate() {
                if p < threshold {
                    continue;
                }
                let s = std_log(p);
                if heap.len() == k && s < worst(&heap) {
                    continue;
                }
                push_k(&mut heap, k, (s, i as i32));
            }
        }
    }
    sort_heap(&mut heap);
    heap
}

/// In-place softmax with fastText's max shift.
#[inline]
pub fn softmax(out: &mut [f32]) {
    let max = out.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut z = 0f32;
    for v in out.iter_mut() {
        *v = ((*v - max) as f64).exp() as f32;
        z += *v;
    }
    for v in out.iter_mut() {
        *v /= z;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huffman_paths_prefer_frequent_labels() {
        let t = HsTree::new(&[10, 5, 1, 1]);
        // The most frequent label sits closest to the root.
        assert!(t.paths[0].len() < t.paths[3].len());
        // Every path ends at the root, internal node 2*osz-2 => output row osz-2.
        for p in &t.paths {
            assert_eq!(*p.last().unwrap(), 2);
        }
    }

    #[test]
    fn heap_keeps_top_k_best_first() {
        let mut h = Vec::new();
        for (i, s) in [0.1f32, 0.5, 0.3, 0.9, 0.2].iter().enumerate() {
            push_k(&mut h, 3, (*s, i as i32));
        }
        sort_heap(&mut h);
        assert_eq!(h.iter().map(|p| p.1).collect::<Vec<_>>(), [3, 1, 2]);
    }

    #[test]
    fn sigmoid_table_edges() {
        let t = Tables::new();
        assert_eq!(t.sigmoid(-9.0), 0.0);
        assert_eq!(t.sigmoid(9.0), 1.0);
        assert!((t.sigmoid(0.0) - 0.5).abs() < 0.02);
        assert_eq!(t.log(2.0), 0.0);
    }
}
