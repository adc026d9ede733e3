//! One target per reader: each takes any bytes and must return (an error is fine), never
//! panic, never hang, never hold more memory than [`crate::ALLOC_BOUND`].

use std::path::Path;

use curation::import::{FieldMap, Format, read_bytes};

/// A fuzz target: a name (its corpus is `corpus/<name>/`) and what it runs on an input.
pub struct Target {
    pub name: &'static str,
    pub run: fn(&[u8]),
}

pub const TARGETS: &[Target] = &[
    Target { name: "jsonl", run: jsonl },
    Target { name: "json", run: json },
    Target { name: "parquet", run: parquet },
    Target { name: "records", run: records },
    Target { name: "gguf", run: gguf },
    Target { name: "safetensors", run: safetensors },
    Target { name: "config", run: config },
];

/// The fields the importer targets map: a nested one and an id, to walk every path.
fn fields() -> FieldMap {
    FieldMap {
        question: "problem".into(),
        answer: Some("answer".into()),
        solution: Some("meta.solution".into()),
        id: Some("id".into()),
    }
}

fn import(bytes: &[u8], format: Format) {
    for fields in [fields(), FieldMap::default()] {
        let _ = read_bytes(bytes, format, &fields, "fuzz", Path::new("fuzz"));
    }
}

fn jsonl(bytes: &[u8]) {
    import(bytes, Format::Jsonl);
}

fn json(bytes: &[u8]) {
    import(bytes, Format::Json);
}

fn parquet(bytes: &[u8]) {
    import(bytes, Format::Parquet);
    // Also mapped onto columns that exist in the corpus's files, whatever their types.
    for question in ["problem", "id", "answer", "day", "ts", "dec", "ubig"] {
        let fields =
            FieldMap { question: question.into(), answer: Some("answer".into()), ..FieldMap::default() };
        let _ = read_bytes(bytes, Format::Parquet, &fields, "fuzz", Path::new("fuzz"));
    }
}

/// A file of the input's bytes in a scratch folder, for readers that take a path.
fn scratch(name: &str, bytes: &[u8]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("a scratch folder");
    let path = dir.path().join(name);
    std::fs::write(&path, bytes).expect("a scratch file");
    (dir, path)
}

/// The stages' record files (`vs_core::jsonl`), read as any JSON.
fn records(bytes: &[u8]) {
    let (_dir, path) = scratch("r.jsonl", bytes);
    let _ = vs_core::jsonl::read_jsonl::<serde_json::Value>(&path);
}

/// A GGUF file: header, metadata, tensor table; then what a load reads from it (the model's
/// config, each tensor dequantized).
fn gguf(bytes: &[u8]) {
    let (_dir, path) = scratch("m.gguf", bytes);
    let Ok(file) = trainer::load::gguf::GgufFile::open(&path) else { return };
    let _ = file.model_config();
    for name in file.tensors.keys().take(8) {
        let _ = file.dequantize(name);
    }
}

/// A safetensors file's header, as a model folder holds it.
fn safetensors(bytes: &[u8]) {
    let (dir, _path) = scratch("model.safetensors", bytes);
    let _ = trainer::load::safetensors::SafetensorsSource::open(dir.path());
}

/// The pipeline's config: TOML, the schema, the checks.
fn config(bytes: &[u8]) {
    let text = String::from_utf8_lossy(bytes);
    let _ = pipeline::config::load_str(&text, Path::new("fuzz.toml"), &[]);
}
