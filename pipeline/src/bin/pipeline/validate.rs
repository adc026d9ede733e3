//! `pipeline validate`: a config checked (its overrides applied), what it would run printed, and
//! each student's memory plan: nothing is run.

use std::path::Path;

use clap::Args;

use crate::args::ConfigArgs;

#[derive(Args)]
pub struct ValidateArgs {
    #[command(flatten)]
    config: ConfigArgs,
}

/// The `config.json` of models the paper trains, by folder name (see its SOURCES.md).
const PUBLISHED_CONFIGS: &str = "data/model_configs";

pub fn validate(args: &ValidateArgs) -> anyhow::Result<()> {
    let args = &args.config;
    let loaded = args.load()?;
    let c = &loaded.config;
    let strategies: Vec<&str> = c.generate.strategies.iter().map(|s| s.as_str()).collect();
    println!("{}: valid", args.config.display());
    for (name, import) in &c.generate.import {
        println!("  import     {name} <- {} (question = `{}`)", import.path.display(), import.question);
    }
    println!("  run        {} -> {}", c.run.name, c.run.out_dir.join(&c.run.name).display());
    println!(
        "  generate   {} x {} problems (k = {}) with llm `{}`",
        strategies.join(", "),
        c.generate.num_problems,
        c.generate.k,
        c.generate.llm
    );
    let students: Vec<&str> = c.train.students.keys().map(String::as_str).collect();
    println!("  students   {}", if students.is_empty() { "(none)".into() } else { students.join(", ") });
    // What the primary comparisons can detect, from report.power's assumptions.
    for (i, line) in pipeline::stages::report::power::describe(c).iter().enumerate() {
        println!("  {}  {line}", if i == 0 { "power    " } else { "         " });
    }
    // The memory plan of each student at the longest rows the config allows: a run that
    // cannot fit fails here, before any call is paid for.
    let t = &c.train;
    let devices = pipeline::stages::train::train_devices(t)?;
    let device = devices[0];
    let on = match devices.len() {
        1 => device.to_string(),
        n => format!("each of {n} devices ({} holds the optimizer)", device),
    };
    for (name, s) in &t.students {
        // A student not on this machine (a cluster path) is planned from its published
        // config.json when we ship it (data/model_configs/).
        let published = s
            .model_path
            .file_name()
            .map(|n| Path::new(PUBLISHED_CONFIGS).join(format!("{}.json", n.to_string_lossy())));
        let (model, from) = match (s.model_path.exists(), published) {
            (false, Some(p)) if p.exists() => (trainer::pretrained::model_config(&p), p),
            _ => (trainer::pretrained::model_config(&s.model_path), s.model_path.clone()),
        };
        let model = match model {
            Ok(model) => model,
            Err(e) => {
                println!("  memory     {name}: no plan yet ({e})");
                continue;
            }
        };
        if from != s.model_path {
            println!(
                "  memory     {name}: {} is not here; planned from {}",
                s.model_path.display(),
                from.display()
            );
        }
        let plan = pipeline::stages::train::memory_plan(c, &model, t.max_seq_len)?;
        println!(
            "  memory     {name}: {:.1} GB to train on {on} ({}, batch {} x {} tokens, activation checkpointing {})",
            plan.total_gb(),
            t.dtype.resolve(device),
            t.batch_size,
            t.max_seq_len,
            if t.checkpoint_activations { "on" } else { "off" },
        );
        for line in plan.table().lines() {
            println!("             {line}");
        }
        pipeline::stages::train::check_memory(c, &plan, &format!("train.students.{name}"))?;
    }
    Ok(())
}
