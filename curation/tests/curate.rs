//! `curate` on files: it never replaces its own input.

use curation::curate::{CurateOptions, curate};
use curation::error::CurationError;
use curation::import::FieldMap;
use curation::params::DedupConfig;

#[test]
fn an_input_among_the_outputs_is_refused_and_left_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("kept.jsonl");
    let row = r#"{"question": "A bag holds 5 red and 7 blue marbles. Two are drawn without replacement. What is the probability that both are red?"}"#;
    let text = format!("{row}\n{row}\n");
    std::fs::write(&input, &text).unwrap();
    let options = |out: std::path::PathBuf| CurateOptions {
        input: input.clone(),
        fields: FieldMap::default(),
        benchmarks: Vec::new(),
        out,
        dedup: DedupConfig::default(),
        seed: 42,
    };
    // The same folder named another way (`./`) is the same folder.
    let err = curate(&options(dir.path().join(".")), None).unwrap_err();
    assert!(matches!(err, CurationError::OverwritesInput { .. }), "{err}");
    assert!(err.to_string().contains("choose another --out"), "{err}");
    assert_eq!(std::fs::read_to_string(&input).unwrap(), text);
    assert!(!dir.path().join("summary.json").exists());
    // Another folder is fine, and the duplicate is dropped there.
    let summary = curate(&options(dir.path().join("out")), None).unwrap();
    assert_eq!((summary.rows, summary.kept), (2, 1));
    assert_eq!(std::fs::read_to_string(&input).unwrap(), text);
}
