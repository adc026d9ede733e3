//! The GGUF reader and dequantizers: every block type against gguf-py's dequantization
//! (fixtures from `tools/parity/make_fixtures.py`), and the file layout on a file written here.

use std::io::Write;
use std::path::Path;

use serde::Deserialize;
use trainer::load::gguf::{GgufFile, Value};
use trainer::load::quant::{GgmlType, dequantize};

#[derive(Deserialize)]
struct Case {
    #[serde(rename = "type")]
    ty: String,
    bytes: String,
    values: Vec<f32>,
}

#[derive(Deserialize)]
struct Cases {
    cases: Vec<Case>,
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

#[test]
fn every_block_type_matches_gguf_py() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/dequant.json");
    let cases: Cases = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut seen = Vec::new();
    for case in &cases.cases {
        let ty = GgmlType::from_name(&case.ty).unwrap_or_else(|| panic!("unknown type {}", case.ty));
        let got = dequantize(ty, &unhex(&case.bytes), case.values.len()).unwrap();
        for (i, (g, w)) in got.iter().zip(&case.values).enumerate() {
            assert!((g - w).abs() <= 1e-6 * w.abs().max(1.0), "{}: element {i}: {g} vs {w}", case.ty);
        }
        seen.push(case.ty.as_str());
    }
    for ty in ["F16", "BF16", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q4_K", "Q5_K", "Q6_K"] {
        assert!(seen.contains(&ty), "no fixture for {ty}");
    }
}

#[test]
fn wrong_sizes_are_errors() {
    let err = dequantize(GgmlType::Q8_0, &[0; 33], 32).unwrap_err();
    assert!(err.contains("need 34 bytes"), "{err}");
    let err = dequantize(GgmlType::Q4K, &[0; 144], 32).unwrap_err();
    assert!(err.contains("144"), "{err}");
}

fn put_str(buf: &mut Vec<u8>, s: &str) {
    buf.extend((s.len() as u64).to_le_bytes());
    buf.extend(s.as_bytes());
}

/// A GGUF v3 file by the spec: metadata of several types, a custom alignment, and a 2x3 F32
/// tensor stored innermost-first.
#[test]
fn reads_a_spec_file() {
    let mut b = Vec::new();
    b.extend(b"GGUF");
    b.extend(3u32.to_le_bytes());
    b.extend(2u64.to_le_bytes()); // tensors
    b.extend(4u64.to_le_bytes()); // metadata
    put_str(&mut b, "general.architecture");
    b.extend(8u32.to_le_bytes());
    put_str(&mut b, "llama");
    put_str(&mut b, "general.alignment");
    b.extend(4u32.to_le_bytes());
    b.extend(64u32.to_le_bytes());
    put_str(&mut b, "x.list");
    b.extend(9u32.to_le_bytes());
    b.extend(5u32.to_le_bytes()); // i32 items
    b.extend(2u64.to_le_bytes());
    b.extend((-1i32).to_le_bytes());
    b.extend(7i32.to_le_bytes());
    put_str(&mut b, "x.eps");
    b.extend(6u32.to_le_bytes());
    b.extend(0.5f32.to_le_bytes());
    // tensor "a": ne = [3, 2] (3 innermost) -> PyTorch shape [2, 3]
    put_str(&mut b, "a");
    b.extend(2u32.to_le_bytes());
    b.extend(3u64.to_le_bytes());
    b.extend(2u64.to_le_bytes());
    b.extend(0u32.to_le_bytes()); // F32
    b.extend(0u64.to_le_bytes());
    // tensor "q": one Q8_0 block after "a", at an aligned offset
    put_str(&mut b, "q");
    b.extend(1u32.to_le_bytes());
    b.extend(32u64.to_le_bytes());
    b.extend(8u32.to_le_bytes());
    b.extend(64u64.to_le_bytes());
    while b.len() % 64 != 0 {
        b.push(0);
    }
    for v in [1f32, 2.0, 3.0, 4.0, 5.0, 6.0] {
        b.extend(v.to_le_bytes());
    }
    b.resize(b.len() + 64 - 24, 0);
    b.extend(half::f16::from_f32(0.5).to_le_bytes());
    b.extend((0..32).map(|i| (i as i8 - 16) as u8));

    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&b).unwrap();
    let g = GgufFile::open(file.path()).unwrap();
    assert_eq!(g.version, 3);
    assert_eq!(g.architecture(), Some("llama"));
    assert_eq!(g.get("x.list"), Some(&Value::Array(vec![Value::I32(-1), Value::I32(7)])));
    assert_eq!(g.get("x.eps").and_then(Value::as_f64), Some(0.5));
    assert_eq!(g.tensors["a"].shape, vec![2, 3]);
    assert_eq!(g.dequantize("a").unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let q = g.dequantize("q").unwrap();
    assert_eq!(q[0], -8.0);
    assert_eq!(q[31], 7.5);
    let err = g.model_config().unwrap_err().to_string();
    assert!(
        err.contains("llama.embedding_length") && err.contains(&file.path().display().to_string()),
        "{err}"
    );

    // Truncate the data: the directory check names the tensor.
    let mut short = tempfile::NamedTempFile::new().unwrap();
    short.write_all(&b[..b.len() - 10]).unwrap();
    let err = GgufFile::open(short.path()).err().unwrap().to_string();
    assert!(err.contains("tensor `q`") && err.contains("past the end"), "{err}");
}

/// A GGUF header with `tensors` tensors and the metadata and tensor directory `body` writes.
fn hostile(tensors: u64, kv: u64, body: impl FnOnce(&mut Vec<u8>)) -> String {
    let mut b = Vec::new();
    b.extend(b"GGUF");
    b.extend(3u32.to_le_bytes());
    b.extend(tensors.to_le_bytes());
    b.extend(kv.to_le_bytes());
    body(&mut b);
    b.resize(b.len() + 256, 0);
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(&b).unwrap();
    match GgufFile::open(file.path()) {
        Ok(_) => panic!("a hostile file was accepted"),
        Err(e) => e.to_string(),
    }
}

fn tensor(b: &mut Vec<u8>, name: &str, dims: &[u64], ty: u32, offset: u64) {
    put_str(b, name);
    b.extend((dims.len() as u32).to_le_bytes());
    for d in dims {
        b.extend(d.to_le_bytes());
    }
    b.extend(ty.to_le_bytes());
    b.extend(offset.to_le_bytes());
}

/// Hostile files are errors naming what is wrong, never panics, stack overflows or huge
/// allocations.
#[test]
fn hostile_files_are_errors_not_panics() {
    // Arrays nested 100,000 deep: each level is 12 bytes, the recursion would blow the stack.
    let err = hostile(0, 1, |b| {
        put_str(b, "deep");
        b.extend(9u32.to_le_bytes());
        for _ in 0..100_000 {
            b.extend(9u32.to_le_bytes());
            b.extend(1u64.to_le_bytes());
        }
    });
    assert!(err.contains("nested more than") && err.contains("metadata `deep`"), "{err}");

    // An offset that wraps around when the data start is added.
    let err = hostile(1, 0, |b| tensor(b, "w", &[4], 0, u64::MAX - 8));
    assert!(err.contains("tensor `w`") && err.contains("overflows"), "{err}");

    // A dimension larger than the file, and a shape whose element count no file could hold.
    let err = hostile(1, 0, |b| tensor(b, "huge", &[u64::from(u32::MAX), 2], 0, 0));
    assert!(err.contains("tensor `huge`") && err.contains("implausible length"), "{err}");
    let err = hostile(1, 0, |b| tensor(b, "big", &[300, 300, 300, 300], 0, 0));
    assert!(err.contains("tensor `big`") && err.contains("more elements"), "{err}");

    // Zero-sized and dimensionless tensors (an embedding with no rows).
    let err = hostile(1, 0, |b| tensor(b, "token_embd.weight", &[64, 0], 0, 0));
    assert!(err.contains("token_embd.weight") && err.contains("at least one element"), "{err}");
    let err = hostile(1, 0, |b| tensor(b, "scalar", &[], 0, 0));
    assert!(err.contains("scalar") && err.contains("at least one element"), "{err}");

    // Counts larger than the file: refused before anything is allocated for them.
    let err = hostile(u64::MAX, 0, |_| {});
    assert!(err.contains("implausible length"), "{err}");
    let err = hostile(0, 1, |b| {
        put_str(b, "list");
        b.extend(9u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend((1u64 << 60).to_le_bytes());
    });
    assert!(err.contains("implausible length"), "{err}");

    // An absurd alignment.
    let err = hostile(0, 1, |b| {
        put_str(b, "general.alignment");
        b.extend(4u32.to_le_bytes());
        b.extend(u32::MAX.to_le_bytes());
    });
    assert!(err.contains("general.alignment"), "{err}");
}
