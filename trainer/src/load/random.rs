//! Seeded random weights for tests and benchmarks: normal(0, std) matrices, unit norms.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::WeightSource;
use crate::error::ModelError;

pub struct RandomWeights {
    rng: StdRng,
    std: f32,
}

impl RandomWeights {
    pub fn new(seed: u64, std: f32) -> Self {
        Self { rng: StdRng::seed_from_u64(seed), std }
    }
}

impl WeightSource for RandomWeights {
    fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, ModelError> {
        let n: usize = shape.iter().product();
        if name.contains("norm") {
            return Ok(vec![1.0; n]);
        }
        Ok((0..n)
            .map(|_| {
                // Box-Muller: two uniforms to one standard normal.
                let u1: f32 = self.rng.random_range(f32::EPSILON..1.0);
                let u2: f32 = self.rng.random();
                self.std * (-2.0 * u1.ln()).sqrt() * (std::f32::consts::TAU * u2).cos()
            })
            .collect())
    }

    fn finish(&mut self) -> Result<(), ModelError> {
        Ok(())
    }
}
