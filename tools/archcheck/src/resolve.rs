//! Name resolution, as far as the architecture check needs it: a path to the file that defines
//! what it names, following modules, `use` re-exports (any visibility) and globs.

use std::collections::HashSet;

use crate::modules::{FileId, ModId, Tree, Written};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Module(ModId),
    /// An item (or something inside one: a variant, an associated item), in the file defining it.
    Item(FileId),
    /// Outside the workspace (std, a registry crate), or a name the code binds locally.
    External,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The file that defines what the path names.
    Defined(FileId),
    /// The path enters the workspace but a name in it was not found (a macro made it, say):
    /// the file of the last module reached.
    Unresolved(FileId),
    External,
}

pub struct Resolver<'a> {
    tree: &'a Tree,
}

/// Re-exports that lead back to themselves stop here.
type Guard = HashSet<(ModId, String)>;

const MAX_DEPTH: usize = 32;

impl<'a> Resolver<'a> {
    pub fn new(tree: &'a Tree) -> Self {
        Resolver { tree }
    }

    /// Resolves `path` as written in module `from`.
    pub fn resolve(&self, from: ModId, path: &Written) -> Resolution {
        let mut guard = Guard::new();
        match self.walk(from, path.leading_colon, &path.segs, &mut guard, 0) {
            Walk::Found(e) => self.entity_file(e).map_or(Resolution::External, Resolution::Defined),
            Walk::Stuck(m) => Resolution::Unresolved(self.tree.modules[m].file),
            Walk::External => Resolution::External,
        }
    }

    pub fn entity_file(&self, e: Entity) -> Option<FileId> {
        match e {
            Entity::Module(m) => Some(self.tree.modules[m].file),
            Entity::Item(f) => Some(f),
            Entity::External => None,
        }
    }

    fn walk(
        &self,
        from: ModId,
        leading_colon: bool,
        segs: &[String],
        guard: &mut Guard,
        depth: usize,
    ) -> Walk {
        let modules = &self.tree.modules;
        let Some((first, rest)) = segs.split_first() else { return Walk::Found(Entity::Module(from)) };
        if depth > MAX_DEPTH {
            return Walk::External;
        }
        let mut cur = if leading_colon {
            match self.extern_crate(from, first) {
                Some(m) => Entity::Module(m),
                None => return Walk::External,
            }
        } else {
            match first.as_str() {
                "crate" => Entity::Module(self.tree.targets[modules[from].target].root),
                "self" => Entity::Module(from),
                "super" => match modules[from].parent {
                    Some(p) => Entity::Module(p),
                    None => return Walk::External,
                },
                "Self" => return Walk::External,
                name => match self.lookup(from, name, guard, depth) {
                    Some(e) => e,
                    None => match self.extern_crate(from, name) {
                        Some(m) => Entity::Module(m),
                        None => return Walk::External,
                    },
                },
            }
        };
        for seg in rest {
            let m = match cur {
                Entity::Module(m) => m,
                // The rest names something inside the item (a variant, an associated item).
                Entity::Item(_) | Entity::External => break,
            };
            cur = match seg.as_str() {
                "self" => Entity::Module(m),
                "super" => match modules[m].parent {
                    Some(p) => Entity::Module(p),
                    None => return Walk::Stuck(m),
                },
                name => match self.lookup(m, name, guard, depth) {
                    Some(e) => e,
                    None => return Walk::Stuck(m),
                },
            };
        }
        Walk::Found(cur)
    }

    /// A workspace crate the module's target can name, as its library's root module.
    fn extern_crate(&self, from: ModId, name: &str) -> Option<ModId> {
        let target = &self.tree.targets[self.tree.modules[from].target];
        let krate = *target.externs.get(name)?;
        let lib = *self.tree.libs.get(&krate)?;
        Some(self.tree.targets[lib].root)
    }

    /// `name` inside module `m`: a child module, an item defined there, a `use` binding (followed),
    /// or what one of its glob imports brings.
    fn lookup(&self, m: ModId, name: &str, guard: &mut Guard, depth: usize) -> Option<Entity> {
        let module = &self.tree.modules[m];
        if let Some(&child) = module.children.get(name) {
            return Some(Entity::Module(child));
        }
        if let Some(&file) = module.items.get(name) {
            return Some(Entity::Item(file));
        }
        if !guard.insert((m, name.to_owned())) {
            return None;
        }
        if let Some(paths) = module.bindings.get(name) {
            let mut fallback = None;
            for path in paths {
                match self.walk(m, path.leading_colon, &path.segs, guard, depth + 1) {
                    Walk::Found(e) => return Some(e),
                    Walk::Stuck(s) => fallback = fallback.or(Some(Entity::Item(self.tree.modules[s].file))),
                    Walk::External => fallback = fallback.or(Some(Entity::External)),
                }
            }
            return fallback;
        }
        for glob in &module.globs {
            if let Walk::Found(Entity::Module(g)) =
                self.walk(m, glob.leading_colon, &glob.segs, guard, depth + 1)
                && g != m
                && let Some(e) = self.lookup(g, name, guard, depth + 1)
            {
                return Some(e);
            }
        }
        None
    }
}

enum Walk {
    Found(Entity),
    Stuck(ModId),
    External,
}
