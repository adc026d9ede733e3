//! The module tree of every target: which file each module lives in, what it defines and what
//! its `use` items bind (for following re-exports). Inline `mod x { }` blocks are modules of
//! their own that live in their parent's file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use syn::ext::IdentExt;
use syn::{Attribute, Expr, Item, Lit, Meta, UseTree};

use crate::error::{Error, read};
use crate::manifest::{TargetKind, Workspace};

pub type FileId = usize;
pub type ModId = usize;

pub struct SourceFile {
    /// Relative to the workspace root where it lies inside it.
    pub rel: String,
    /// `None` when it does not parse (the error is in [`Tree::errors`]).
    pub ast: Option<Rc<syn::File>>,
}

/// A path as written (in a `use` item, or in code).
#[derive(Debug, Clone)]
pub struct Written {
    pub leading_colon: bool,
    pub segs: Vec<String>,
    pub line: usize,
}

impl Written {
    pub fn text(&self) -> String {
        let body = self.segs.join("::");
        if self.leading_colon { format!("::{body}") } else { body }
    }
}

/// One leaf of a `use` tree: `bind` is the name it introduces (`None` for `as _` and globs).
#[derive(Debug, Clone)]
pub struct UseLeaf {
    pub path: Written,
    pub bind: Option<String>,
    pub glob: bool,
}

pub struct Module {
    pub target: usize,
    pub file: FileId,
    pub parent: Option<ModId>,
    pub children: HashMap<String, ModId>,
    /// Items defined here (both namespaces), with the file that defines them (a
    /// `#[macro_export]` macro is also listed at the crate root, with its own file).
    pub items: HashMap<String, FileId>,
    pub bindings: HashMap<String, Vec<Written>>,
    pub globs: Vec<Written>,
    /// Where `mod x;` inside this module looks for `x.rs` / `x/mod.rs`.
    child_dir: PathBuf,
}

pub struct TargetTree {
    pub crate_index: usize,
    pub kind: TargetKind,
    pub root: ModId,
    /// Workspace crates this target can name: extern name -> crate index.
    pub externs: HashMap<String, usize>,
}

/// Every target's module tree over one shared set of parsed files.
pub struct Tree {
    pub files: Vec<SourceFile>,
    file_ids: HashMap<PathBuf, FileId>,
    pub modules: Vec<Module>,
    pub targets: Vec<TargetTree>,
    /// Modules that start a file (not inline), with their file: what the edge pass walks.
    pub file_modules: Vec<ModId>,
    /// The library target of each crate, by crate index.
    pub libs: HashMap<usize, usize>,
    pub errors: Vec<Error>,
}

const MAX_DEPTH: usize = 64;

impl Tree {
    pub fn build(ws: &Workspace) -> Tree {
        let mut tree = Tree {
            files: Vec::new(),
            file_ids: HashMap::new(),
            modules: Vec::new(),
            targets: Vec::new(),
            file_modules: Vec::new(),
            libs: HashMap::new(),
            errors: Vec::new(),
        };
        for (ci, krate) in ws.crates.iter().enumerate() {
            for target in &krate.targets {
                let ti = tree.targets.len();
                if target.kind == TargetKind::Lib {
                    tree.libs.insert(ci, ti);
                }
                let mut externs = HashMap::new();
                for dep in &krate.deps {
                    let usable = match target.kind {
                        TargetKind::Lib | TargetKind::Bin => dep.kind == crate::manifest::DepKind::Normal,
                        TargetKind::Build => dep.kind == crate::manifest::DepKind::Build,
                        _ => dep.kind != crate::manifest::DepKind::Build,
                    };
                    if let (true, Some(di)) = (usable, ws.crate_index(&dep.package)) {
                        externs.insert(dep.extern_name.clone(), di);
                    }
                }
                if target.kind != TargetKind::Lib && target.kind != TargetKind::Build {
                    externs.insert(krate.lib_name.clone(), ci);
                }
                let file = tree.file(&ws.root, &target.root);
                let dir = target.root.parent().unwrap_or(Path::new("")).to_owned();
                let root = tree.new_module(ti, file, None, dir);
                tree.targets.push(TargetTree { crate_index: ci, kind: target.kind, root, externs });
                tree.fill_file(root, file, &ws.root, 0);
            }
        }
        tree
    }

    fn new_module(
        &mut self,
        target: usize,
        file: FileId,
        parent: Option<ModId>,
        child_dir: PathBuf,
    ) -> ModId {
        self.modules.push(Module {
            target,
            file,
            parent,
            children: HashMap::new(),
            items: HashMap::new(),
            bindings: HashMap::new(),
            globs: Vec::new(),
            child_dir,
        });
        self.modules.len() - 1
    }

    /// The file's id, parsing it the first time.
    fn file(&mut self, ws_root: &Path, path: &Path) -> FileId {
        let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
        if let Some(&id) = self.file_ids.get(&path) {
            return id;
        }
        let rel = path.strip_prefix(ws_root).unwrap_or(&path).to_string_lossy().into_owned();
        let ast = match read(&path) {
            Ok(text) => match syn::parse_file(&text) {
                Ok(f) => Some(Rc::new(f)),
                Err(e) => {
                    let line = e.span().start().line;
                    self.errors.push(Error::Parse { path: path.clone(), line, message: e.to_string() });
                    None
                }
            },
            Err(e) => {
                self.errors.push(e);
                None
            }
        };
        self.files.push(SourceFile { rel, ast });
        let id = self.files.len() - 1;
        self.file_ids.insert(path, id);
        id
    }

    pub fn path_of(&self, file: FileId) -> &str {
        &self.files[file].rel
    }

    fn fill_file(&mut self, module: ModId, file: FileId, ws_root: &Path, depth: usize) {
        self.file_modules.push(module);
        let Some(ast) = self.files[file].ast.clone() else { return };
        if depth > MAX_DEPTH {
            return;
        }
        self.fill(module, &ast.items, false, ws_root, depth);
    }

    fn fill(&mut self, m: ModId, items: &[Item], in_inline: bool, ws_root: &Path, depth: usize) {
        let file = self.modules[m].file;
        for item in items {
            let name = match item {
                Item::Const(i) => Some(&i.ident),
                Item::Enum(i) => Some(&i.ident),
                Item::Fn(i) => Some(&i.sig.ident),
                Item::Static(i) => Some(&i.ident),
                Item::Struct(i) => Some(&i.ident),
                Item::Trait(i) => Some(&i.ident),
                Item::TraitAlias(i) => Some(&i.ident),
                Item::Type(i) => Some(&i.ident),
                Item::Union(i) => Some(&i.ident),
                Item::Macro(i) => {
                    if let Some(ident) = &i.ident
                        && has_attr(&i.attrs, "macro_export")
                    {
                        let root = self.targets_root(m);
                        self.modules[root].items.insert(ident.unraw().to_string(), file);
                    }
                    i.ident.as_ref()
                }
                Item::ForeignMod(f) => {
                    for fi in &f.items {
                        let ident = match fi {
                            syn::ForeignItem::Fn(x) => &x.sig.ident,
                            syn::ForeignItem::Static(x) => &x.ident,
                            syn::ForeignItem::Type(x) => &x.ident,
                            _ => continue,
                        };
                        self.modules[m].items.insert(ident.unraw().to_string(), file);
                    }
                    None
                }
                Item::ExternCrate(e) => {
                    let bind = e.rename.as_ref().map_or(&e.ident, |(_, r)| r).unraw().to_string();
                    if e.ident != "self" && bind != "_" {
                        let path = Written {
                            leading_colon: true,
                            segs: vec![e.ident.unraw().to_string()],
                            line: e.ident.span().start().line,
                        };
                        self.modules[m].bindings.entry(bind).or_default().push(path);
                    }
                    None
                }
                Item::Use(u) => {
                    for leaf in use_leaves(&u.tree, u.leading_colon.is_some()) {
                        if leaf.glob {
                            self.modules[m].globs.push(leaf.path);
                        } else if let Some(bind) = leaf.bind {
                            self.modules[m].bindings.entry(bind).or_default().push(leaf.path);
                        }
                    }
                    None
                }
                Item::Mod(im) => {
                    self.declare_mod(m, im, in_inline, ws_root, depth);
                    None
                }
                _ => None,
            };
            if let Some(ident) = name {
                self.modules[m].items.insert(ident.unraw().to_string(), file);
            }
        }
    }

    fn targets_root(&self, m: ModId) -> ModId {
        self.targets[self.modules[m].target].root
    }

    fn declare_mod(&mut self, m: ModId, im: &syn::ItemMod, in_inline: bool, ws_root: &Path, depth: usize) {
        let name = im.ident.unraw().to_string();
        let file = self.modules[m].file;
        let target = self.modules[m].target;
        let path_attr = string_attr(&im.attrs, "path");
        let file_dir = Path::new(&self.files[file].rel);
        let file_dir = ws_root.join(file_dir).parent().map(Path::to_owned).unwrap_or_default();
        let base = if in_inline { self.modules[m].child_dir.clone() } else { file_dir };
        match &im.content {
            Some((_, items)) => {
                let dir = match &path_attr {
                    Some(p) => base.join(p),
                    None => self.modules[m].child_dir.join(&name),
                };
                let child = self.new_module(target, file, Some(m), dir);
                self.modules[m].children.insert(name, child);
                self.fill(child, items, true, ws_root, depth + 1);
            }
            None => {
                let candidates = match &path_attr {
                    Some(p) => vec![base.join(p)],
                    None => {
                        let d = &self.modules[m].child_dir;
                        vec![d.join(format!("{name}.rs")), d.join(&name).join("mod.rs")]
                    }
                };
                let Some(found) = candidates.iter().find(|c| c.is_file()) else {
                    // A `#[cfg]`-gated module may be absent on purpose.
                    if !has_attr(&im.attrs, "cfg") {
                        self.errors.push(Error::MissingModule {
                            path: ws_root.join(&self.files[file].rel),
                            line: im.ident.span().start().line,
                            name,
                            looked: candidates
                                .iter()
                                .map(|c| c.display().to_string())
                                .collect::<Vec<_>>()
                                .join(", "),
                        });
                    }
                    return;
                };
                let mod_rs = path_attr.is_some() || found.file_name().is_some_and(|f| f == "mod.rs");
                let parent_dir = found.parent().unwrap_or(Path::new("")).to_owned();
                let child_dir = if mod_rs { parent_dir } else { parent_dir.join(&name) };
                let child_file = self.file(ws_root, found);
                let child = self.new_module(target, child_file, Some(m), child_dir);
                self.modules[m].children.insert(name, child);
                self.fill_file(child, child_file, ws_root, depth + 1);
            }
        }
    }
}

fn has_attr(attrs: &[Attribute], name: &str) -> bool {
    attrs.iter().any(|a| a.path().is_ident(name))
}

fn string_attr(attrs: &[Attribute], name: &str) -> Option<String> {
    attrs.iter().find_map(|a| match &a.meta {
        Meta::NameValue(nv) if nv.path.is_ident(name) => match &nv.value {
            Expr::Lit(syn::ExprLit { lit: Lit::Str(s), .. }) => Some(s.value()),
            _ => None,
        },
        _ => None,
    })
}

/// Every leaf of a `use` tree, as a full path: groups expanded, `self` in a group naming its
/// prefix, renames binding their new name.
pub fn use_leaves(tree: &UseTree, leading_colon: bool) -> Vec<UseLeaf> {
    fn walk(tree: &UseTree, prefix: &mut Vec<String>, leading_colon: bool, out: &mut Vec<UseLeaf>) {
        let written = |segs: Vec<String>, line: usize| Written { leading_colon, segs, line };
        match tree {
            UseTree::Path(p) => {
                prefix.push(p.ident.unraw().to_string());
                walk(&p.tree, prefix, leading_colon, out);
                prefix.pop();
            }
            UseTree::Name(n) => {
                let line = n.ident.span().start().line;
                let name = n.ident.unraw().to_string();
                if name == "self" {
                    let bind = prefix.last().cloned();
                    out.push(UseLeaf { path: written(prefix.clone(), line), bind, glob: false });
                } else {
                    let mut segs = prefix.clone();
                    segs.push(name.clone());
                    out.push(UseLeaf { path: written(segs, line), bind: Some(name), glob: false });
                }
            }
            UseTree::Rename(r) => {
                let line = r.ident.span().start().line;
                let name = r.ident.unraw().to_string();
                let mut segs = prefix.clone();
                if name != "self" {
                    segs.push(name);
                }
                let bind = r.rename.unraw().to_string();
                let bind = (bind != "_").then_some(bind);
                out.push(UseLeaf { path: written(segs, line), bind, glob: false });
            }
            UseTree::Glob(g) => {
                let line = g.star_token.spans[0].start().line;
                out.push(UseLeaf { path: written(prefix.clone(), line), bind: None, glob: true });
            }
            UseTree::Group(g) => {
                for t in &g.items {
                    walk(t, prefix, leading_colon, out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(tree, &mut Vec::new(), leading_colon, &mut out);
    out
}
