//! Supervised fine-tuning: data, loss, one micro-batch's gradients, data parallel
//! workers, the training loop.

pub mod adamw;
pub mod data;
pub mod loss;
pub mod memory;
pub mod parallel;
pub mod schedule;
pub mod step;
pub mod train;
