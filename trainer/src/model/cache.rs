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

    fn select_rows(&mut self, rows: &Tensor<1, Int>) {
        self.k = self.k.take().map(|t| t.select(0, rows.clone()));
        self.v = self.v.take().map(|t| t.select(0, rows.clone()));
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

    /// Keeps only the batch rows in `rows` (in that order): finished sequences leave the batch.
    pub fn select_rows(&mut self, rows: &Tensor<1, Int>) {
        for layer in &mut self.layers {
            layer.select_rows(rows);
        }
    }
}
