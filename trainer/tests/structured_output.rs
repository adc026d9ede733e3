//! Structured output on the real SmolLM2-135M-Instruct (from `just setup`): the reply follows
//! the grammar whatever the model would rather write, sampled or greedy, and a reply stops
//! where the grammar is complete.

use std::path::Path;

use serde_json::{Value, json};
use trainer::generate::{Finish, Grammar, Request, Sampling};
use trainer::text::ChatMessage;
use trainer::{DeviceSpec, Pretrained};

fn model() -> Pretrained {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    Pretrained::load(&path, &DeviceSpec::Cpu.device()).unwrap()
}

fn request(model: &Pretrained, prompt: &str, grammar: Grammar, seed: u64, temperature: f32) -> Request {
    Request {
        prompt: model.chat_prompt(&[ChatMessage::new("user", prompt)]).unwrap(),
        max_new_tokens: 160,
        sampling: Sampling { temperature, top_p: 1.0, min_p: 0.0, top_k: 0 },
        stop: Vec::new(),
        seed,
        ignore_eos: false,
        grammar: Some(grammar),
        cancel: None,
    }
}

#[test]
fn replies_follow_the_json_schema_and_stop_when_it_is_complete() {
    let model = model();
    let schema = json!({
        "type": "object",
        "properties": {
            "responses": {
                "type": "array", "minItems": 1, "maxItems": 3,
                "items": {
                    "type": "object",
                    "properties": {
                        "text": {"type": "string", "maxLength": 60},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1}
                    },
                    "required": ["text", "confidence"],
                    "additionalProperties": false
                }
            }
        },
        "required": ["responses"],
        "additionalProperties": false
    });
    let format =
        json!({"type": "json_schema", "json_schema": {"name": "x", "schema": schema, "strict": true}});
    let grammar = Grammar::from_response_format(&format).unwrap().unwrap();
    // Sampled at temperature 1 (the model's worst), several seeds, in one batch.
    let requests: Vec<Request> = (0..4)
        .map(|seed| request(&model, "Write three math problems.", grammar.clone(), seed, 1.0))
        .collect();
    for g in model.generate(&requests, &mut |_, _| {}).unwrap() {
        assert_eq!(g.finish, Finish::Stop, "cut off: {}", g.text);
        let v: Value = serde_json::from_str(&g.text).unwrap_or_else(|e| panic!("{e}: {}", g.text));
        let items = v["responses"].as_array().unwrap();
        assert!((1..=3).contains(&items.len()), "{}", g.text);
        for item in items {
            assert!(item["text"].as_str().unwrap().chars().count() <= 60);
            let c = item["confidence"].as_f64().unwrap();
            assert!((0.0..=1.0).contains(&c), "{}", g.text);
            assert_eq!(item.as_object().unwrap().len(), 2);
        }
    }
}

#[test]
fn a_regex_grammar_holds_under_greedy_decoding() {
    let model = model();
    let g = model
        .generate(
            &[request(&model, "What is 6 times 7?", Grammar::Regex("[0-9]{3}-[a-c]".into()), 0, 0.0)],
            &mut |_, _| {},
        )
        .unwrap()
        .remove(0);
    let chars: Vec<char> = g.text.chars().collect();
    assert_eq!(chars.len(), 5, "{}", g.text);
    assert!(
        chars[..3].iter().all(char::is_ascii_digit) && chars[3] == '-' && "abc".contains(chars[4]),
        "{}",
        g.text
    );
    assert_eq!(g.finish, Finish::Stop);
}

#[test]
fn response_formats_map_to_grammars_and_bad_ones_are_named() {
    assert_eq!(Grammar::from_response_format(&json!({"type": "text"})).unwrap(), None);
    assert_eq!(
        Grammar::from_response_format(&json!({"type": "json_object"})).unwrap(),
        Some(Grammar::JsonSchema(json!({"type": "object"})))
    );
    // llama.cpp's dialect: the schema rides along with json_object.
    let schema = json!({"type": "object", "properties": {"a": {"type": "integer"}}});
    assert_eq!(
        Grammar::from_response_format(&json!({"type": "json_object", "schema": schema})).unwrap(),
        Some(Grammar::JsonSchema(schema))
    );
    let err = Grammar::from_response_format(&json!({"type": "json_schema", "json_schema": {}})).unwrap_err();
    assert!(err.contains("json_schema.schema"), "{err}");
    assert!(Grammar::from_response_format(&json!({"type": "xml"})).unwrap_err().contains("xml"));
    // A schema llguidance cannot compile fails before decoding, naming the request.
    let model = model();
    let bad = Grammar::JsonSchema(json!({"type": "no-such-type"}));
    let err = model.generate(&[request(&model, "hi", bad, 0, 0.0)], &mut |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("request 0"), "{err}");
}
