use super::*;

fn one(v: &[bool]) -> Outcomes {
    vec![vec![v.to_vec()]]
}

/// `n` problems, `b` only A right, `c` only B right, `both` right for both.
fn pair(n: usize, b: usize, c: usize, both: usize) -> (Outcomes, Outcomes) {
    let a: Vec<bool> = (0..n).map(|i| i < both + b).collect();
    let x: Vec<bool> = (0..n).map(|i| i < both || (both + b..both + b + c).contains(&i)).collect();
    (one(&a), one(&x))
}

#[test]
fn one_benchmark_one_run_is_mcnemars_asymptotic_statistic_with_half_pseudo_counts() {
    for (n, b, c) in [(20, 0, 5), (20, 1, 9), (500, 30, 55), (40, 7, 7)] {
        let (a, x) = pair(n, b, c, 3);
        let t = PairedTest::new(&a, &x, &[1.0], None);
        let z = (b as f64 - c as f64) / (b as f64 + c as f64 + 1.0).sqrt();
        assert!((t.z(0.0) - z).abs() < 1e-12, "{n} {b} {c}: {} vs {z}", t.z(0.0));
        assert!((t.estimate - (b as f64 - c as f64) / n as f64).abs() < 1e-12);
        assert_eq!(t.df, f64::INFINITY);
        // Normal reference: p = 2 (1 - Phi(|z|)).
        let p = 2.0 * Normal::standard().sf(z.abs());
        assert!((t.p() - p).abs() < 1e-12);
    }
}

#[test]
fn the_interval_excludes_zero_exactly_when_p_is_below_its_level() {
    let mut state = 3u64;
    let mut next = || {
        state = vs_core::seeds::mix(state, 7);
        vs_core::seeds::unit(state)
    };
    let mut checked = 0;
    for _ in 0..3000 {
        let benchmarks = 1 + (next() * 3.0) as usize;
        let runs = 1 + (next() * 3.0) as usize;
        let n = 3 + (next() * 60.0) as usize;
        let (pa, pb) = (next(), next());
        let make = |p: f64, next: &mut dyn FnMut() -> f64| -> Outcomes {
            (0..benchmarks)
                .map(|_| (0..runs).map(|_| (0..n).map(|_| next() < p).collect()).collect())
                .collect()
        };
        let a = make(pa, &mut next);
        let b = make(pb, &mut next);
        for only in std::iter::once(None).chain((0..benchmarks).map(Some)) {
            let c = weights(benchmarks, only);
            let pooled = TrainingVariance::pooled(&[&a, &b], &c);
            let term = match next() < 0.5 {
                true => pooled.and_then(|p| TrainingTerm::pooled(&p, &[runs, runs])),
                false => TrainingTerm::per_comparison(&[(&a, true), (&b, true)], &c),
            };
            let t = PairedTest::new(&a, &b, &c, term);
            for alpha in [0.05, 0.01, 0.05 / 12.0, 0.2] {
                let [lo, hi] = t.interval(alpha);
                assert!(lo <= t.estimate + 1e-12 && t.estimate <= hi + 1e-12, "{lo} {} {hi}", t.estimate);
                assert!(hi > lo, "zero width: {lo} {hi}");
                let excludes = lo > 0.0 || hi < 0.0;
                assert_eq!(excludes, t.p() < alpha, "p {} alpha {alpha} [{lo}, {hi}] n {n}", t.p());
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000);
}

#[test]
fn identical_models_give_zero_difference_p_one_and_an_interval_of_positive_width() {
    let v: Vec<bool> = (0..20).map(|i| i % 3 == 0).collect();
    let t = PairedTest::new(&one(&v), &one(&v), &[1.0], None);
    assert_eq!(t.estimate, 0.0);
    assert!((t.p() - 1.0).abs() < 1e-12);
    let [lo, hi] = t.interval(0.05);
    assert!(lo < 0.0 && hi > 0.0 && hi - lo > 0.1, "[{lo}, {hi}]");
}

#[test]
fn wilson_intervals_match_the_textbook_and_never_have_zero_width() {
    // Wilson 95 % for 8/20: [0.2188, 0.6134] (e.g. Newcombe 1998, Table I method 3).
    let v: Vec<bool> = (0..20).map(|i| i < 8).collect();
    let e = estimate(&one(&v), &[1.0], None, 0.95);
    assert!((e.ci[0] - 0.2188).abs() < 5e-4 && (e.ci[1] - 0.6134).abs() < 5e-4, "{e:?}");
    for hits in [0, 20] {
        let v: Vec<bool> = (0..20).map(|i| i < hits).collect();
        let e = estimate(&one(&v), &[1.0], None, 0.95);
        assert!(e.ci[1] - e.ci[0] > 0.1, "{hits}/20: {e:?}");
        assert!(e.ci[0] <= e.value && e.value <= e.ci[1]);
    }
    // 0/20: [0, 3.84 / 23.84].
    let e = estimate(&one(&[false; 20]), &[1.0], None, 0.95);
    assert!((e.ci[1] - 0.1611).abs() < 5e-4, "{e:?}");
}

#[test]
fn the_training_variance_is_what_runs_add_beyond_per_problem_noise() {
    // Three runs per arm; in the second set every run is shifted as a whole (a seed effect).
    let n = 2000;
    let mut state = 5u64;
    let mut draw = |p: f64| {
        state = vs_core::seeds::mix(state, 3);
        vs_core::seeds::unit(state) < p
    };
    let difficulty: Vec<f64> = (0..n).map(|i| (i % 10) as f64 / 10.0 + 0.05).collect();
    let mut arm = |shifts: &[f64]| -> Outcomes {
        vec![
            shifts
                .iter()
                .map(|s| difficulty.iter().map(|p| draw((p + s).clamp(0.0, 1.0))).collect())
                .collect(),
        ]
    };
    let flat: Vec<Outcomes> = (0..20).map(|_| arm(&[0.0, 0.0, 0.0])).collect();
    let t = TrainingVariance::pooled(&flat.iter().collect::<Vec<_>>(), &[1.0]).unwrap();
    assert_eq!(t.df, 40.0);
    // Per-problem noise alone (between-run variance ~ mean p(1-p) / n ~ 1.2e-4): the run effect
    // is estimated near 0 (chi-square with 40 df: above 0.6 x between has probability < 1e-6).
    assert!(t.sigma2 < 0.6 * t.between, "{t:?}");
    let shifted = [arm(&[-0.05, 0.0, 0.05]), arm(&[0.05, -0.05, 0.0]), arm(&[0.0, 0.05, -0.05])];
    let t = TrainingVariance::pooled(&shifted.iter().collect::<Vec<_>>(), &[1.0]).unwrap();
    // The shifts' variance is 0.0025.
    assert!((t.sigma2 - 0.0025).abs() < 0.001, "{t:?}");
    // One run per arm: nothing to pool.
    assert!(TrainingVariance::pooled(&[&one(&[true, false])], &[1.0]).is_none());
    // Bartlett: alike arms pass, an arm whose runs swing much more does not.
    let per_arm = |arms: &[Outcomes]| -> Vec<TrainingVariance> {
        arms.iter().filter_map(|a| TrainingVariance::of_arm(a, &[1.0])).collect()
    };
    let (_, df, p) = heterogeneity(&per_arm(&flat)).unwrap();
    assert_eq!(df, 19.0);
    assert!(p > 0.001, "{p}");
    let mut mixed: Vec<Outcomes> = (0..6).map(|_| arm(&[0.0, 0.0, 0.0])).collect();
    mixed.extend((0..6).map(|_| arm(&[-0.1, 0.0, 0.1])));
    let (_, _, p) = heterogeneity(&per_arm(&mixed)).unwrap();
    assert!(p < 0.01, "{p}");
}

#[test]
fn the_average_is_tested_as_it_is_estimated() {
    // Benchmark 1 (n = 100): A +10 points; benchmark 2 (n = 400): A -5 points. The mean of the
    // two means is +2.5, though pooled over problems A is behind (10 - 20 = -10 problems).
    let (a1, b1) = pair(100, 10, 0, 20);
    let (a2, b2) = pair(400, 0, 20, 50);
    let a: Outcomes = vec![a1[0].clone(), a2[0].clone()];
    let b: Outcomes = vec![b1[0].clone(), b2[0].clone()];
    let t = PairedTest::new(&a, &b, &weights(2, None), None);
    assert!((t.estimate - 0.025).abs() < 1e-12);
    assert!(t.z(0.0) > 0.0, "the test has the estimate's sign");
}

/// scipy 1.17.1 and statsmodels 0.15.0 (`tools/stats/reference.py`).
#[test]
fn agrees_with_scipy_and_statsmodels() {
    let text = include_str!("../../../../tests/fixtures/stats_reference.json");
    let r: serde_json::Value = serde_json::from_str(text).unwrap();
    let close = |a: f64, b: f64, tol: f64| (a - b).abs() <= tol * b.abs().max(1e-12);
    for w in r["wilson"].as_array().unwrap() {
        let (hits, n, conf) =
            (w[0].as_u64().unwrap() as usize, w[1].as_u64().unwrap() as usize, w[2].as_f64().unwrap());
        let v: Vec<bool> = (0..n).map(|i| i < hits).collect();
        let e = estimate(&one(&v), &[1.0], None, conf);
        let (lo, hi) = (w[3].as_f64().unwrap(), w[4].as_f64().unwrap());
        assert!((e.ci[0] - lo).abs() < 1e-9 && (e.ci[1] - hi).abs() < 1e-9, "{w}: {e:?}");
    }
    for t in r["t"].as_array().unwrap() {
        let z = t[0].as_f64().unwrap();
        let df = t[1].as_f64().unwrap_or(f64::INFINITY);
        assert!(close(two_sided_p(z, df), t[2].as_f64().unwrap(), 1e-8), "{t}");
        assert!(close(critical(0.05, df), t[3].as_f64().unwrap(), 1e-8), "{t}");
    }
    for (key, how) in [
        ("holm", super::super::multiplicity::Adjustment::Holm),
        ("bh", super::super::multiplicity::Adjustment::BenjaminiHochberg),
    ] {
        for case in r[key].as_array().unwrap() {
            let p: Vec<f64> = case[0].as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect();
            let ours = super::super::multiplicity::adjust(&p, 0.05, how);
            for (o, want) in ours.iter().zip(case[1].as_array().unwrap()) {
                assert!(close(o.p_adjusted, want.as_f64().unwrap(), 1e-12), "{key} {case}");
            }
        }
    }
    for m in r["mcnemar"].as_array().unwrap() {
        let (b, c) = (m[0].as_u64().unwrap() as usize, m[1].as_u64().unwrap() as usize);
        let (a, x) = pair(400, b, c, 20);
        let t = PairedTest::new(&a, &x, &[1.0], None);
        assert!(close(t.p(), m[2].as_f64().unwrap(), 1e-9), "{m}: {}", t.p());
    }
}
