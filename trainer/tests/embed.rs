//! The sentence encoder against sentence-transformers on the same all-MiniLM-L6-v2 folder
//! (`just setup`): token ids identical and embeddings within 1e-4 cosine for the sentences of
//! `fixtures/minilm.json` (written by `tools/parity/make_embed_fixtures.py`), including the
//! empty string, non-ASCII text and a sentence past the 256-token limit.

use std::path::Path;

use serde_json::Value;
use trainer::DeviceSpec;
use trainer::embed::SentenceEncoder;

fn fixture() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/minilm.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn encoder() -> SentenceEncoder {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/all-MiniLM-L6-v2");
    SentenceEncoder::load(&dir, &DeviceSpec::Cpu.device()).unwrap()
}

fn cosine(a: &[f32], b: &[f32]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| f64::from(*x) * f64::from(*y)).sum();
    let norm = |v: &[f32]| v.iter().map(|x| f64::from(*x).powi(2)).sum::<f64>().sqrt();
    dot / (norm(a) * norm(b))
}

#[test]
fn embeddings_match_sentence_transformers() {
    let f = fixture();
    let sentences: Vec<String> =
        f["sentences"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_owned()).collect();
    let encoder = encoder();
    assert_eq!(encoder.max_seq_length, f["max_seq_length"].as_u64().unwrap() as usize);
    assert_eq!(encoder.dim(), 384);
    // Odd batch size: batches mix lengths and padding.
    let ours = encoder.embed(&sentences, 7).unwrap();
    let mut worst = 1.0f64;
    for (i, (got, want)) in ours.iter().zip(f["embeddings"].as_array().unwrap()).enumerate() {
        let want: Vec<f32> = want.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect();
        let c = cosine(got, &want);
        worst = worst.min(c);
        assert!(c > 1.0 - 1e-4, "sentence {i} {:?}: cosine {c}", sentences[i]);
        let max_diff = got.iter().zip(&want).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(max_diff < 1e-4, "sentence {i}: max difference {max_diff}");
        let norm: f32 = got.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "sentence {i}: norm {norm}");
    }
    eprintln!("worst cosine to sentence-transformers: {worst}");
}

#[test]
fn token_ids_match_and_long_inputs_are_cut_at_the_limit() {
    let f = fixture();
    let encoder = encoder();
    for (s, ids) in f["sentences"].as_array().unwrap().iter().zip(f["ids"].as_array().unwrap()) {
        let want: Vec<u32> = ids.as_array().unwrap().iter().map(|x| x.as_u64().unwrap() as u32).collect();
        assert_eq!(encoder.token_ids(s.as_str().unwrap()).unwrap(), want, "{s}");
    }
    let long = f["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .max_by_key(|s| s.len())
        .unwrap();
    assert_eq!(encoder.token_ids(long).unwrap().len(), 256);
}

#[test]
fn a_sentence_embeds_the_same_alone_or_in_a_padded_batch() {
    let encoder = encoder();
    let texts: Vec<String> =
        ["short", "a much longer sentence that forces padding onto the short one in its batch"]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
    let together = encoder.embed(&texts, 2).unwrap();
    for (i, t) in texts.iter().enumerate() {
        let alone = encoder.embed(std::slice::from_ref(t), 1).unwrap().remove(0);
        let diff = alone.iter().zip(&together[i]).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(diff < 1e-5, "{t}: {diff}");
    }
    // Related sentences are closer than unrelated ones.
    let v = encoder
        .embed(
            &[
                "How many primes are below 20?".into(),
                "Count the prime numbers less than twenty.".into(),
                "I like green tea.".into(),
            ],
            3,
        )
        .unwrap();
    assert!(cosine(&v[0], &v[1]) > cosine(&v[0], &v[2]) + 0.2);
}
