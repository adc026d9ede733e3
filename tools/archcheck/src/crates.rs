//! The crate graph from the manifests: it must have no cycle (dev and build dependencies
//! included) and its normal dependencies must point to strictly lower layers (`layers.toml`).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::error::{Error, read};
use crate::graph::{covering_cycles, cyclic_components};
use crate::manifest::{DepKind, Workspace};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Layer {
    Level(i64),
    /// Tests, benches, dev tools: may use any crate; no layered crate may use them (normal deps).
    Dev,
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Layer::Level(n) => write!(f, "{n}"),
            Layer::Dev => f.write_str("dev"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Layers {
    pub path: PathBuf,
    pub map: BTreeMap<String, Layer>,
}

impl Layers {
    /// Reads the `[layers]` table: `crate = <integer>` or `crate = "dev"`.
    pub fn load(path: &Path) -> Result<Layers, Error> {
        let table =
            read(path)?.parse::<Table>().map_err(|source| Error::Toml { path: path.to_owned(), source })?;
        let bad = |message: String| Error::Manifest { path: path.to_owned(), message };
        let layers =
            table.get("layers").and_then(Value::as_table).ok_or_else(|| bad("no [layers] table".into()))?;
        let mut map = BTreeMap::new();
        for (name, value) in layers {
            let layer = match value {
                Value::Integer(n) => Layer::Level(*n),
                Value::String(s) if s == "dev" => Layer::Dev,
                other => return Err(bad(format!("layers.{name} = {other}: expected an integer or \"dev\""))),
            };
            map.insert(name.clone(), layer);
        }
        Ok(Layers { path: path.to_owned(), map })
    }
}

#[derive(Debug, Default)]
pub struct CrateCheck {
    /// One line per crate: its layer and its workspace dependencies.
    pub graph: Vec<String>,
    pub violations: Vec<String>,
    pub warnings: Vec<String>,
}

pub fn check(ws: &Workspace, layers: &Layers) -> CrateCheck {
    let mut out = CrateCheck::default();
    let layer_of = |name: &str| layers.map.get(name).copied();
    let n = ws.crates.len();
    let mut adj = vec![Vec::new(); n];
    for (i, c) in ws.crates.iter().enumerate() {
        for d in &c.deps {
            if let Some(j) = ws.crate_index(&d.package)
                && !adj[i].contains(&j)
            {
                adj[i].push(j);
            }
        }
    }

    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by_key(|&i| {
        (layer_of(&ws.crates[i].name).map_or(1, |_| 0), layer_of(&ws.crates[i].name), &ws.crates[i].name)
    });
    let width = ws.crates.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for &i in &order {
        let c = &ws.crates[i];
        let layer = layer_of(&c.name).map_or_else(|| "?".to_owned(), |l| l.to_string());
        let mut deps: Vec<(DepKind, &str)> = c.deps.iter().map(|d| (d.kind, d.package.as_str())).collect();
        deps.sort();
        deps.dedup();
        let deps: Vec<String> = deps.iter().map(|(k, d)| format!("{d}{}", k.label())).collect();
        let arrow = if deps.is_empty() { String::new() } else { format!(" -> {}", deps.join(", ")) };
        out.graph.push(format!("{:<width$} [{layer}]{arrow}", c.name));
    }

    let rel = layers.path.strip_prefix(&ws.root).unwrap_or(&layers.path).display().to_string();
    for c in &ws.crates {
        let Some(own) = layer_of(&c.name) else {
            out.violations.push(format!("crate `{}` has no layer: add it to {rel}", c.name));
            continue;
        };
        for d in c.deps.iter().filter(|d| d.kind == DepKind::Normal) {
            match (own, layer_of(&d.package)) {
                (_, None) => {} // reported for that crate
                (Layer::Dev, _) => {}
                (Layer::Level(_), Some(Layer::Dev)) => out.violations.push(format!(
                    "`{}` (layer {own}) depends on dev crate `{}`: only [dev-dependencies] may",
                    c.name, d.package
                )),
                (Layer::Level(a), Some(Layer::Level(b))) if b >= a => out.violations.push(format!(
                    "`{}` (layer {a}) depends on `{}` (layer {b}): a crate may depend only on lower layers",
                    c.name, d.package
                )),
                _ => {}
            }
        }
    }
    for name in layers.map.keys() {
        if ws.crate_index(name).is_none() {
            out.warnings.push(format!("{rel} lists `{name}`, which is not a workspace crate"));
        }
    }
    for comp in cyclic_components(n, &adj) {
        for cycle in covering_cycles(&comp, &adj) {
            let names: Vec<&str> = cycle.iter().map(|&i| ws.crates[i].name.as_str()).collect();
            out.violations
                .push(format!("crate dependency cycle (dev/build deps count): {}", names.join(" -> ")));
        }
    }
    out
}
