//! The rpath half of the build scripts of crates that link libtorch (see `libtorch_rpath.rs`).
use std::path::PathBuf;

/// libtorch's `lib` folder (`$LIBTORCH_LIB/lib`, else `$LIBTORCH/lib`, as torch-sys reads
/// them), when the environment names one; torch-sys reports a missing libtorch itself.
pub fn libtorch_lib() -> Option<PathBuf> {
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_LIB");
    match (std::env::var_os("LIBTORCH_LIB"), std::env::var_os("LIBTORCH")) {
        (Some(root), _) | (None, Some(root)) => Some(PathBuf::from(root).join("lib")),
        (None, None) => None,
    }
}

/// Embeds libtorch's library folder, absolute and symlink-resolved, as an rpath.
pub fn emit() {
    let Some(lib) = libtorch_lib() else { return };
    println!("cargo:rerun-if-changed={}", lib.display());
    let lib = lib.canonicalize().unwrap_or(lib);
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
}
