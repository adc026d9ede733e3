//! The key/value cache, kept outside the module so training runs the same forward without
//! one. Each layer's cache is preallocated and written in place (libtorch `copy_` into a
//! narrowed view when the storage is not shared), growing by doubling: appending a token
//! costs O(1) copies, not a re-concatenation of everything cached so far.

use burn::tensor::{Int, Tensor};

#[derive(Debug, Clone, Default)]
pub struct LayerCache {
    k: Option<Tensor<4>>,
    v: Option<Tensor<4>>,
    len: usize,
}

impl LayerCache {
    /// Appends `k`, `v` (`[batch, kv_heads, new, head_dim]`) and returns everything cached.
    pub fn append(&mut self, k: Tensor<4>, v: Tensor<4>) -> (Tensor<4>, Tensor<4>) {
        let [b, h, new, d] = k.dims();
        let needed = self.len + new;
        let capacity = self.k.as_ref().map_or(0, |t| t.dims()[2]);
        if needed > capacity {
            let grown = needed.max(capacity * 2).max(64);
            let device = k.device();
            let extend = |old: Option<Tensor<4>>| {
                let fresh = Tensor::<4>::zeros([b, h, grown, d], (&device, k.dtype()));
                match old {
                    Some(old) if self.len > 0 => {
                        fresh.slice_assign([0..b, 0..h, 0..self.len, 0..d], old.narrow(2, 0, self.len))
                    }
                    _ => fresh,
                }
            };
            self.k = Some(extend(self.k.take()));
            self.v = Some(extend(self.v.take()));
        }
        let range = [0..b, 0..h, self.len..needed, 0..d];
        let kc = self.k.take().expect("allocated above").slice_assign(range.clone(), k);
        let vc = self.v.take().expect("allocated above").slice_assign(range, v);
        self.len = needed;
        let out = (kc.clone().narrow(2, 0, needed), vc.clone().narrow(2, 0, needed));
        self.k = Some(kc);
        self.v = Some(vc);
        out
    }

    /// Removes batch row `row` as `Vec::swap_remove` does: the last row is copied into its
    /// place (when it is not the last) and the batch narrowed (a view). One row is copied,
    /// not the batch: selecting the rows that stay copied the whole cache every time a row
    /// finished (15 s of the default run's 130 s solve stage).
    fn swap_remove(&mut self, row: usize) {
        for t in [&mut self.k, &mut self.v] {
            let Some(x) = t.take() else { continue };
            let [b, h, capacity, d] = x.dims();
            let last = b - 1;
            let x = if row == last {
                x
            } else {
                let pick = Tensor::<1, Int>::from_data(
                    burn::tensor::TensorData::new(vec![last as i64], [1]),
                    &x.device(),
                );
                // A copy (its own storage), so that `x` is written in place.
                let moved = x.clone().select(0, pick);
                x.slice_assign([row..row + 1, 0..h, 0..capacity, 0..d], moved)
            };
            *t = Some(x.narrow(0, 0, last));
        }
    }

    /// What is cached, `front` zero positions before it: `[batch, heads, front + len, dim]`.
    fn padded(k: Option<Tensor<4>>, len: usize, front: usize) -> Option<Tensor<4>> {
        let t = k?.narrow(2, 0, len);
        if front == 0 {
            return Some(t);
        }
        let [b, h, _, d] = t.dims();
        let zeros = Tensor::<4>::zeros([b, h, front, d], (&t.device(), t.dtype()));
        Some(Tensor::cat(vec![zeros, t], 2))
    }

    /// The rows of `caches` in order, each padded at the front to the longest: one
    /// concatenation, however many caches.
    fn stack_all(caches: Vec<LayerCache>) -> LayerCache {
        let len = caches.iter().map(|c| c.len).max().unwrap_or(0);
        let (mut ks, mut vs) = (Vec::with_capacity(caches.len()), Vec::with_capacity(caches.len()));
        for c in caches {
            ks.extend(Self::padded(c.k, c.len, len - c.len));
            vs.extend(Self::padded(c.v, c.len, len - c.len));
        }
        let cat = |ts: Vec<Tensor<4>>| (!ts.is_empty()).then(|| Tensor::cat(ts, 0));
        LayerCache { k: cat(ks), v: cat(vs), len }
    }

    fn truncate(&mut self, len: usize) {
        self.k = self.k.take().map(|t| t.narrow(2, 0, len));
        self.v = self.v.take().map(|t| t.narrow(2, 0, len));
        self.len = len;
    }

    fn gather(&self, row: usize, positions: &Tensor<1, Int>, len: usize) -> LayerCache {
        let pick = |t: &Tensor<4>| t.clone().narrow(0, row, 1).select(2, positions.clone());
        LayerCache { k: self.k.as_ref().map(pick), v: self.v.as_ref().map(pick), len }
    }

    /// Forgets the first `n` positions of every row.
    fn drop_front(&mut self, n: usize) {
        let len = self.len - n;
        self.k = self.k.take().map(|t| t.narrow(2, n, len));
        self.v = self.v.take().map(|t| t.narrow(2, n, len));
        self.len = len;
    }
}

/// One [`LayerCache`] per decoder layer.
#[derive(Debug, Clone)]
pub struct KvCache {
    pub layers: Vec<LayerCache>,
}

impl KvCache {
    pub fn new(num_layers: usize) -> Self {
        Self { layers: vec![LayerCache::default(); num_layers] }
    }

    /// Positions cached (the same for every row: padding is cached too).
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |l| l.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes batch row `row` (a finished sequence), moving the last row into its place, as
    /// `Vec::swap_remove` does.
    pub fn swap_remove(&mut self, row: usize) {
        for layer in &mut self.layers {
            layer.swap_remove(row);
        }
    }

    /// Adds `other`'s rows after this cache's (rows joining a running batch): the shorter of
    /// the two is padded at the front with zeros to the longer's length. Returns how many
    /// positions were put in front of this cache's rows and of `other`'s: the rows' key
    /// validity must say those are not tokens.
    pub fn stack(&mut self, other: KvCache) -> (usize, usize) {
        let (len, other_len) = (self.len(), other.len());
        let width = len.max(other_len);
        *self = Self::stack_all(vec![std::mem::replace(self, KvCache::new(0)), other]);
        (width - len, width - other_len)
    }

    /// The rows of `caches` in order, each padded at the front with zeros to the longest
    /// (their rows' key validity must say those are not tokens); one copy, however many.
    pub fn stack_all(caches: Vec<KvCache>) -> KvCache {
        let layers = caches.iter().map(|c| c.layers.len()).max().unwrap_or(0);
        let mut per_layer: Vec<Vec<LayerCache>> =
            (0..layers).map(|_| Vec::with_capacity(caches.len())).collect();
        for cache in caches {
            for (i, layer) in cache.layers.into_iter().enumerate() {
                per_layer[i].push(layer);
            }
        }
        KvCache { layers: per_layer.into_iter().map(LayerCache::stack_all).collect() }
    }

    /// Keeps the first `len` positions of every row (a view: appending to it copies).
    pub fn truncate(&mut self, len: usize) {
        assert!(len <= self.len(), "keeping {len} of {} cached positions", self.len());
        for layer in &mut self.layers {
            layer.truncate(len);
        }
    }

    /// A one-row copy of `row` at `positions` (a prompt's tokens without its padding).
    pub fn gather(&self, row: usize, positions: &[i64]) -> KvCache {
        let Some(device) = self.layers.first().and_then(|l| l.k.as_ref()).map(Tensor::device) else {
            return KvCache::new(self.layers.len());
        };
        let idx = Tensor::<1, Int>::from_data(
            burn::tensor::TensorData::new(positions.to_vec(), [positions.len()]),
            &device,
        );
        KvCache { layers: self.layers.iter().map(|l| l.gather(row, &idx, positions.len())).collect() }
    }

    /// Bytes one position of one row takes (keys and values, every layer).
    pub fn bytes_per_position(&self) -> usize {
        self.layers
            .iter()
            .filter_map(|l| l.k.as_ref())
            .map(|k| {
                let [_, h, _, d] = k.dims();
                2 * h * d * k.dtype().size()
            })
            .sum()
    }

    /// Forgets the first `n` positions of every row (padding no row needs any more), so a
    /// long-running batch's keys do not grow without bound.
    pub fn drop_front(&mut self, n: usize) {
        assert!(n <= self.len(), "dropping {n} of {} cached positions", self.len());
        for layer in &mut self.layers {
            layer.drop_front(n);
        }
    }
}
