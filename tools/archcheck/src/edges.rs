//! File -> file edges: every `use` leaf and every path in code (types, expressions, patterns,
//! macro invocations' paths and, by a token scan, `crate::`/`self::`/`super::`/workspace-crate
//! paths inside macro arguments), resolved to the file that defines what it names.

use std::collections::BTreeMap;

use proc_macro2::{TokenStream, TokenTree};
use syn::ext::IdentExt;
use syn::visit::{self, Visit};

use crate::modules::{FileId, ModId, Tree, Written, use_leaves};
use crate::resolve::{Resolution, Resolver};

/// Where a path made an edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub line: usize,
    pub text: String,
}

/// Every edge `from -> to` (distinct files), with each place that made it.
#[derive(Debug, Default)]
pub struct Edges {
    pub map: BTreeMap<(FileId, FileId), Vec<Site>>,
    /// Paths into the workspace naming something not found (pointed at the last module reached).
    pub unresolved: Vec<(FileId, Site)>,
    /// Paths that resolved into the workspace (same-file ones included).
    pub paths: usize,
}

pub fn collect(tree: &Tree) -> Edges {
    let resolver = Resolver::new(tree);
    let mut edges = Edges::default();
    for &m in &tree.file_modules {
        let file = tree.modules[m].file;
        let Some(ast) = tree.files[file].ast.clone() else { continue };
        let mut c = Collector { tree, resolver: &resolver, module: m, file, edges: &mut edges };
        for item in &ast.items {
            c.visit_item(item);
        }
    }
    for sites in edges.map.values_mut() {
        sites.sort_by_key(|s| s.line);
        sites.dedup();
    }
    edges
}

struct Collector<'t, 'e> {
    tree: &'t Tree,
    resolver: &'t Resolver<'t>,
    module: ModId,
    file: FileId,
    edges: &'e mut Edges,
}

impl Collector<'_, '_> {
    fn record(&mut self, path: &Written, glob: bool) {
        let text = if glob { format!("{}::*", path.text()) } else { path.text() };
        let site = || Site { line: path.line, text: text.clone() };
        let to = match self.resolver.resolve(self.module, path) {
            Resolution::Defined(f) => f,
            Resolution::Unresolved(f) => {
                self.edges.unresolved.push((self.file, site()));
                f
            }
            Resolution::External => return,
        };
        self.edges.paths += 1;
        if to != self.file {
            self.edges.map.entry((self.file, to)).or_default().push(site());
        }
    }

    /// Whether a path in code can lead into the workspace: a relative start, a workspace crate,
    /// or a name the module binds or declares.
    fn worth_resolving(&self, leading_colon: bool, first: &str, len: usize) -> bool {
        let module = &self.tree.modules[self.module];
        let externs = &self.tree.targets[module.target].externs;
        if leading_colon {
            return externs.contains_key(first);
        }
        match first {
            "crate" | "super" => true,
            "self" => len > 1,
            "Self" => false,
            _ => {
                len > 1
                    && (externs.contains_key(first)
                        || module.children.contains_key(first)
                        || module.bindings.contains_key(first)
                        || !module.globs.is_empty())
            }
        }
    }

    /// `crate::`, `self::`, `super::` and workspace-crate paths among a macro's tokens.
    fn scan_tokens(&mut self, tokens: TokenStream) {
        let tts: Vec<TokenTree> = tokens.into_iter().collect();
        let externs = &self.tree.targets[self.tree.modules[self.module].target].externs;
        let mut i = 0;
        let mut found = Vec::new();
        while i < tts.len() {
            match &tts[i] {
                TokenTree::Group(g) => {
                    self.scan_tokens(g.stream());
                    i += 1;
                }
                TokenTree::Ident(id)
                    if {
                        let s = id.to_string();
                        matches!(s.as_str(), "crate" | "self" | "super") || externs.contains_key(&s)
                    } && !preceded_by_colons(&tts, i)
                        && colons_at(&tts, i + 1) =>
                {
                    let mut segs = vec![id.unraw().to_string()];
                    let line = id.span().start().line;
                    let mut j = i + 1;
                    while colons_at(&tts, j) {
                        match tts.get(j + 2) {
                            Some(TokenTree::Ident(next)) => {
                                segs.push(next.unraw().to_string());
                                j += 3;
                            }
                            _ => break,
                        }
                    }
                    found.push(Written { leading_colon: false, segs, line });
                    i = j.max(i + 1);
                }
                _ => i += 1,
            }
        }
        for w in found {
            self.record(&w, false);
        }
    }
}

fn is_colon(t: Option<&TokenTree>) -> bool {
    matches!(t, Some(TokenTree::Punct(p)) if p.as_char() == ':')
}

fn colons_at(tts: &[TokenTree], i: usize) -> bool {
    matches!(tts.get(i), Some(TokenTree::Punct(p)) if p.as_char() == ':' && p.spacing() == proc_macro2::Spacing::Joint)
        && is_colon(tts.get(i + 1))
}

fn preceded_by_colons(tts: &[TokenTree], i: usize) -> bool {
    i >= 2 && is_colon(tts.get(i - 1)) && is_colon(tts.get(i - 2))
}

impl<'ast> Visit<'ast> for Collector<'_, '_> {
    fn visit_item_mod(&mut self, i: &'ast syn::ItemMod) {
        // `mod child;` is no edge; an inline module's paths resolve inside it.
        let Some((_, items)) = &i.content else { return };
        let saved = self.module;
        if let Some(&child) = self.tree.modules[self.module].children.get(&i.ident.unraw().to_string()) {
            self.module = child;
        }
        for item in items {
            self.visit_item(item);
        }
        self.module = saved;
    }

    fn visit_item_use(&mut self, i: &'ast syn::ItemUse) {
        for leaf in use_leaves(&i.tree, i.leading_colon.is_some()) {
            self.record(&leaf.path, leaf.glob);
        }
    }

    fn visit_path(&mut self, p: &'ast syn::Path) {
        if let Some(first) = p.segments.first() {
            let first_name = first.ident.unraw().to_string();
            if self.worth_resolving(p.leading_colon.is_some(), &first_name, p.segments.len()) {
                let written = Written {
                    leading_colon: p.leading_colon.is_some(),
                    segs: p.segments.iter().map(|s| s.ident.unraw().to_string()).collect(),
                    line: first.ident.span().start().line,
                };
                self.record(&written, false);
            }
        }
        visit::visit_path(self, p);
    }

    fn visit_macro(&mut self, m: &'ast syn::Macro) {
        self.visit_path(&m.path);
        self.scan_tokens(m.tokens.clone());
    }

    fn visit_attribute(&mut self, _: &'ast syn::Attribute) {}

    /// `pub(crate)`, `pub(super)`, `pub(in path)` name where an item is visible, not a dependency.
    fn visit_visibility(&mut self, _: &'ast syn::Visibility) {}
}
