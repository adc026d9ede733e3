//! Learning-rate schedules as transformers defines them (`get_*_schedule_with_warmup`): linear
//! warmup from 0, then constant, linear decay to 0, or cosine decay to 0. A pure function of
//! the step, so resuming needs nothing but the step.

use serde::{Deserialize, Serialize};

/// The decay after warmup. The one schedule type of the workspace: training options files and
/// the pipeline config (`train.lr_schedule`) both name it with these serde names, so a run's
/// identity JSON says `"cosine"` wherever it is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleKind {
    Constant,
    Linear,
    Cosine,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Schedule {
    pub kind: ScheduleKind,
    pub peak: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

impl Schedule {
    /// The learning rate of optimizer step `step` (0-based).
    pub fn at(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.peak * step as f64 / self.warmup_steps.max(1) as f64;
        }
        let decay = self.total_steps.saturating_sub(self.warmup_steps).max(1) as f64;
        let progress = (step - self.warmup_steps) as f64 / decay;
        match self.kind {
            ScheduleKind::Constant => self.peak,
            ScheduleKind::Linear => self.peak * (1.0 - progress).max(0.0),
            ScheduleKind::Cosine => {
                self.peak * (0.5 * (1.0 + (std::f64::consts::PI * progress).cos())).max(0.0)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warmup_then_decay() {
        let s = Schedule { kind: ScheduleKind::Cosine, peak: 1.0, warmup_steps: 10, total_steps: 110 };
        assert_eq!(s.at(0), 0.0);
        assert_eq!(s.at(5), 0.5);
        assert_eq!(s.at(10), 1.0);
        assert!((s.at(60) - 0.5).abs() < 1e-12);
        assert!(s.at(110).abs() < 1e-12);
        let l = Schedule { kind: ScheduleKind::Linear, ..s };
        assert!((l.at(85) - 0.25).abs() < 1e-12);
        assert_eq!(Schedule { kind: ScheduleKind::Constant, ..s }.at(100), 1.0);
    }

    #[test]
    fn serde_names_are_the_config_names() {
        for (kind, name) in [
            (ScheduleKind::Constant, "constant"),
            (ScheduleKind::Linear, "linear"),
            (ScheduleKind::Cosine, "cosine"),
        ] {
            assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<ScheduleKind>(&format!("\"{name}\"")).unwrap(), kind);
        }
        assert!(serde_json::from_str::<ScheduleKind>("\"Cosine\"").is_err());
    }
}
