//! Build script shared by every crate whose binaries or tests link libtorch (`build = ` in each
//! Cargo.toml). torch-sys tells the linker where libtorch is but not the loader, so without this
//! the binaries would need LD_LIBRARY_PATH. We embed the absolute, symlink-resolved library folder
//! as an rpath: resolved, because the CUDA wheel's libraries find their `nvidia/*` siblings
//! through `$ORIGIN` in their own RPATH.
//!
//! `LIBTORCH` comes from `.cargo/config.toml` (`.deps/libtorch`, made by `just setup`) unless the
//! environment already sets it.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_LIB");
    let lib = match (std::env::var_os("LIBTORCH_LIB"), std::env::var_os("LIBTORCH")) {
        (Some(lib), _) | (None, Some(lib)) => PathBuf::from(lib).join("lib"),
        (None, None) => return, // torch-sys reports the missing libtorch itself.
    };
    println!("cargo:rerun-if-changed={}", lib.display());
    let lib = lib.canonicalize().unwrap_or(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
