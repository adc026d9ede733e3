//! Proves the workspace's architecture rules and says what breaks them:
//!
//! 1. no import cycle between source files: every target's module tree is mapped, every `use`
//!    leaf and every path in code that leads into the workspace is resolved to the file that
//!    defines what it names (re-exports and globs followed), and the strongly connected groups of
//!    the file graph are printed as short cycles with the path that made each edge;
//! 2. the crate graph points one way: no cycle (dev and build dependencies included), and normal
//!    dependencies only to crates in lower layers of `tools/archcheck/layers.toml`.
//!
//! `cargo run -p archcheck` checks the workspace it is run in.

pub mod crates;
pub mod edges;
pub mod error;
pub mod graph;
pub mod manifest;
pub mod modules;
pub mod report;
pub mod resolve;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context as _;

pub use report::Report;
use report::{Component, Step};

/// The layers file, relative to the workspace root.
pub const LAYERS: &str = "tools/archcheck/layers.toml";

/// Runs both checks on the workspace at `root`. Without `layers` the crate graph is still
/// checked for cycles but not for layering. An error means the workspace could not be read;
/// violations and unparsable files are in the report.
pub fn check(root: &Path, layers: Option<&Path>) -> anyhow::Result<Report> {
    let start = Instant::now();
    let ws = manifest::Workspace::load(root).context("reading the workspace manifests")?;
    let layers = match layers {
        Some(p) => Some(crates::Layers::load(p).context("reading the layers file")?),
        None => None,
    };
    let tree = modules::Tree::build(&ws);
    let found = edges::collect(&tree);

    let n = tree.files.len();
    let mut adj = vec![Vec::new(); n];
    for &(from, to) in found.map.keys() {
        adj[from].push(to);
    }
    let components = graph::cyclic_components(n, &adj)
        .into_iter()
        .map(|comp| {
            let edges = comp.iter().map(|&u| adj[u].iter().filter(|v| comp.contains(v)).count()).sum();
            let cycles = graph::covering_cycles(&comp, &adj)
                .into_iter()
                .map(|cycle| {
                    cycle
                        .windows(2)
                        .map(|w| {
                            let sites = &found.map[&(w[0], w[1])];
                            Step {
                                from: tree.path_of(w[0]).to_owned(),
                                to: tree.path_of(w[1]).to_owned(),
                                site: sites[0].clone(),
                                more: sites.len() - 1,
                            }
                        })
                        .collect()
                })
                .collect();
            Component { files: comp.iter().map(|&f| tree.path_of(f).to_owned()).collect(), edges, cycles }
        })
        .collect();

    let crate_check = match &layers {
        Some(l) => crates::check(&ws, l),
        None => {
            let unlayered = crates::Layers { path: PathBuf::new(), map: Default::default() };
            let mut c = crates::check(&ws, &unlayered);
            c.violations.retain(|v| v.starts_with("crate dependency cycle"));
            c.warnings.clear();
            c
        }
    };

    let reached: BTreeSet<&str> = tree.files.iter().map(|f| f.rel.as_str()).collect();
    let mut unreached = Vec::new();
    for c in &ws.crates {
        for f in rust_files(&c.dir) {
            let rel = f.strip_prefix(&ws.root).unwrap_or(&f).to_string_lossy().into_owned();
            if !reached.contains(rel.as_str()) {
                unreached.push(rel);
            }
        }
    }

    Ok(Report {
        root: ws.root.clone(),
        crates: ws.crates.len(),
        targets: tree.targets.len(),
        files: n,
        edges: found
            .map
            .iter()
            .map(|(&(f, t), sites)| (tree.path_of(f).to_owned(), tree.path_of(t).to_owned(), sites.clone()))
            .collect(),
        paths: found.paths,
        unresolved: found.unresolved.iter().map(|(f, s)| (tree.path_of(*f).to_owned(), s.clone())).collect(),
        components,
        crate_check,
        errors: tree.errors.iter().map(ToString::to_string).collect(),
        unreached,
        elapsed: start.elapsed(),
    })
}

/// `.rs` files under a crate's folder, leaving out hidden folders, `target*` and nested packages.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(kind) = entry.file_type() else { continue };
            if kind.is_dir() {
                if !name.starts_with('.') && !name.starts_with("target") && !path.join("Cargo.toml").is_file()
                {
                    stack.push(path);
                }
            } else if kind.is_file() && name.ends_with(".rs") {
                out.push(path.canonicalize().unwrap_or(path));
            }
        }
    }
    out.sort();
    out
}
