//! Choosing the next token from logits: greedy, or temperature then top-k, top-p and min-p
//! (transformers' warper order), drawn from a per-request seeded generator so a batch
//! samples the same tokens as the requests would alone.

use rand::Rng;
use rand::rngs::StdRng;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    /// 0 means greedy.
    pub temperature: f32,
    pub top_p: f32,
    pub min_p: f32,
    /// 0 means no limit.
    pub top_k: usize,
}

impl Default for Sampling {
    fn default() -> Self {
        Self::greedy()
    }
}

impl Sampling {
    pub fn greedy() -> Self {
        Self { temperature: 0.0, top_p: 1.0, min_p: 0.0, top_k: 0 }
    }

    /// Whether these settings can sample at all: finite, temperature >= 0, top_p and min_p in
    /// [0, 1]. (An infinite temperature turns masked logits into NaN probabilities, so a
    /// constrained row would draw a token its grammar forbids.)
    pub fn check(&self) -> Result<(), String> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(format!("temperature {} is not a finite number >= 0", self.temperature));
        }
        for (name, v) in [("top_p", self.top_p), ("min_p", self.min_p)] {
            if !(0.0..=1.0).contains(&v) {
                return Err(format!("{name} {v} is not in [0, 1]"));
            }
        }
        Ok(())
    }

    pub fn is_greedy(&self) -> bool {
        self.temperature <= 0.0 || self.top_k == 1
    }

    pub fn pick(&self, logits: &[f32], rng: &mut StdRng) -> u32 {
        if self.is_greedy() {
            return argmax(logits);
        }
        let inv_t = 1.0 / f64::from(self.temperature);
        let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut probs: Vec<f64> = logits.iter().map(|&l| (f64::from(l - max) * inv_t).exp()).collect();
        let total: f64 = probs.iter().sum();
        probs.iter_mut().for_each(|p| *p /= total);

        let top_p = f64::from(self.top_p).clamp(0.0, 1.0);
        let restricted = self.top_k > 0 || top_p < 1.0 || self.min_p > 0.0;
        if !restricted {
            return draw(probs.iter().copied().enumerate(), 1.0, rng);
        }
        // Only tokens that can survive need sorting: with p_max the largest probability, the
        // top-p nucleus lies above the first threshold p_max * 10^-k whose mass reaches top_p.
        let p_max = probs.iter().copied().fold(0.0, f64::max);
        let mut threshold = p_max;
        for k in 1..=12 {
            threshold = p_max * 10f64.powi(-k);
            let mass: f64 = probs.iter().filter(|&&p| p >= threshold).sum();
            if mass >= top_p || k == 12 {
                break;
            }
        }
        if top_p >= 1.0 {
            threshold = 0.0;
        }
        if self.min_p > 0.0 {
            threshold = threshold.max(f64::from(self.min_p) * p_max);
        }
        let mut cand: Vec<(usize, f64)> =
            probs.iter().copied().enumerate().filter(|&(_, p)| p >= threshold).collect();
        cand.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        if self.top_k > 0 {
            cand.truncate(self.top_k);
        }
        if top_p < 1.0 {
            let mut mass = 0.0;
            let keep = cand
                .iter()
                .position(|&(_, p)| {
                    mass += p;
                    mass >= top_p
                })
                .map_or(cand.len(), |i| i + 1);
            cand.truncate(keep.max(1));
        }
        let kept: f64 = cand.iter().map(|c| c.1).sum();
        draw(cand.into_iter(), kept, rng)
    }
}

impl Sampling {
    /// The one token a grammar allows, taken without computing probabilities: it consumes
    /// the random draw [`Self::pick`] makes (one, unless greedy), so a row's later tokens are
    /// the ones `pick` over the masked logits would have led to.
    pub fn forced(&self, token: u32, rng: &mut StdRng) -> u32 {
        if !self.is_greedy() {
            let _: f64 = rng.random();
        }
        token
    }
}

/// The first index of the largest logit (transformers' argmax tie rule).
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    best as u32
}

fn draw(items: impl Iterator<Item = (usize, f64)>, total: f64, rng: &mut StdRng) -> u32 {
    let target = rng.random::<f64>() * total;
    let mut acc = 0.0;
    let mut last = 0;
    for (i, p) in items {
        acc += p;
        last = i;
        if acc > target {
            return i as u32;
        }
    }
    last as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn counts(s: Sampling, logits: &[f32], n: usize) -> Vec<usize> {
        let mut rng = StdRng::seed_from_u64(3);
        let mut c = vec![0; logits.len()];
        for _ in 0..n {
            c[s.pick(logits, &mut rng) as usize] += 1;
        }
        c
    }

    #[test]
    fn greedy_takes_the_first_maximum() {
        assert_eq!(argmax(&[0.0, 2.0, 2.0, 1.0]), 1);
        assert_eq!(Sampling::greedy().pick(&[0.0, 1.0, 3.0], &mut StdRng::seed_from_u64(0)), 2);
    }

    #[test]
    fn sampling_follows_the_distribution() {
        // softmax([ln 1, ln 2, ln 7]) = [0.1, 0.2, 0.7]
        let logits = [1f32.ln(), 2f32.ln(), 7f32.ln()];
        let c = counts(Sampling { temperature: 1.0, ..Sampling::greedy() }, &logits, 20_000);
        for (got, want) in c.iter().zip([0.1, 0.2, 0.7]) {
            assert!((*got as f64 / 20_000.0 - want).abs() < 0.015, "{c:?}");
        }
    }

    #[test]
    fn top_p_min_p_and_top_k_cut_the_tail() {
        let logits = [1f32.ln(), 2f32.ln(), 7f32.ln()];
        let t1 = Sampling { temperature: 1.0, ..Sampling::greedy() };
        // top_p 0.8: {0.7, 0.2} reach 0.9 >= 0.8, so token 0 never appears.
        let c = counts(Sampling { top_p: 0.8, ..t1 }, &logits, 5000);
        assert_eq!(c[0], 0);
        assert!(c[1] > 0 && c[2] > c[1]);
        // top_p 0.5: the top token alone.
        assert_eq!(counts(Sampling { top_p: 0.5, ..t1 }, &logits, 500)[2], 500);
        // min_p 0.2: 0.1 < 0.2 * 0.7, cut; 0.2 kept.
        let c = counts(Sampling { min_p: 0.2, ..t1 }, &logits, 5000);
        assert_eq!(c[0], 0);
        assert!(c[1] > 0);
        assert_eq!(counts(Sampling { top_k: 2, ..t1 }, &logits, 2000)[0], 0);
    }

    /// A forced token is what `pick` gives over logits masked to it, and leaves the generator
    /// where `pick` does: the tokens after it are the same.
    #[test]
    fn a_forced_token_draws_as_pick_does() {
        let mut logits = vec![f32::NEG_INFINITY; 50];
        logits[17] = 0.3;
        let free: Vec<f32> = (0..50).map(|i| (i as f32 * 0.7).sin()).collect();
        for s in [
            Sampling::greedy(),
            Sampling { temperature: 0.7, ..Sampling::greedy() },
            Sampling { temperature: 1.0, top_p: 0.9, min_p: 0.05, top_k: 5 },
        ] {
            let (mut a, mut b) = (StdRng::seed_from_u64(5), StdRng::seed_from_u64(5));
            assert_eq!(s.pick(&logits, &mut a), 17);
            assert_eq!(s.forced(17, &mut b), 17);
            let after_pick: Vec<u32> = (0..20).map(|_| s.pick(&free, &mut a)).collect();
            let after_forced: Vec<u32> = (0..20).map(|_| s.pick(&free, &mut b)).collect();
            assert_eq!(after_pick, after_forced, "{s:?}");
        }
    }

    #[test]
    fn same_seed_same_tokens() {
        let logits: Vec<f32> = (0..1000).map(|i| ((i * 37) % 101) as f32 / 10.0).collect();
        let s = Sampling { temperature: 0.8, top_p: 0.95, min_p: 0.0, top_k: 0 };
        let run = |seed| {
            let mut rng = StdRng::seed_from_u64(seed);
            (0..50).map(|_| s.pick(&logits, &mut rng)).collect::<Vec<_>>()
        };
        assert_eq!(run(9), run(9));
        assert_ne!(run(9), run(10));
    }
}
