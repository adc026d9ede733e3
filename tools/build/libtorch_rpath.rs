//! Build script shared by every crate whose binaries or tests link libtorch (`build = ` in each
//! Cargo.toml). torch-sys tells the linker where libtorch is but not the loader, so without this
//! the binaries would need LD_LIBRARY_PATH. We embed the absolute, symlink-resolved library folder
//! as an rpath: resolved, because the CUDA wheel's libraries find their `nvidia/*` siblings
//! through `$ORIGIN` in their own RPATH.
//!
//! `LIBTORCH` comes from `.cargo/config.toml` (`.deps/libtorch`, made by `just setup`) unless the
//! environment already sets it.

#[path = "rpath.rs"]
mod rpath;

fn main() {
    rpath::emit();
}
