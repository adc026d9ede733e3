//! SFT examples to token ids and batches: the prompt through the student's chat template (or
//! as plain text for base models without one), the completion plus EOS; loss only on
//! completion tokens; truncation counted; seeded length-grouped batching.

use burn::tensor::{Device, Int, Tensor, TensorData};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::model::Inputs;
use crate::pretrained::Pretrained;
use crate::text::ChatMessage;

/// One training pair. `messages` (a conversation ending before the reply) replaces `prompt`
/// when present.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SftRecord {
    #[serde(default)]
    pub prompt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<ChatMessage>>,
    pub completion: String,
}

/// Token ids of prompt + completion + EOS; positions from `prompt_len - 1` on predict
/// completion tokens and carry the loss.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encoded {
    pub ids: Vec<u32>,
    pub prompt_len: usize,
}

impl Encoded {
    /// Number of supervised (predicted completion) tokens.
    pub fn supervised(&self) -> usize {
        self.ids.len().saturating_sub(self.prompt_len)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EncodeStats {
    pub examples: usize,
    /// Completion cut to fit `max_seq_len` (kept).
    pub truncated: usize,
    /// Prompt alone fills `max_seq_len`: nothing left to learn from (dropped).
    pub dropped_too_long: usize,
    pub prompt_tokens: usize,
    pub completion_tokens: usize,
}

/// Tokenizes `records` in parallel.
pub fn encode_all(
    model: &Pretrained,
    records: &[SftRecord],
    max_seq_len: usize,
) -> Result<(Vec<Encoded>, EncodeStats), ModelError> {
    let eos = model
        .tokenizer
        .eos
        .ok_or_else(|| ModelError::Tokenizer("the student's tokenizer has no EOS token to train".into()))?;
    let encoded: Vec<(Vec<u32>, Vec<u32>)> = records
        .par_iter()
        .map(|r| {
            let prompt = match &r.messages {
                Some(m) => model.chat_prompt(m)?,
                None => match &model.template {
                    Some(_) => model.chat_prompt(&[ChatMessage::new("user", &r.prompt)])?,
                    None => model.tokenizer.encode(&format!("{}\n", r.prompt), true)?,
                },
            };
            let mut completion = model.tokenizer.encode(&r.completion, false)?;
            completion.push(eos);
            Ok((prompt, completion))
        })
        .collect::<Result<_, ModelError>>()?;
    let mut stats = EncodeStats { examples: records.len(), ..EncodeStats::default() };
    let mut out = Vec::with_capacity(encoded.len());
    for (prompt, completion) in encoded {
        if prompt.len() >= max_seq_len {
            stats.dropped_too_long += 1;
            continue;
        }
        let mut ids = prompt.clone();
        ids.extend_from_slice(&completion);
        if ids.len() > max_seq_len {
            stats.truncated += 1;
            ids.truncate(max_seq_len);
        }
        stats.prompt_tokens += prompt.len();
        stats.completion_tokens += ids.len() - prompt.len();
        out.push(Encoded { ids, prompt_len: prompt.len() });
    }
    Ok((out, stats))
}

/// The batches of one epoch: a seeded shuffle, then within windows of 32 batches examples of
/// similar length go together (less padding), then the batch order is shuffled again.
pub fn epoch_batches(lengths: &[usize], batch_size: usize, seed: u64, epoch: u64) -> Vec<Vec<usize>> {
    let batch_size = batch_size.max(1);
    let mut rng = StdRng::seed_from_u64(seed ^ epoch.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.shuffle(&mut rng);
    let mut batches = Vec::new();
    for window in order.chunks(batch_size * 32) {
        let mut window = window.to_vec();
        window.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
        batches.extend(window.chunks(batch_size).map(<[usize]>::to_vec));
    }
    batches.shuffle(&mut rng);
    batches
}

/// A right-padded batch: inputs, next-token targets, and loss weights (1 on completion
/// predictions), plus the number of supervised tokens.
pub struct Batch {
    pub inputs: Inputs,
    pub targets: Tensor<2, Int>,
    pub weights: Tensor<2>,
    pub supervised: usize,
    /// Flat indices (`row * width + t`) of the positions that carry the loss, and the tokens
    /// they predict: what the chunked loss reads, so prompt and padding get no logits at all.
    pub loss_at: Vec<i64>,
    pub loss_targets: Vec<i64>,
    /// Several examples share a row (attention follows `inputs.bias`); otherwise rows are
    /// right-padded and plain causal attention is exact for every real token.
    pub packed: bool,
}

/// The supervised positions of flat `weights`/`targets`.
fn loss_positions(targets: &[i64], weights: &[f32]) -> (Vec<i64>, Vec<i64>) {
    weights
        .iter()
        .zip(targets)
        .enumerate()
        .filter(|(_, (w, _))| **w > 0.0)
        .map(|(i, (_, &t))| (i as i64, t))
        .unzip()
}

/// Packs examples into rows of at most `capacity` tokens (first fit, longest first;
/// deterministic). Each row is a list of example indices.
pub fn pack(data: &[Encoded], capacity: usize) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..data.len()).collect();
    order.sort_by_key(|&i| (std::cmp::Reverse(data[i].ids.len()), i));
    let mut rows: Vec<(usize, Vec<usize>)> = Vec::new();
    for i in order {
        let n = data[i].ids.len();
        match rows.iter_mut().find(|(used, _)| used + n <= capacity) {
            Some((used, row)) => {
                *used += n;
                row.push(i);
            }
            None => rows.push((n, vec![i])),
        }
    }
    rows.into_iter().map(|(_, row)| row).collect()
}

/// A batch of packed rows: each row holds whole examples back to back, positions restart per
/// example, attention stays inside an example, and the last token of each predicts nothing.
pub fn collate_packed(rows: &[Vec<&Encoded>], pad: u32, device: &Device) -> Batch {
    let width = rows.iter().map(|r| r.iter().map(|e| e.ids.len()).sum::<usize>()).max().unwrap_or(0).max(1);
    let b = rows.len();
    let (mut ids, mut positions, mut segments) = (Vec::new(), Vec::new(), Vec::new());
    let mut targets = Vec::with_capacity(b * width);
    let mut weights = Vec::with_capacity(b * width);
    let mut supervised = 0;
    for row in rows {
        let (mut r_ids, mut r_pos, mut r_seg) = (Vec::new(), Vec::new(), Vec::new());
        for (s, e) in row.iter().enumerate() {
            for (o, &id) in e.ids.iter().enumerate() {
                r_ids.push(id);
                r_pos.push(o as i64);
                r_seg.push(Some(s as u32));
                let next = e.ids.get(o + 1);
                let weighted = next.is_some() && o + 1 >= e.prompt_len;
                targets.push(next.map_or(0, |&t| i64::from(t)));
                weights.push(if weighted { 1.0f32 } else { 0.0 });
                supervised += usize::from(weighted);
            }
        }
        for _ in r_ids.len()..width {
            r_ids.push(pad);
            r_pos.push(0);
            r_seg.push(None);
            targets.push(0);
            weights.push(0.0);
        }
        ids.push(r_ids);
        positions.push(r_pos);
        segments.push(r_seg);
    }
    let flat_ids: Vec<i64> = ids.iter().flatten().map(|&t| i64::from(t)).collect();
    let flat_pos: Vec<i64> = positions.into_iter().flatten().collect();
    let (loss_at, loss_targets) = loss_positions(&targets, &weights);
    Batch {
        inputs: Inputs {
            tokens: Tensor::from_data(TensorData::new(flat_ids, [b, width]), device),
            positions: Tensor::from_data(TensorData::new(flat_pos, [b, width]), device),
            bias: crate::model::mask::segment_bias(&segments, device),
            unmasked: false,
        },
        targets: Tensor::from_data(TensorData::new(targets, [b, width]), device),
        weights: Tensor::from_data(TensorData::new(weights, [b, width]), device),
        supervised,
        loss_at,
        loss_targets,
        packed: true,
    }
}

pub fn collate(examples: &[&Encoded], pad: u32, device: &Device) -> Batch {
    let width = examples.iter().map(|e| e.ids.len() - 1).max().unwrap_or(0).max(1);
    let b = examples.len();
    let mut ids = Vec::with_capacity(b);
    let mut positions = Vec::with_capacity(b);
    let mut valid = Vec::with_capacity(b);
    let mut targets = Vec::with_capacity(b * width);
    let mut weights = Vec::with_capacity(b * width);
    let mut supervised = 0;
    for e in examples {
        let n = e.ids.len() - 1;
        let mut row: Vec<u32> = e.ids[..n].to_vec();
        row.resize(width, pad);
        ids.push(row);
        positions.push((0..width as i64).collect());
        valid.push((0..width).map(|t| t < n).collect());
        for t in 0..width {
            let supervised_here = t < n && t + 1 >= e.prompt_len;
            targets.push(if t < n { i64::from(e.ids[t + 1]) } else { 0 });
            weights.push(if supervised_here { 1.0f32 } else { 0.0 });
            supervised += usize::from(supervised_here);
        }
    }
    let (loss_at, loss_targets) = loss_positions(&targets, &weights);
    Batch {
        inputs: Inputs::new(&ids, &positions, &valid, device),
        targets: Tensor::from_data(TensorData::new(targets, [b, width]), device),
        weights: Tensor::from_data(TensorData::new(weights, [b, width]), device),
        supervised,
        loss_at,
        loss_targets,
        packed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_cover_every_example_once_and_are_seeded() {
        let lengths: Vec<usize> = (0..100).map(|i| (i * 37) % 50 + 1).collect();
        let a = epoch_batches(&lengths, 4, 1, 0);
        let mut seen: Vec<usize> = a.iter().flatten().copied().collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..100).collect::<Vec<_>>());
        assert_eq!(a, epoch_batches(&lengths, 4, 1, 0));
        assert_ne!(a, epoch_batches(&lengths, 4, 1, 1));
        // Length grouping: batches are far more uniform than random ones.
        let spread: usize = a
            .iter()
            .map(|b| {
                let l: Vec<usize> = b.iter().map(|&i| lengths[i]).collect();
                l.iter().max().unwrap() - l.iter().min().unwrap()
            })
            .sum();
        assert!(spread < 25 * 10, "{spread}");
    }
}
