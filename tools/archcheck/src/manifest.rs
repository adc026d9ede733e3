//! The workspace from its Cargo.toml files: members, their targets (lib, bins, tests, benches,
//! examples, build script; explicit and auto-discovered) and their dependencies on each other.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use toml::{Table, Value};

use crate::error::{Error, read};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DepKind {
    Normal,
    Dev,
    Build,
}

impl DepKind {
    pub fn label(self) -> &'static str {
        match self {
            DepKind::Normal => "",
            DepKind::Dev => " (dev)",
            DepKind::Build => " (build)",
        }
    }
}

/// A dependency of one workspace crate on another.
#[derive(Debug, Clone)]
pub struct Dep {
    /// The name the code uses (`extern` name): the dependency key, `-` made `_`.
    pub extern_name: String,
    /// The package it points at (differs from the key with `package = "..."`).
    pub package: String,
    pub kind: DepKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    Lib,
    Bin,
    Test,
    Bench,
    Example,
    Build,
}

#[derive(Debug, Clone)]
pub struct Target {
    pub kind: TargetKind,
    pub root: PathBuf,
}

#[derive(Debug, Clone)]
pub struct Crate {
    pub name: String,
    /// The library's name in paths (`[lib] name`, else the package name with `-` made `_`).
    pub lib_name: String,
    pub dir: PathBuf,
    pub manifest: PathBuf,
    pub targets: Vec<Target>,
    /// Dependencies on other workspace members only.
    pub deps: Vec<Dep>,
}

#[derive(Debug, Clone)]
pub struct Workspace {
    pub root: PathBuf,
    pub crates: Vec<Crate>,
}

fn manifest_err(path: &Path, message: impl Into<String>) -> Error {
    Error::Manifest { path: path.to_owned(), message: message.into() }
}

fn load_toml(path: &Path) -> Result<Table, Error> {
    read(path)?.parse::<Table>().map_err(|source| Error::Toml { path: path.to_owned(), source })
}

impl Workspace {
    /// Reads `root/Cargo.toml` (`[workspace] members`, `exclude`; a trailing `*` globs
    /// directories) and every member's manifest.
    pub fn load(root: &Path) -> Result<Workspace, Error> {
        let root = root.canonicalize().map_err(|source| Error::Io { path: root.to_owned(), source })?;
        let root_manifest = root.join("Cargo.toml");
        let table = load_toml(&root_manifest)?;
        let ws = table
            .get("workspace")
            .and_then(Value::as_table)
            .ok_or_else(|| manifest_err(&root_manifest, "no [workspace] table"))?;
        let strings = |key: &str| -> Vec<String> {
            ws.get(key)
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
                .unwrap_or_default()
        };
        let exclude: BTreeSet<PathBuf> = strings("exclude").iter().map(|e| root.join(e)).collect();
        let mut dirs = Vec::new();
        if table.contains_key("package") {
            dirs.push(root.clone());
        }
        for member in strings("members") {
            if let Some(prefix) = member.strip_suffix('*') {
                let base = root.join(prefix);
                let entries =
                    std::fs::read_dir(&base).map_err(|source| Error::Io { path: base.clone(), source })?;
                let mut found: Vec<PathBuf> = entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.join("Cargo.toml").is_file())
                    .collect();
                found.sort();
                dirs.extend(found);
            } else {
                dirs.push(root.join(member));
            }
        }
        dirs.retain(|d| !exclude.contains(d));
        let ws_deps = ws.get("dependencies").and_then(Value::as_table).cloned().unwrap_or_default();

        let mut crates = Vec::new();
        let mut raw_deps = Vec::new();
        for dir in dirs {
            let manifest = dir.join("Cargo.toml");
            let t = load_toml(&manifest)?;
            let package = t
                .get("package")
                .and_then(Value::as_table)
                .ok_or_else(|| manifest_err(&manifest, "no [package] table"))?;
            let name = package
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| manifest_err(&manifest, "no package.name"))?
                .to_owned();
            let lib_name = t
                .get("lib")
                .and_then(|l| l.get("name"))
                .and_then(Value::as_str)
                .map_or_else(|| name.replace('-', "_"), str::to_owned);
            let targets = targets(&dir, &manifest, &name, &t)?;
            raw_deps.push(deps(&t, &ws_deps));
            crates.push(Crate { name, lib_name, dir, manifest, targets, deps: Vec::new() });
        }
        let names: BTreeSet<String> = crates.iter().map(|c| c.name.clone()).collect();
        for (c, deps) in crates.iter_mut().zip(raw_deps) {
            c.deps = deps.into_iter().filter(|d| names.contains(&d.package)).collect();
        }
        Ok(Workspace { root, crates })
    }

    pub fn crate_index(&self, package: &str) -> Option<usize> {
        self.crates.iter().position(|c| c.name == package)
    }
}

/// Workspace dependencies of one manifest: `[dependencies]`, `[dev-dependencies]`,
/// `[build-dependencies]` and their `[target.'cfg'.*]` forms; `workspace = true` inherits `package`.
fn deps(t: &Table, ws_deps: &Table) -> Vec<Dep> {
    fn push_all<'t>(t: &'t Table, out: &mut Vec<(DepKind, &'t Table)>) {
        for (key, kind) in [
            ("dependencies", DepKind::Normal),
            ("dev-dependencies", DepKind::Dev),
            ("dev_dependencies", DepKind::Dev),
            ("build-dependencies", DepKind::Build),
            ("build_dependencies", DepKind::Build),
        ] {
            if let Some(d) = t.get(key).and_then(Value::as_table) {
                out.push((kind, d));
            }
        }
    }
    let mut tables = Vec::new();
    push_all(t, &mut tables);
    if let Some(targets) = t.get("target").and_then(Value::as_table) {
        for cfg in targets.values().filter_map(Value::as_table) {
            push_all(cfg, &mut tables);
        }
    }
    let mut out = Vec::new();
    for (kind, table) in tables {
        for (key, value) in table {
            let mut package = value.get("package").and_then(Value::as_str).map(str::to_owned);
            if value.get("workspace").and_then(Value::as_bool) == Some(true) && package.is_none() {
                package = ws_deps
                    .get(key)
                    .and_then(|w| w.get("package"))
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            out.push(Dep {
                extern_name: key.replace('-', "_"),
                package: package.unwrap_or_else(|| key.clone()),
                kind,
            });
        }
    }
    out
}

/// Every target root of a package, as cargo finds them.
fn targets(dir: &Path, manifest: &Path, name: &str, t: &Table) -> Result<Vec<Target>, Error> {
    let package = t.get("package").and_then(Value::as_table);
    let auto = |key: &str| package.and_then(|p| p.get(key)).and_then(Value::as_bool).unwrap_or(true);
    let mut out: Vec<Target> = Vec::new();
    let add = |kind: TargetKind, root: PathBuf, out: &mut Vec<Target>| {
        if !out.iter().any(|x| x.root == root) {
            out.push(Target { kind, root });
        }
    };

    match t.get("lib").and_then(|l| l.get("path")).and_then(Value::as_str) {
        Some(p) => add(TargetKind::Lib, dir.join(p), &mut out),
        None if dir.join("src/lib.rs").is_file() => add(TargetKind::Lib, dir.join("src/lib.rs"), &mut out),
        None => {}
    }

    for (section, subdir, kind, auto_key) in [
        ("bin", "src/bin", TargetKind::Bin, "autobins"),
        ("test", "tests", TargetKind::Test, "autotests"),
        ("bench", "benches", TargetKind::Bench, "autobenches"),
        ("example", "examples", TargetKind::Example, "autoexamples"),
    ] {
        for entry in t.get(section).and_then(Value::as_array).into_iter().flatten() {
            let path = match (
                entry.get("path").and_then(Value::as_str),
                entry.get("name").and_then(Value::as_str),
            ) {
                (Some(p), _) => dir.join(p),
                (None, Some(n))
                    if kind == TargetKind::Bin && n == name && dir.join("src/main.rs").is_file() =>
                {
                    dir.join("src/main.rs")
                }
                (None, Some(n)) => {
                    let flat = dir.join(subdir).join(format!("{n}.rs"));
                    if flat.is_file() { flat } else { dir.join(subdir).join(n).join("main.rs") }
                }
                (None, None) => {
                    return Err(manifest_err(manifest, format!("a [[{section}]] without name or path")));
                }
            };
            if !path.is_file() {
                return Err(manifest_err(
                    manifest,
                    format!("[[{section}]] {} does not exist", path.display()),
                ));
            }
            add(kind, path, &mut out);
        }
        if auto(auto_key) {
            if kind == TargetKind::Bin && dir.join("src/main.rs").is_file() {
                add(kind, dir.join("src/main.rs"), &mut out);
            }
            for path in discover(&dir.join(subdir)) {
                add(kind, path, &mut out);
            }
        }
    }

    match package.and_then(|p| p.get("build")) {
        Some(Value::String(p)) => add(TargetKind::Build, dir.join(p), &mut out),
        Some(Value::Boolean(false)) => {}
        _ if dir.join("build.rs").is_file() => add(TargetKind::Build, dir.join("build.rs"), &mut out),
        _ => {}
    }
    Ok(out)
}

/// `dir/*.rs` and `dir/*/main.rs`, sorted.
fn discover(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut found: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter_map(|p| {
            if p.is_file() && p.extension().is_some_and(|e| e == "rs") {
                Some(p)
            } else if p.join("main.rs").is_file() {
                Some(p.join("main.rs"))
            } else {
                None
            }
        })
        .collect();
    found.sort();
    found
}
