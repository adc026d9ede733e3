//! What the check found, and its printout.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use crate::crates::CrateCheck;
use crate::edges::Site;

/// One edge of a printed cycle: the first place that made it, and how many more did.
#[derive(Debug, Clone)]
pub struct Step {
    pub from: String,
    pub to: String,
    pub site: Site,
    pub more: usize,
}

/// A set of files that import each other (a strongly connected component), with short cycles
/// that between them use each of its edges.
#[derive(Debug, Clone)]
pub struct Component {
    pub files: Vec<String>,
    pub edges: usize,
    pub cycles: Vec<Vec<Step>>,
}

#[derive(Debug)]
pub struct Report {
    pub root: PathBuf,
    pub crates: usize,
    pub targets: usize,
    pub files: usize,
    /// Every file -> file edge (workspace-relative paths) and the places that made it.
    pub edges: Vec<(String, String, Vec<Site>)>,
    /// Paths that resolved into the workspace.
    pub paths: usize,
    pub unresolved: Vec<(String, Site)>,
    pub components: Vec<Component>,
    pub crate_check: CrateCheck,
    /// Files that do not parse, modules without a file: skipped, and the check fails.
    pub errors: Vec<String>,
    /// `.rs` files in a crate's folder that no target's module tree reaches (not checked).
    pub unreached: Vec<String>,
    pub elapsed: Duration,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.components.is_empty() && self.crate_check.violations.is_empty() && self.errors.is_empty()
    }

    pub fn has_edge(&self, from: &str, to: &str) -> bool {
        self.edges.iter().any(|(f, t, _)| f == from && t == to)
    }

    /// Every edge leaving `from`, as `to` paths.
    pub fn edges_from(&self, from: &str) -> Vec<&str> {
        self.edges.iter().filter(|(f, _, _)| f == from).map(|(_, t, _)| t.as_str()).collect()
    }

    /// The printout: counts, the crate graph, each cyclic group with up to `max_cycles` of its
    /// short cycles (0: all), errors and violations, and a verdict line.
    pub fn render(&self, max_cycles: usize) -> String {
        let mut s = String::new();
        let cc = &self.crate_check;
        let _ = writeln!(s, "archcheck {}", self.root.display());
        let _ = writeln!(
            s,
            "  {} crates, {} targets, {} files ({} unparsable or missing, {} not in any module tree), {:.2?}",
            self.crates,
            self.targets,
            self.files,
            self.errors.len(),
            self.unreached.len(),
            self.elapsed
        );
        let _ = writeln!(
            s,
            "  {} file -> file edges from {} workspace paths ({} names not found, pointed at their module)",
            self.edges.len(),
            self.paths,
            self.unresolved.len()
        );
        let _ = writeln!(s, "crate graph [layer] -> workspace deps:");
        for line in &cc.graph {
            let _ = writeln!(s, "  {line}");
        }
        for w in &cc.warnings {
            let _ = writeln!(s, "  warning: {w}");
        }
        for v in &cc.violations {
            let _ = writeln!(s, "  VIOLATION: {v}");
        }
        for f in &self.unreached {
            let _ = writeln!(s, "  warning: {f} is in no module tree (not checked)");
        }
        for e in &self.errors {
            let _ = writeln!(s, "  ERROR: {e}");
        }
        let _ = writeln!(
            s,
            "file import cycles: {} groups of files that import each other",
            self.components.len()
        );
        for (n, comp) in self.components.iter().enumerate() {
            let prefix = common_dir(&comp.files);
            let short = |p: &str| p.strip_prefix(&prefix).unwrap_or(p).to_owned();
            let _ = writeln!(
                s,
                "  #{} in {prefix}: {} files, {} edges, {} short cycles cover them:",
                n + 1,
                comp.files.len(),
                comp.edges,
                comp.cycles.len()
            );
            let _ = writeln!(
                s,
                "    files: {}",
                comp.files.iter().map(|f| short(f)).collect::<Vec<_>>().join(" ")
            );
            let shown = if max_cycles == 0 { comp.cycles.len() } else { max_cycles.min(comp.cycles.len()) };
            for cycle in &comp.cycles[..shown] {
                let mut chain: Vec<String> = cycle.iter().map(|st| short(&st.from)).collect();
                chain.push(short(&cycle[0].from));
                let _ = writeln!(s, "    {}", chain.join(" -> "));
                for st in cycle {
                    let more = if st.more > 0 { format!(" (+{} more)", st.more) } else { String::new() };
                    let _ =
                        writeln!(s, "        {}:{} {}{more}", short(&st.from), st.site.line, st.site.text);
                }
            }
            if shown < comp.cycles.len() {
                let _ = writeln!(s, "    ... {} more cycles (--all prints them)", comp.cycles.len() - shown);
            }
        }
        let verdict = if self.ok() { "OK" } else { "FAIL" };
        let _ = writeln!(
            s,
            "{verdict}: {} file cycle groups, {} crate-graph violations, {} errors",
            self.components.len(),
            cc.violations.len(),
            self.errors.len()
        );
        s
    }
}

/// The longest directory prefix (ending in `/`) the paths share.
fn common_dir(paths: &[String]) -> String {
    let Some(first) = paths.first() else { return String::new() };
    let mut prefix = match first.rfind('/') {
        Some(i) => &first[..=i],
        None => "",
    };
    for p in paths {
        while !p.starts_with(prefix) {
            prefix = match prefix[..prefix.len() - 1].rfind('/') {
                Some(i) => &prefix[..=i],
                None => "",
            };
        }
    }
    prefix.to_owned()
}
