//! The additive attention bias: causal, and blind to padding. Built on the host (it is small:
//! batch x queries x keys) so every backend gets identical semantics; libtorch's fused
//! attention reads boolean masks the other way round from burn's fallback.

use burn::tensor::{Device, Tensor, TensorData};

/// Large enough to zero a softmax weight, small enough that a fully masked row (a padding
/// query) stays finite instead of turning into NaN.
pub const MASKED: f32 = -1e30;

/// `[batch, 1, queries, keys]` where the queries are the last `queries` of the `keys`
/// positions; `valid[b][j]` says whether key `j` of row `b` is a real token.
pub fn attention_bias(valid: &[Vec<bool>], queries: usize, device: &Device) -> Tensor<4> {
    let batch = valid.len();
    let keys = valid.first().map_or(0, Vec::len);
    let offset = keys - queries;
    let mut data = Vec::with_capacity(batch * queries * keys);
    for row in valid {
        assert_eq!(row.len(), keys, "every row has the same number of keys");
        for q in 0..queries {
            data.extend(
                row.iter().enumerate().map(|(j, &ok)| if ok && j <= offset + q { 0.0 } else { MASKED }),
            );
        }
    }
    Tensor::from_data(TensorData::new(data, [batch, 1, queries, keys]), device)
}

/// `[batch, 1, seq, seq]` for packed rows: position `t` sees position `u` when both belong to
/// the same segment and `u <= t`; `segments[b][t]` is `None` for padding.
pub fn segment_bias(segments: &[Vec<Option<u32>>], device: &Device) -> Tensor<4> {
    let batch = segments.len();
    let len = segments.first().map_or(0, Vec::len);
    let mut data = Vec::with_capacity(batch * len * len);
    for row in segments {
        for (t, q) in row.iter().enumerate() {
            data.extend(row.iter().enumerate().map(|(u, k)| match (q, k) {
                (Some(a), Some(b)) if a == b && u <= t => 0.0,
                _ => MASKED,
            }));
        }
    }
    Tensor::from_data(TensorData::new(data, [batch, 1, len, len]), device)
}
