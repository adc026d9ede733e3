//! Supervised fine-tuning: examples to token ids and batches (`data`), the masked loss
//! (`loss`), learning-rate schedules (`schedule`), and the loop with checkpoints (`train`).

pub mod data;
pub mod loss;
pub mod schedule;
pub mod train;
