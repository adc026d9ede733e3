//! `pipeline chat`: one reply from a model in-process, streamed to stdout.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use trainer::generate::{Request, Sampling};
use trainer::text::{ChatMessage, TokenStream};
use trainer::{DeviceSpec, Pretrained};

#[derive(Args)]
pub struct ChatArgs {
    /// A GGUF file or a Hugging Face model folder (config.json, tokenizer.json, safetensors).
    #[arg(long)]
    model: PathBuf,
    /// The user message.
    message: String,
    /// A system message (otherwise the chat template's default, if any).
    #[arg(long)]
    system: Option<String>,
    #[arg(long, default_value_t = 256)]
    max_new_tokens: usize,
    /// 0 decodes greedily (the default).
    #[arg(long, default_value_t = 0.0)]
    temperature: f32,
    #[arg(long, default_value_t = 1.0)]
    top_p: f32,
    #[arg(long, default_value_t = 0.0)]
    min_p: f32,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// `cpu`, `cuda` or `cuda:N`.
    #[arg(long, default_value = "cpu")]
    device: DeviceSpec,
}

pub fn chat(args: &ChatArgs) -> anyhow::Result<()> {
    let model = Pretrained::load(&args.model, &args.device.device())?;
    let mut messages = Vec::new();
    if let Some(system) = &args.system {
        messages.push(ChatMessage::new("system", system));
    }
    messages.push(ChatMessage::new("user", &args.message));
    let prompt = model.chat_prompt(&messages)?;
    let request = Request {
        prompt,
        max_new_tokens: args.max_new_tokens,
        sampling: Sampling { temperature: args.temperature, top_p: args.top_p, min_p: args.min_p, top_k: 0 },
        stop: Vec::new(),
        seed: args.seed,
        ignore_eos: false,
        grammar: None,
        cancel: None,
    };
    let mut stream = TokenStream::new(&model.tokenizer);
    let mut out = std::io::stdout().lock();
    let mut failed = None;
    let start = Instant::now();
    let result = model.generate(std::slice::from_ref(&request), &mut |_, token| {
        if failed.is_some() {
            return;
        }
        match stream.push(token) {
            Ok(Some(piece)) => {
                if let Err(e) = out.write_all(piece.as_bytes()).and_then(|()| out.flush()) {
                    failed = Some(anyhow::Error::from(e));
                }
            }
            Ok(None) => {}
            Err(e) => failed = Some(e.into()),
        }
    })?;
    if let Some(e) = failed {
        return Err(e).context("writing the reply");
    }
    if let Some(rest) = stream.flush()? {
        out.write_all(rest.as_bytes())?;
    }
    writeln!(out)?;
    let generation = &result[0];
    let secs = start.elapsed().as_secs_f64();
    tracing::info!(
        "{} prompt + {} generated tokens in {secs:.2}s ({:.1} tokens/s), finish: {:?}",
        generation.prompt_tokens,
        generation.tokens.len(),
        generation.tokens.len() as f64 / secs,
        generation.finish
    );
    Ok(())
}
