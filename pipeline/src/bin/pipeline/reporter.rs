//! The terminal face of [`pipeline::progress::Reporter`]: a spinner per running stage, a bar per
//! unit of work, one line per finished or skipped stage; and a `tracing` writer that pauses the
//! bars so log lines do not tear them.

use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use pipeline::manifest::Manifest;
use pipeline::progress::{Progress, Reporter};
use pipeline::stages::StageName;

pub struct TerminalReporter {
    multi: MultiProgress,
    spinner: Mutex<Option<ProgressBar>>,
}

impl TerminalReporter {
    pub fn new(multi: MultiProgress) -> Self {
        Self { multi, spinner: Mutex::new(None) }
    }

    fn line(&self, text: String) {
        // println is a no-op when stderr is not a terminal; keep the line in logs either way.
        if self.multi.is_hidden() {
            eprintln!("{text}");
        } else {
            let _ = self.multi.println(text);
        }
    }
}

impl Reporter for TerminalReporter {
    fn stage_started(&self, stage: StageName) {
        let spinner = self.multi.add(ProgressBar::new_spinner());
        spinner.set_style(ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"));
        spinner.set_message(format!("{stage}: running"));
        spinner.enable_steady_tick(Duration::from_millis(120));
        *self.spinner.lock().expect("reporter lock") = Some(spinner);
    }

    fn stage_skipped(&self, stage: StageName, manifest: &Manifest) {
        self.line(format!(
            "= {stage:<9} up to date ({} outputs, finished {})",
            manifest.outputs.len(),
            manifest.finished_at
        ));
    }

    fn stage_finished(&self, stage: StageName, manifest: &Manifest, took: Duration) {
        if let Some(s) = self.spinner.lock().expect("reporter lock").take() {
            s.finish_and_clear();
        }
        self.line(format!(
            "✓ {stage:<9} done in {:.1}s ({} outputs)",
            took.as_secs_f64(),
            manifest.outputs.len()
        ));
    }

    fn stage_failed(&self, stage: StageName) {
        if let Some(s) = self.spinner.lock().expect("reporter lock").take() {
            s.abandon_with_message(format!("{stage}: failed"));
        }
    }

    fn bar(&self, label: &str, total: u64) -> Box<dyn Progress> {
        let bar = self.multi.add(ProgressBar::new(total));
        bar.set_style(
            ProgressStyle::with_template("  {msg:<24} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        bar.set_message(label.to_owned());
        Box::new(Bar(bar))
    }
}

struct Bar(ProgressBar);

impl Progress for Bar {
    fn inc(&self, n: u64) {
        self.0.inc(n);
    }
    fn finish(&self) {
        self.0.finish();
    }
}

/// `tracing` output that suspends the progress bars while a line is written.
#[derive(Clone)]
pub struct LogWriter(pub MultiProgress);

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for LogWriter {
    type Writer = SuspendedStderr;

    fn make_writer(&'a self) -> Self::Writer {
        SuspendedStderr { multi: self.0.clone(), buf: Vec::new() }
    }
}

pub struct SuspendedStderr {
    multi: MultiProgress,
    buf: Vec<u8>,
}

impl Write for SuspendedStderr {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for SuspendedStderr {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        self.multi.suspend(|| {
            let _ = std::io::stderr().write_all(&buf);
        });
    }
}
