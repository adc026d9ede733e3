//! GGML block formats, dequantized to f32 as ggml's reference `dequantize_row_*` functions do.
//! Blocks are independent, so rows of blocks are dequantized in parallel (rayon).

use half::{bf16, f16};
use rayon::prelude::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    BF16,
    Q4_0,
    Q4_1,
    Q5_0,
    Q5_1,
    Q8_0,
    Q4K,
    Q5K,
    Q6K,
    /// A type this reader does not dequantize (its ggml id).
    Other(u32),
}

const QK_K: usize = 256;

impl GgmlType {
    pub fn from_id(id: u32) -> Self {
        match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            6 => Self::Q5_0,
            7 => Self::Q5_1,
            8 => Self::Q8_0,
            12 => Self::Q4K,
            13 => Self::Q5K,
            14 => Self::Q6K,
            30 => Self::BF16,
            other => Self::Other(other),
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "F32" => Self::F32,
            "F16" => Self::F16,
            "BF16" => Self::BF16,
            "Q4_0" => Self::Q4_0,
            "Q4_1" => Self::Q4_1,
            "Q5_0" => Self::Q5_0,
            "Q5_1" => Self::Q5_1,
            "Q8_0" => Self::Q8_0,
            "Q4_K" => Self::Q4K,
            "Q5_K" => Self::Q5K,
            "Q6_K" => Self::Q6K,
            _ => return None,
        })
    }

    /// `(elements per block, bytes per block)`; `None` for types this reader cannot size.
    pub fn block(self) -> Option<(usize, usize)> {
        Some(match self {
            Self::F32 => (1, 4),
            Self::F16 | Self::BF16 => (1, 2),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q5_0 => (32, 22),
            Self::Q5_1 => (32, 24),
            Self::Q8_0 => (32, 34),
            Self::Q4K => (QK_K, 144),
            Self::Q5K => (QK_K, 176),
            Self::Q6K => (QK_K, 210),
            Self::Other(_) => return None,
        })
    }

    /// Bytes that `n` elements occupy.
    pub fn byte_len(self, n: usize) -> Option<usize> {
        let (elems, bytes) = self.block()?;
        if n.is_multiple_of(elems) { (n / elems).checked_mul(bytes) } else { None }
    }
}

/// Dequantizes `bytes` (exactly `n` elements of type `ty`).
pub fn dequantize(ty: GgmlType, bytes: &[u8], n: usize) -> Result<Vec<f32>, String> {
    let (elems, size) = ty.block().ok_or_else(|| format!("ggml type {ty:?} is not supported"))?;
    if !n.is_multiple_of(elems) || bytes.len() != n / elems * size {
        return Err(format!("{n} elements of {ty:?} need {} bytes, found {}", n / elems * size, bytes.len()));
    }
    let mut out = vec![0f32; n];
    // ~64 KiB of output per task: enough work to amortise rayon, enough tasks to balance.
    let blocks_per_task = (16384 / elems).max(1);
    out.par_chunks_mut(blocks_per_task * elems).zip(bytes.par_chunks(blocks_per_task * size)).for_each(
        |(y, x)| {
            for (y, x) in y.chunks_exact_mut(elems).zip(x.chunks_exact(size)) {
                block(ty, x, y);
            }
        },
    );
    Ok(out)
}

fn h(x: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([x[at], x[at + 1]]).to_f32()
}

fn block(ty: GgmlType, x: &[u8], y: &mut [f32]) {
    match ty {
        GgmlType::F32 => y[0] = f32::from_le_bytes([x[0], x[1], x[2], x[3]]),
        GgmlType::F16 => y[0] = h(x, 0),
        GgmlType::BF16 => y[0] = bf16::from_le_bytes([x[0], x[1]]).to_f32(),
        GgmlType::Q8_0 => {
            let d = h(x, 0);
            for (y, &q) in y.iter_mut().zip(&x[2..34]) {
                *y = d * f32::from(q as i8);
            }
        }
        GgmlType::Q4_0 | GgmlType::Q4_1 => {
            let d = h(x, 0);
            let (m, qs) = if ty == GgmlType::Q4_1 { (h(x, 2), &x[4..20]) } else { (-8.0 * d, &x[2..18]) };
            for (j, &q) in qs.iter().enumerate() {
                y[j] = f32::from(q & 0x0f) * d + m;
                y[j + 16] = f32::from(q >> 4) * d + m;
            }
        }
        GgmlType::Q5_0 | GgmlType::Q5_1 => {
            let d = h(x, 0);
            let (m, rest) = if ty == GgmlType::Q5_1 { (h(x, 2), &x[4..]) } else { (-16.0 * d, &x[2..]) };
            let qh = u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]);
            for (j, &q) in rest[4..20].iter().enumerate() {
                let h0 = ((qh >> j) << 4) & 0x10;
                let h1 = (qh >> (j + 12)) & 0x10;
                y[j] = (u32::from(q & 0x0f) | h0) as f32 * d + m;
                y[j + 16] = (u32::from(q >> 4) | h1) as f32 * d + m;
            }
        }
        GgmlType::Q4K => {
            let (d, dmin) = (h(x, 0), h(x, 2));
            let scales = &x[4..16];
            let qs = &x[16..144];
            for (g, (y, q)) in y.chunks_exact_mut(64).zip(qs.chunks_exact(32)).enumerate() {
                let (sc1, m1) = scale_min_k4(2 * g, scales);
                let (sc2, m2) = scale_min_k4(2 * g + 1, scales);
                let (d1, m1, d2, m2) = (d * sc1, dmin * m1, d * sc2, dmin * m2);
                for l in 0..32 {
                    y[l] = d1 * f32::from(q[l] & 0x0f) - m1;
                    y[l + 32] = d2 * f32::from(q[l] >> 4) - m2;
                }
            }
        }
        GgmlType::Q5K => {
            let (d, dmin) = (h(x, 0), h(x, 2));
            let scales = &x[4..16];
            let qh = &x[16..48];
            let ql = &x[48..176];
            for (g, (y, q)) in y.chunks_exact_mut(64).zip(ql.chunks_exact(32)).enumerate() {
                let (sc1, m1) = scale_min_k4(2 * g, scales);
                let (sc2, m2) = scale_min_k4(2 * g + 1, scales);
                let (d1, m1, d2, m2) = (d * sc1, dmin * m1, d * sc2, dmin * m2);
                let (u1, u2) = (1u8 << (2 * g), 2u8 << (2 * g));
                for l in 0..32 {
                    let hi1 = if qh[l] & u1 != 0 { 16.0 } else { 0.0 };
                    let hi2 = if qh[l] & u2 != 0 { 16.0 } else { 0.0 };
                    y[l] = d1 * (f32::from(q[l] & 0x0f) + hi1) - m1;
                    y[l + 32] = d2 * (f32::from(q[l] >> 4) + hi2) - m2;
                }
            }
        }
        GgmlType::Q6K => {
            let ql = &x[0..128];
            let qh = &x[128..192];
            let sc = &x[192..208];
            let d = h(x, 208);
            for half in 0..2 {
                let (ql, qh, sc) = (&ql[64 * half..], &qh[32 * half..], &sc[8 * half..]);
                let y = &mut y[128 * half..];
                for l in 0..32 {
                    let is = l / 16;
                    let q1 = i32::from((ql[l] & 0x0f) | ((qh[l] & 3) << 4)) - 32;
                    let q2 = i32::from((ql[l + 32] & 0x0f) | (((qh[l] >> 2) & 3) << 4)) - 32;
                    let q3 = i32::from((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                    let q4 = i32::from((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                    let s = |k: usize| d * f32::from(sc[is + k] as i8);
                    y[l] = s(0) * q1 as f32;
                    y[l + 32] = s(2) * q2 as f32;
                    y[l + 64] = s(4) * q3 as f32;
                    y[l + 96] = s(6) * q4 as f32;
                }
            }
        }
        GgmlType::Other(_) => unreachable!("sized types only"),
    }
}

/// The 6-bit scale and min `j` of a K-quant super-block (ggml `get_scale_min_k4`).
fn scale_min_k4(j: usize, q: &[u8]) -> (f32, f32) {
    let (d, m) = if j < 4 {
        (q[j] & 63, q[j + 4] & 63)
    } else {
        ((q[j + 4] & 0x0f) | ((q[j - 4] >> 6) << 4), (q[j + 4] >> 4) | ((q[j] >> 6) << 4))
    };
    (f32::from(d), f32::from(m))
}
