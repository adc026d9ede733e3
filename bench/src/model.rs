//! What several benchmarks share: the model they run and its synthetic prompts.

use std::path::PathBuf;

use clap::Args;
use trainer::{DeviceSpec, Pretrained};

/// Which model a benchmark runs: real weights, or random ones of a given shape.
#[derive(Args)]
pub struct ModelArgs {
    /// A GGUF file or an HF folder (with --random-weights, only its tokenizer and config are
    /// read).
    #[arg(long)]
    model: PathBuf,
    /// Seeded random weights instead of the model's (its folder needs no weight files).
    #[arg(long)]
    random_weights: bool,
    /// With --random-weights: this `config.json`'s architecture instead of the model's (e.g.
    /// data/model_configs/Qwen3-1.7B-Base.json).
    #[arg(long, requires = "random_weights")]
    architecture: Option<PathBuf>,
}

impl ModelArgs {
    pub fn load(&self, device: DeviceSpec, training: bool) -> anyhow::Result<Pretrained> {
        let device = if training { device.training_device() } else { device.device() };
        Ok(if self.random_weights {
            Pretrained::random(&self.model, self.architecture.as_deref(), 0, &device)?
        } else {
            Pretrained::load(&self.model, &device)?
        })
    }
}

/// Row `r` of the synthetic prompt batch (the same formula as tools/bench/decode.py).
pub fn synthetic_prompt(r: usize, len: usize, vocab: usize) -> Vec<u32> {
    (0..len).map(|i| ((i * 7919 + r * 104_729 + 13) % (vocab - 100) + 100) as u32).collect()
}
