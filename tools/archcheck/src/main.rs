//! `cargo run -p archcheck [-- --root DIR] [--layers FILE] [--all] [--edges]`: checks the
//! workspace (found upwards from the current folder), prints a summary and exits 1 on any
//! violation (2 when the workspace cannot be read).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, bail};

const USAGE: &str = "usage: archcheck [--root DIR] [--layers FILE] [--all] [--edges]
  --root DIR     workspace root (default: the nearest folder upwards with a [workspace] Cargo.toml)
  --layers FILE  layers file (default: <root>/tools/archcheck/layers.toml)
  --all          print every short cycle of each group (default: the first 15)
  --edges        also print every file -> file edge";

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("archcheck: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run() -> anyhow::Result<bool> {
    let mut root = None;
    let mut layers = None;
    let mut all = false;
    let mut list_edges = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--root" => root = Some(PathBuf::from(args.next().context("--root needs a folder")?)),
            "--layers" => layers = Some(PathBuf::from(args.next().context("--layers needs a file")?)),
            "--all" => all = true,
            "--edges" => list_edges = true,
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(true);
            }
            other => bail!("unknown argument {other:?}\n{USAGE}"),
        }
    }
    let root = match root {
        Some(r) => r,
        None => find_root(&std::env::current_dir()?)?,
    };
    let layers = layers.unwrap_or_else(|| root.join(archcheck::LAYERS));
    let report = archcheck::check(&root, Some(&layers))?;
    if list_edges {
        for (from, to, sites) in &report.edges {
            let places: Vec<String> = sites.iter().map(|s| format!("{}:{}", s.line, s.text)).collect();
            println!("{from} -> {to}  [{}]", places.join(", "));
        }
    }
    print!("{}", report.render(if all { 0 } else { 15 }));
    Ok(report.ok())
}

fn find_root(start: &Path) -> anyhow::Result<PathBuf> {
    for dir in start.ancestors() {
        let manifest = dir.join("Cargo.toml");
        if let Ok(text) = std::fs::read_to_string(&manifest)
            && text.lines().any(|l| l.trim() == "[workspace]")
        {
            return Ok(dir.to_owned());
        }
    }
    bail!("no Cargo.toml with [workspace] in {} or above; pass --root", start.display())
}
