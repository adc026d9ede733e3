//! Rotary position embedding, half-split ("NeoX") as transformers applies it to Llama and Qwen
//! weights. Angles are computed per call from explicit position ids, so left-padded rows and
//! the KV cache need no table bookkeeping.

use burn::tensor::{Int, Tensor, TensorData};

use super::config::{Llama3Scaling, ModelConfig};

#[derive(Debug, Clone)]
pub struct Rope {
    /// `[head_dim / 2]` inverse frequencies, already scaled.
    inv_freq: Vec<f32>,
}

impl Rope {
    pub fn new(config: &ModelConfig) -> Self {
        let dim = config.head_dim;
        let mut inv_freq: Vec<f64> =
            (0..dim / 2).map(|i| 1.0 / config.rope_theta.powf((2 * i) as f64 / dim as f64)).collect();
        if let Some(s) = &config.rope_scaling {
            llama3_scale(&mut inv_freq, s);
        }
        Self { inv_freq: inv_freq.into_iter().map(|f| f as f32).collect() }
    }

    /// `(cos, sin)`, each `[batch, 1, seq, head_dim / 2]`, for `positions` `[batch, seq]`.
    pub fn angles(&self, positions: Tensor<2, Int>) -> (Tensor<4>, Tensor<4>) {
        let device = positions.device();
        let half = self.inv_freq.len();
        let inv = Tensor::<1>::from_data(TensorData::new(self.inv_freq.clone(), [half]), &device);
        let freqs = positions.float().unsqueeze_dim::<3>(2) * inv.unsqueeze::<3>();
        (freqs.clone().cos().unsqueeze_dim(1), freqs.sin().unsqueeze_dim(1))
    }

    /// Rotates `x` `[batch, heads, seq, head_dim]`.
    pub fn apply(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
        let half = x.dims()[3] / 2;
        let x1 = x.clone().narrow(3, 0, half);
        let x2 = x.narrow(3, half, half);
        Tensor::cat(
            vec![x1.clone() * cos.clone() - x2.clone() * sin.clone(), x2 * cos.clone() + x1 * sin.clone()],
            3,
        )
    }
}

/// Llama 3.1's frequency-dependent scaling (transformers `_compute_llama3_parameters`).
fn llama3_scale(inv_freq: &mut [f64], s: &Llama3Scaling) {
    let old_ctx = s.original_max_position_embeddings as f64;
    let low_wavelen = old_ctx / s.low_freq_factor;
    let high_wavelen = old_ctx / s.high_freq_factor;
    for f in inv_freq.iter_mut() {
        let wavelen = 2.0 * std::f64::consts::PI / *f;
        if wavelen > low_wavelen {
            *f /= s.factor;
        } else if wavelen >= high_wavelen {
            let smooth = (old_ctx / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
            *f = (1.0 - smooth) * *f / s.factor + smooth * *f;
        }
    }
}
