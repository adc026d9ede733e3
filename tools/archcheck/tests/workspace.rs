//! The architecture rules on this workspace: no import cycle between source files, and a crate
//! graph that points one way through `tools/archcheck/layers.toml`.

use std::path::Path;

#[test]
fn the_workspace_keeps_its_architecture_rules() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let report = archcheck::check(&root, Some(&root.join(archcheck::LAYERS))).expect("workspace loads");
    assert!(report.ok(), "\n{}", report.render(0));
}
