//! The Verbalized-Sampling synthetic-data pipeline: config, run directory and manifests, the
//! stage runner, the strategies, and (as they land) the LLM clients and stages.
//! Library code never prints: progress goes through [`progress::Reporter`], logs through
//! `tracing`.

pub mod config;
pub mod exports;
pub mod grade_file;
pub mod identity;
pub mod manifest;
pub mod progress;
pub mod run_dir;
pub mod runner;
pub mod slurm;
pub mod stages;
pub mod strategy;
