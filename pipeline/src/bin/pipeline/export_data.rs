//! `pipeline export-data`: a run's verified data as LLaMA-Factory and Hugging Face datasets
//! files (see `pipeline::exports`).

use std::path::PathBuf;

use clap::Args;

use crate::args::ConfigArgs;

#[derive(Args)]
pub struct ExportDataArgs {
    #[command(flatten)]
    config: ConfigArgs,
    /// Where to write (default: `<run>/exports/`).
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn export_data(a: &ExportDataArgs) -> anyhow::Result<()> {
    let loaded = a.config.load()?;
    let config = &loaded.config;
    let run_root = config.run.out_dir.join(&config.run.name);
    let out = a.out.clone().unwrap_or_else(|| run_root.join("exports"));
    let written = pipeline::exports::export_run(config, &run_root, &out)?;
    println!("| arm | verified rows |\n|---|---:|");
    for (arm, rows) in &written.rows {
        println!("| {arm} | {rows} |");
    }
    println!(
        "{} files in {}: llamafactory/ (alpaca and sharegpt JSON, dataset_info.json) and hf/<arm>/ (data/train.jsonl, README.md dataset card)",
        written.files.len(),
        out.display()
    );
    Ok(())
}
