//! The rpath every libtorch-linking crate embeds (`tools/build/libtorch_rpath.rs`), and the
//! small C++ file that reaches libtorch ops tch does not bind (`native/`), compiled against
//! the same libtorch headers and C++ ABI as torch-sys compiles tch's own C++.

#[path = "../tools/build/rpath.rs"]
mod rpath;

use std::path::PathBuf;

fn main() {
    rpath::emit();
    println!("cargo:rerun-if-changed=native/packed_linear.cpp");
    println!("cargo:rerun-if-env-changed=LIBTORCH_INCLUDE");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    let root = std::env::var_os("LIBTORCH_INCLUDE").or_else(|| std::env::var_os("LIBTORCH"));
    let Some(root) = root.map(PathBuf::from) else {
        panic!("LIBTORCH is not set: run `just setup` (it unpacks libtorch into .deps/libtorch)");
    };
    let include = root.join("include");
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    cc::Build::new()
        .cpp(true)
        .pic(true)
        .std("c++17")
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .define("_GLIBCXX_USE_CXX11_ABI", abi.as_str())
        .define("GLOG_USE_GLOG_EXPORT", None)
        // libtorch's headers warn about themselves.
        .warnings(false)
        .file("native/packed_linear.cpp")
        .compile("vs_native");
}
