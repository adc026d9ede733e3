//! `pipeline export`: a model (GGUF file or HF folder) as a Hugging Face folder.

use std::path::PathBuf;

use clap::Args;
use trainer::{DeviceSpec, Pretrained};

#[derive(Args)]
pub struct ExportArgs {
    /// A GGUF file (dequantized to f32) or a Hugging Face model folder.
    #[arg(long)]
    model: PathBuf,
    /// The folder to write.
    #[arg(long)]
    out: PathBuf,
}

pub fn export(args: &ExportArgs) -> anyhow::Result<()> {
    let model = Pretrained::load(&args.model, &DeviceSpec::Cpu.device())?;
    trainer::export::save_hf(&model, &args.out)?;
    tracing::info!("wrote {}", args.out.display());
    Ok(())
}
