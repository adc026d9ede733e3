//! Each engine's command line. A `command` template runs without a shell: it is split into
//! words the way a shell would split it (quotes, backslashes, `#` comments), and then each
//! `{model}`, `{served}`, `{port}`, `{host}` and `{gpus}` is replaced inside its word, so a
//! value is always part of one argument and nothing in it (`$(...)`, backticks, `;`) is ever
//! run. A template that needs a shell says so: `sh -c '...'`.

use crate::params::{ServeConfig, ServeEngine};

/// The engine's argv for serving `weights` as `served` on `host:port`; for `engine = "command"`
/// an error (for `serve.command`) when the template cannot be split or needs a shell.
pub fn command_line(
    spec: &ServeConfig,
    weights: &str,
    served: &str,
    host: &str,
    port: u16,
) -> Result<Vec<String>, String> {
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let (port_s, tp) = (port.to_string(), spec.tensor_parallel.to_string());
    // vLLM and SGLang take the same listening and naming flags.
    let listen = s(&["--host", host, "--port", &port_s, "--served-model-name", served]);
    let mut argv = match spec.engine {
        ServeEngine::Vllm => {
            [s(&["vllm", "serve", weights]), listen, s(&["--tensor-parallel-size", &tp])].concat()
        }
        ServeEngine::Sglang => {
            let launch = s(&["python3", "-m", "sglang.launch_server", "--model-path", weights]);
            [launch, listen, s(&["--tp", &tp])].concat()
        }
        ServeEngine::LlamaCpp => {
            let mut v =
                s(&["llama-server", "-m", weights, "--host", host, "--port", &port_s, "--alias", served]);
            if spec.gpus() > 0 {
                v.extend(s(&["-ngl", "999"]));
            }
            v
        }
        ServeEngine::Pipeline => {
            let me =
                std::env::current_exe().map_or_else(|_| "pipeline".to_owned(), |p| p.display().to_string());
            s(&[
                &me,
                "serve",
                "--model",
                weights,
                "--host",
                host,
                "--port",
                &port_s,
                "--served-model-name",
                served,
            ])
        }
        ServeEngine::Command => {
            let template = spec.command.as_deref().unwrap_or_default();
            let values = [
                ("{model}", weights),
                ("{served}", served),
                ("{port}", &port_s),
                ("{host}", host),
                ("{gpus}", &spec.gpus().to_string()),
            ];
            return template_argv(template)?.iter().map(|word| Ok(fill(word, &values))).collect();
        }
    };
    argv.extend(spec.args.iter().cloned());
    Ok(argv)
}

/// Whether a `serve.command` template can run: it splits into words and needs no shell (for
/// config validation, so the mistake is named before any stage runs).
pub fn check_template(template: &str) -> Result<(), String> {
    template_argv(template).map(|_| ())
}

/// The template's words, before any value is put in.
fn template_argv(template: &str) -> Result<Vec<String>, String> {
    let words = shlex::split(template)
        .ok_or("cannot be split into words (an unclosed quote, or a trailing backslash?)")?;
    if words.is_empty() {
        return Err("names no program".into());
    }
    // Without a shell these would reach the program as plain arguments: say so instead.
    let operator = ["|", "||", "&", "&&", ";", ">", ">>", "<", "2>", "2>&1", "&>", "$(", "`"];
    let assignment = |w: &str| {
        w.split_once('=').is_some_and(|(name, _)| {
            !name.is_empty() && name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
        })
    };
    if let Some(w) =
        words.iter().find(|w| operator.contains(&w.as_str())).or(words.first().filter(|w| assignment(w)))
    {
        return Err(format!(
            "`{w}` is shell syntax, but the command runs without a shell (so that no value is ever run as \
             code): wrap it in `sh -c '...'`, or set variables in serve.env"
        ));
    }
    Ok(words)
}

/// `word` with each placeholder replaced, in one pass: a value is never searched for
/// placeholders itself.
fn fill(word: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(word.len());
    let mut rest = word;
    while let Some(at) = rest.find('{') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        match values.iter().find(|(name, _)| rest.starts_with(name)) {
            Some((name, value)) => {
                out.push_str(value);
                rest = &rest[name.len()..];
            }
            None => {
                out.push('{');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_lines_follow_each_engine() {
        let spec = |engine| ServeConfig {
            engine,
            tensor_parallel: 4,
            args: vec!["--x".into()],
            ..ServeConfig::default()
        };
        let line = |spec: &ServeConfig, weights| {
            command_line(spec, weights, "q", "127.0.0.1", 8001).unwrap().join(" ")
        };
        assert_eq!(
            line(&spec(ServeEngine::Vllm), "/m/q"),
            "vllm serve /m/q --host 127.0.0.1 --port 8001 --served-model-name q --tensor-parallel-size 4 --x"
        );
        let v = line(&spec(ServeEngine::Sglang), "/m/q");
        assert!(
            v.contains("sglang.launch_server --model-path /m/q")
                && v.contains("--tp 4")
                && v.ends_with("--x"),
            "{v}"
        );
        let v = line(&spec(ServeEngine::LlamaCpp), "m.gguf");
        assert!(v.starts_with("llama-server -m m.gguf") && v.contains("-ngl 999"), "{v}");
        let command = ServeConfig {
            engine: ServeEngine::Command,
            command: Some("srv --weights {model} --name={served} --port {port} --gpus {gpus}".into()),
            ..spec(ServeEngine::Command)
        };
        let v = command_line(&command, "w", "q", "127.0.0.1", 9).unwrap();
        assert_eq!(v, ["srv", "--weights", "w", "--name=q", "--port", "9", "--gpus", "4"]);
    }

    #[test]
    fn template_values_are_single_arguments_and_never_shell_code() {
        let spec = |template: &str| ServeConfig {
            engine: ServeEngine::Command,
            command: Some(template.into()),
            ..ServeConfig::default()
        };
        let hostile = "m $(touch /tmp/x) `id` ; rm -rf ~ {port} '\"";
        let v = command_line(&spec("srv --model {model} --port {port} # a comment"), hostile, "q", "h", 7);
        assert_eq!(v.unwrap(), ["srv", "--model", hostile, "--port", "7"]);
        // Quoting in the template is the template's: the value still lands whole in its word.
        let v = command_line(
            &spec("sh -c 'exec srv \"$1\" {port}' srv '{model}' \"x{served}y\""),
            hostile,
            "q",
            "h",
            7,
        );
        assert_eq!(v.unwrap(), ["sh", "-c", "exec srv \"$1\" 7", "srv", hostile, "xqy"]);
        for (template, why) in [
            ("srv --port {port} > log", "`>` is shell syntax"),
            ("CUDA_VISIBLE_DEVICES=0 srv {port}", "`CUDA_VISIBLE_DEVICES=0` is shell syntax"),
            ("srv 'unclosed {port}", "cannot be split"),
            ("  # {port}", "names no program"),
        ] {
            let e = command_line(&spec(template), "m", "q", "h", 7).unwrap_err();
            assert!(e.contains(why), "{template}: {e}");
        }
        // `--flag=value` is an argument, not an assignment.
        assert!(command_line(&spec("srv --port={port}"), "m", "q", "h", 7).is_ok());
    }
}
