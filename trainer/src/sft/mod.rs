//! Supervised fine-tuning. So far: the loss (the training loop, data, checkpoints and the
//! train stage are issue 6).

pub mod loss;
