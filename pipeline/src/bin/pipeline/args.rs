//! Argument groups more than one subcommand takes.

use std::path::PathBuf;

use clap::Args;
use pipeline::config::{self, LoadedConfig};

#[derive(Args)]
pub struct ConfigArgs {
    /// The TOML config, e.g. configs/default.toml.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Override any key: --set generate.k=3 --set 'generate.strategies=["vs_cot"]'.
    #[arg(long = "set", value_name = "KEY.PATH=VALUE")]
    pub set: Vec<String>,
}

impl ConfigArgs {
    /// The config with its overrides applied.
    pub fn load(&self) -> anyhow::Result<LoadedConfig> {
        Ok(config::load(&self.config, &self.set)?)
    }
}
