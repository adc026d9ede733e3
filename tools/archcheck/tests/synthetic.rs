//! The file and crate checks on tiny workspaces written to a temporary folder.

use std::path::Path;

use archcheck::Report;

/// A workspace of the given files (paths relative to its root); the root `Cargo.toml` is
/// written from `members` unless the files hold one.
fn workspace(members: &[&str], files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let quoted: Vec<String> = members.iter().map(|m| format!("{m:?}")).collect();
    write(
        dir.path(),
        "Cargo.toml",
        &format!("[workspace]\nresolver = \"3\"\nmembers = [{}]\n", quoted.join(", ")),
    );
    for m in members {
        if !files.iter().any(|(p, _)| *p == format!("{m}/Cargo.toml")) {
            write(
                dir.path(),
                &format!("{m}/Cargo.toml"),
                &format!("[package]\nname = {m:?}\nedition = \"2024\"\n"),
            );
        }
    }
    for (path, text) in files {
        write(dir.path(), path, text);
    }
    dir
}

fn write(root: &Path, rel: &str, text: &str) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

fn check(dir: &tempfile::TempDir) -> Report {
    archcheck::check(dir.path(), None).expect("workspace loads")
}

fn check_layers(dir: &tempfile::TempDir, layers: &str) -> Report {
    write(dir.path(), "layers.toml", layers);
    archcheck::check(dir.path(), Some(&dir.path().join("layers.toml"))).expect("workspace loads")
}

#[test]
fn a_mod_rs_and_its_child_importing_each_other_is_a_cycle() {
    let dir = workspace(
        &["a"],
        &[
            ("a/src/lib.rs", "mod m;\n"),
            ("a/src/m/mod.rs", "mod child;\npub struct P;\nfn make() -> child::C { child::C }\n"),
            ("a/src/m/child.rs", "use super::P;\npub struct C;\nfn p(_: P) {}\n"),
        ],
    );
    let r = check(&dir);
    assert!(!r.ok(), "{}", r.render(0));
    assert_eq!(r.components.len(), 1, "{}", r.render(0));
    assert_eq!(r.components[0].files, ["a/src/m/mod.rs", "a/src/m/child.rs"]);
    let text = r.render(0);
    assert!(text.contains("mod.rs -> child.rs -> mod.rs"), "{text}");
    assert!(text.contains("child.rs:1 super::P"), "{text}");
    assert!(text.contains("mod.rs:3 child::C"), "{text}");
    // `mod child;` alone is no edge: lib.rs declares m and has none.
    assert!(r.edges_from("a/src/lib.rs").is_empty());
}

#[test]
fn a_re_export_is_followed_to_the_file_that_defines_the_item() {
    let dir = workspace(
        &["a"],
        &[
            ("a/src/lib.rs", "mod parent;\n"),
            ("a/src/parent/mod.rs", "mod child;\nmod sibling;\npub use child::T;\npub use child::*;\n"),
            ("a/src/parent/child.rs", "pub struct T;\npub struct U;\n"),
            ("a/src/parent/sibling.rs", "use super::T;\nfn f(_: super::U) {}\n"),
        ],
    );
    let r = check(&dir);
    assert!(r.ok(), "{}", r.render(0));
    assert_eq!(r.edges_from("a/src/parent/sibling.rs"), ["a/src/parent/child.rs"]);
    assert_eq!(r.edges_from("a/src/parent/mod.rs"), ["a/src/parent/child.rs"]);
}

#[test]
fn glob_grouped_renamed_and_self_imports_make_edges() {
    let dir = workspace(
        &["a"],
        &[
            ("a/src/lib.rs", "mod a;\nmod b;\nmod c;\nmod d;\nmod e;\n"),
            (
                "a/src/a.rs",
                "use crate::{b::{self, B}, c::*};\nuse crate::d::D as Dee;\nuse self::super::e;\n",
            ),
            ("a/src/b.rs", "pub struct B;\n"),
            ("a/src/c.rs", "pub fn g() {}\n"),
            ("a/src/d.rs", "pub struct D;\n"),
            ("a/src/e.rs", "pub struct E;\n"),
        ],
    );
    let r = check(&dir);
    assert!(r.ok(), "{}", r.render(0));
    assert_eq!(r.edges_from("a/src/a.rs"), ["a/src/b.rs", "a/src/c.rs", "a/src/d.rs", "a/src/e.rs"]);
    let (_, _, sites) = r.edges.iter().find(|(f, t, _)| f == "a/src/a.rs" && t == "a/src/c.rs").unwrap();
    assert_eq!(sites[0].text, "crate::c::*");
}

#[test]
fn super_super_climbs_two_modules() {
    let dir = workspace(
        &["a"],
        &[
            ("a/src/lib.rs", "mod x;\npub struct Top;\n"),
            ("a/src/x/mod.rs", "mod y;\npub struct Q;\n"),
            ("a/src/x/y.rs", "mod z;\n"),
            ("a/src/x/y/z.rs", "use super::super::Q;\nfn f(_: super::super::super::Top) {}\n"),
        ],
    );
    let r = check(&dir);
    assert!(r.ok(), "{}", r.render(0));
    assert_eq!(r.edges_from("a/src/x/y/z.rs"), ["a/src/lib.rs", "a/src/x/mod.rs"]);
    assert!(r.edges_from("a/src/x/y.rs").is_empty());
}

#[test]
fn an_inline_test_module_using_its_parent_makes_no_edge() {
    let dir = workspace(
        &["a"],
        &[
            ("a/src/lib.rs", "mod m;\n"),
            (
                "a/src/m.rs",
                "pub fn f() {}\npub(crate) struct S;\n#[cfg(test)]\nmod tests {\n    use super::*;\n    #[test]\n    fn t() { f(); super::f(); }\n}\n",
            ),
        ],
    );
    let r = check(&dir);
    assert!(r.ok(), "{}", r.render(0));
    assert!(r.edges.is_empty(), "{:?}", r.edges);
}

#[test]
fn paths_in_expressions_types_and_macros_make_edges() {
    let dir = workspace(
        &["a"],
        &[
            ("a/src/lib.rs", "mod a;\nmod b;\nmod c;\nmod d;\n"),
            (
                "a/src/a.rs",
                "pub fn f() -> u32 {\n    crate::b::g();\n    let _: Option<crate::c::C> = None;\n    println!(\"{}\", crate::d::h());\n    0\n}\n",
            ),
            ("a/src/b.rs", "pub fn g() {}\n"),
            ("a/src/c.rs", "pub struct C;\n"),
            ("a/src/d.rs", "pub fn h() -> u8 { 0 }\n"),
        ],
    );
    let r = check(&dir);
    assert_eq!(r.edges_from("a/src/a.rs"), ["a/src/b.rs", "a/src/c.rs", "a/src/d.rs"]);
    let (_, _, sites) = r.edges.iter().find(|(f, t, _)| f == "a/src/a.rs" && t == "a/src/b.rs").unwrap();
    assert_eq!((sites[0].line, sites[0].text.as_str()), (2, "crate::b::g"));
}

#[test]
fn paths_into_another_workspace_crate_resolve_to_its_files() {
    let dir = workspace(
        &["core-x", "top"],
        &[
            (
                "top/Cargo.toml",
                "[package]\nname = \"top\"\nedition = \"2024\"\n[dependencies]\ncorex = { path = \"../core-x\", package = \"core-x\" }\n",
            ),
            ("core-x/src/lib.rs", "pub mod thing;\npub use thing::T;\n"),
            ("core-x/src/thing.rs", "pub struct T;\n"),
            ("top/src/lib.rs", "use corex::T;\npub fn f(_: core_x_is_not_named_so::X) {}\n"),
            ("top/tests/it.rs", "fn f(_: top::Y) {}\n"),
        ],
    );
    let r = check(&dir);
    assert!(r.ok(), "{}", r.render(0));
    assert_eq!(r.edges_from("top/src/lib.rs"), ["core-x/src/thing.rs"]);
    // A test target names its own library (the name not found there: pointed at its root).
    assert_eq!(r.edges_from("top/tests/it.rs"), ["top/src/lib.rs"]);
    assert_eq!(r.unresolved.len(), 1);
}

#[test]
fn an_unparsable_file_is_reported_and_skipped() {
    let dir = workspace(
        &["a"],
        &[
            ("a/src/lib.rs", "mod bad;\nmod good;\nmod gone;\n"),
            ("a/src/bad.rs", "fn (\n"),
            ("a/src/good.rs", "use crate::bad::X;\n"),
        ],
    );
    let r = check(&dir);
    assert!(!r.ok());
    assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
    assert!(r.errors[0].contains("bad.rs:1: does not parse"), "{:?}", r.errors);
    assert!(r.errors[1].contains("`mod gone;` has no file"), "{:?}", r.errors);
    assert_eq!(r.edges_from("a/src/good.rs"), ["a/src/bad.rs"]);
}

#[test]
fn layers_allow_only_lower_layers_and_name_every_crate() {
    let dir = workspace(
        &["low", "high", "peer", "kit", "new"],
        &[
            ("high/Cargo.toml", "[package]\nname = \"high\"\n[dependencies]\nlow = { path = \"../low\" }\n"),
            (
                "peer/Cargo.toml",
                "[package]\nname = \"peer\"\n[dependencies]\nlow = { path = \"../low\" }\nkit = { path = \"../kit\" }\n",
            ),
            (
                "low/Cargo.toml",
                "[package]\nname = \"low\"\n[dependencies]\nhigh2 = { path = \"../high\", package = \"high\" }\n",
            ),
            ("kit/Cargo.toml", "[package]\nname = \"kit\"\n[dependencies]\nhigh = { path = \"../high\" }\n"),
            ("new/Cargo.toml", "[package]\nname = \"new\"\n"),
            ("low/src/lib.rs", ""),
            ("high/src/lib.rs", ""),
            ("peer/src/lib.rs", ""),
            ("kit/src/lib.rs", ""),
            ("new/src/lib.rs", ""),
        ],
    );
    let r = check_layers(&dir, "[layers]\nlow = 1\nhigh = 2\npeer = 1\nkit = \"dev\"\ngone = 0\n");
    let v = &r.crate_check.violations;
    let text = r.render(0);
    assert!(v.iter().any(|v| v.contains("`low` (layer 1) depends on `high` (layer 2)")), "{text}");
    assert!(v.iter().any(|v| v.contains("`peer` (layer 1) depends on `low` (layer 1)")), "{text}");
    assert!(v.iter().any(|v| v.contains("`peer` (layer 1) depends on dev crate `kit`")), "{text}");
    assert!(v.iter().any(|v| v.contains("crate `new` has no layer: add it to layers.toml")), "{text}");
    assert!(
        v.iter().any(|v| v.contains("crate dependency cycle") && v.contains("low -> high -> low")),
        "{text}"
    );
    assert!(!v.iter().any(|v| v.contains("`high` (layer 2)") && v.contains("depends on `low`")), "{text}");
    assert!(!v.iter().any(|v| v.starts_with("`kit`")), "{text}");
    assert!(r.crate_check.warnings.iter().any(|w| w.contains("`gone`")), "{text}");
}

#[test]
fn a_dev_dependency_cycle_is_a_violation() {
    let dir = workspace(
        &["a", "b"],
        &[
            ("a/Cargo.toml", "[package]\nname = \"a\"\n[dependencies]\nb = { path = \"../b\" }\n"),
            ("b/Cargo.toml", "[package]\nname = \"b\"\n[dev-dependencies]\na = { path = \"../a\" }\n"),
            ("a/src/lib.rs", ""),
            ("b/src/lib.rs", ""),
        ],
    );
    let r = check_layers(&dir, "[layers]\nb = 0\na = 1\n");
    assert_eq!(r.crate_check.violations.len(), 1, "{}", r.render(0));
    assert!(r.crate_check.violations[0].contains("a -> b -> a"));
    assert!(r.crate_check.graph.iter().any(|l| l.contains("b [0] -> a (dev)")), "{:?}", r.crate_check.graph);
}
