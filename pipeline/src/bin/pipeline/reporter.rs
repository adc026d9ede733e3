//! The terminal face of [`pipeline::progress::Reporter`]: a spinner per running stage, a bar per
//! unit of work, one line per finished or skipped stage; and a `tracing` writer that pauses the
//! bars so log lines do not tear them.

use std::io::Write;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use pipeline::manifest::Manifest;
use pipeline::progress::{Progress, Reporter};
use vs_core::StageName;

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
        // Without a terminal (a Slurm log) the bar is invisible: a line a minute instead.
        let logged = self.multi.is_hidden().then(|| Mutex::new(Instant::now()));
        Box::new(Bar { bar, label: label.to_owned(), logged })
    }
}

/// How often a bar writes a line when stderr is not a terminal.
const LOG_EVERY: Duration = Duration::from_secs(60);

struct Bar {
    bar: ProgressBar,
    label: String,
    /// When the last progress line was written, when lines stand in for the bar.
    logged: Option<Mutex<Instant>>,
}

impl Progress for Bar {
    fn inc(&self, n: u64) {
        self.bar.inc(n);
        if let Some(last) = &self.logged {
            let mut last = last.lock().expect("reporter lock");
            if last.elapsed() >= LOG_EVERY {
                *last = Instant::now();
                let (pos, len) = (self.bar.position(), self.bar.length().unwrap_or(0));
                eprintln!(
                    "  {}: {pos}/{len} ({:.0}%) after {}",
                    self.label,
                    100.0 * pos as f64 / len.max(1) as f64,
                    humantime::format_duration(Duration::from_secs(self.bar.elapsed().as_secs()))
                );
            }
        }
    }
    fn finish(&self) {
        self.bar.finish();
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
