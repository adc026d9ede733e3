//! Data parallel training over several devices: one worker thread per device, each with a
//! replica of the model, shares the micro-batches of an optimizer step; their gradients are
//! summed on the first device, which takes the AdamW step, and the replicas are forked again
//! from the updated weights. What a step computes does not depend on the number of devices:
//! the step is still the token mean over `grad_accum_steps` micro-batches of `batch_size` rows,
//! so one device and four give the same loss curve up to floating-point order.
//!
//! burn 0.22's own collective operations cannot be used: `DistributedOps` for its libtorch
//! backend keeps the default `all_reduce`/`sync_collective`, which are `unimplemented!()`
//! (burn-tch's `ops/transaction.rs`: "LibTorch does not support collective operations"), and
//! `burn-collective` was last released for burn 0.21. tch does not bind NCCL either, so the
//! reduction is a sum of device-to-device copies on the first device (through NVLink/PCIe
//! peer copies on GPUs): fine for a handful of GPUs in one node, not a ring all-reduce.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Tensor};

use super::data::Batch;
use super::step::{StepSettings, batch_gradients};
use crate::model::CausalLm;

/// What one worker computes for a step: its share of the window's loss and its gradients.
pub struct WorkerResult {
    pub loss: f64,
    pub grads: GradientsParams,
}

/// The worker that handles micro-batch `index` of a window: round robin, so that with
/// length-grouped batches each device gets a similar amount of work.
pub fn worker_of(index: usize, workers: usize) -> usize {
    index % workers.max(1)
}

/// Runs every worker's micro-batches of one step, worker 0 on `model` itself and worker `k` on
/// a replica forked to `devices[k]`, in parallel threads. `make_batch(i, device)` builds
/// micro-batch `i` of the window on `device` and returns it with its share of the window's
/// supervised tokens.
pub fn run_workers<F>(
    model: &CausalLm,
    devices: &[Device],
    micro_batches: usize,
    settings: StepSettings,
    make_batch: F,
) -> Vec<WorkerResult>
where
    F: Fn(usize, &Device) -> (Batch, f64) + Sync,
{
    let work = |replica: &CausalLm, worker: usize, device: &Device| {
        let mut accumulator = GradientsAccumulator::<CausalLm>::new();
        let mut loss = 0.0;
        for i in (0..micro_batches).filter(|&i| worker_of(i, devices.len()) == worker) {
            let (batch, share) = make_batch(i, device);
            loss += batch_gradients(replica, batch, share, settings, &mut accumulator);
        }
        WorkerResult { loss, grads: accumulator.grads() }
    };
    if devices.len() <= 1 {
        let device = devices.first().cloned().unwrap_or_else(|| model.model.embed_tokens.weight.device());
        return vec![work(model, 0, &device)];
    }
    std::thread::scope(|s| {
        let others: Vec<_> = devices
            .iter()
            .enumerate()
            .skip(1)
            .map(|(k, device)| {
                // A fresh leaf per parameter (its own autodiff graph); on the same device the
                // storage is shared, elsewhere it is a copy of the current weights.
                let replica = model.clone().fork(device);
                let work = &work;
                s.spawn(move || work(&replica, k, device))
            })
            .collect();
        let mut results = vec![work(model, 0, &devices[0])];
        results.extend(others.into_iter().map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e))));
        results
    })
}

/// Sums the workers' gradients on `device` (the master model's): the all-reduce of data
/// parallel training, as a reduce, since only the master steps the optimizer.
pub fn reduce(model: &CausalLm, device: &Device, results: Vec<WorkerResult>) -> (f64, GradientsParams) {
    let loss = results.iter().map(|r| r.loss).sum();
    let mut grads: Vec<GradientsParams> = results.into_iter().map(|r| r.grads).collect();
    if grads.len() == 1 {
        return (loss, grads.pop().expect("one"));
    }
    struct Sum<'a> {
        parts: &'a mut [GradientsParams],
        device: &'a Device,
        out: GradientsParams,
    }
    impl ModuleVisitor for Sum<'_> {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let sum = self
                .parts
                .iter_mut()
                .filter_map(|g| g.remove::<D>(param.id))
                .map(|g| g.to_device(self.device))
                .reduce(|a, b| a + b);
            if let Some(sum) = sum {
                self.out.register(param.id, sum);
            }
        }
    }
    let mut sum = Sum { parts: &mut grads, device, out: GradientsParams::new() };
    model.visit(&mut sum);
    (loss, sum.out)
}
