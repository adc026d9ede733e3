use super::*;

fn hasher() -> MinHasher {
    crate::params::MinHashConfig::default().hasher(42)
}

#[test]
fn normalisation_ignores_case_spacing_and_latex_spacing() {
    assert_eq!(exact_key("Find $x$ if  2x=4."), exact_key("find x\\, if 2x=4."));
    assert_ne!(exact_key("Find x if 2x=4."), exact_key("Find x if 2x=5."));
}

#[test]
fn minhash_estimates_jaccard() {
    let h = MinHasher::new(32, 8, 1);
    assert_eq!(h.len(), 256);
    let a = char_shingles("Let ABC be a triangle with AB = 13, BC = 14 and CA = 15. Find its area.", 5);
    let b = char_shingles("Let ABC be a triangle with AB = 13, BC = 14 and CA = 15. Find its inradius.", 5);
    let (sa, sb) = (h.signature(&a), h.signature(&b));
    let estimate = sa.iter().zip(&sb).filter(|(x, y)| x == y).count() as f64 / sa.len() as f64;
    assert!((estimate - jaccard(&a, &b)).abs() < 0.1, "{estimate} vs {}", jaccard(&a, &b));
}

#[test]
fn near_duplicates_cluster_and_keep_the_smallest_id() {
    let base =
        "How many positive integers n less than 1000 are such that n squared plus n is divisible by 6?";
    let texts = [
        base.to_owned(),
        base.replace("1000", "1000 "),                            // spacing only
        base.replace("How many", "how many"),                     // case only
        base.replace("divisible by 6", "divisible by 6 exactly"), // small edit
        "Compute the sum of all primes below fifty that are one more than a multiple of four.".to_owned(),
    ];
    let ids = ["p3", "p1", "p4", "p2", "p0"];
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let dups = near_duplicates(&ids, &refs, 5, &hasher(), 0.8);
    let dropped: Vec<&str> = dups.iter().map(|d| ids[d.dropped]).collect();
    assert_eq!(dropped, vec!["p2", "p3", "p4"]);
    assert!(dups.iter().all(|d| ids[d.kept] == "p1" && d.similarity >= 0.8));
}

#[test]
fn contamination_by_ngram_and_by_similarity() {
    let bench = vec![
        ("math500".to_owned(), "test/1".to_owned(), "The sum of two numbers is 22. Their difference is 4. What is the greater of the two numbers?".to_owned()),
        ("minerva_math".to_owned(), "7".to_owned(), "A star has a parallax of 0.1 arcseconds. How far away is it in parsecs, to the nearest whole number?".to_owned()),
    ];
    let index = ContaminationIndex::new(bench, 13, 5, hasher(), 0.75);
    let copied = "Solve this: The sum of two numbers is 22. Their difference is 4. What is the greater of the two numbers? Show work.";
    let c = index.check(copied).unwrap();
    assert_eq!((c.benchmark.as_str(), c.how), ("math500", "ngram"));
    let reworded = "A star has a parallax of 0.1 arcseconds; how far away is it in parsecs; to the nearest whole number?";
    let c = index.check(reworded).unwrap();
    assert_eq!((c.benchmark.as_str(), c.how), ("minerva_math", "minhash"), "{c:?}");
    assert!(
        index.check("Find the number of ordered pairs of integers (a, b) with a^2 + b^2 = 25.").is_none()
    );
}

#[test]
fn semantic_duplicates_drop_against_the_most_similar_kept_item_in_id_order() {
    let unit = |v: [f32; 3]| {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect::<Vec<f32>>()
    };
    // b ~ a (cos 0.995), c orthogonal, d closest to c.
    let ids = ["b", "c", "a", "d"];
    let vectors =
        vec![unit([1.0, 0.1, 0.0]), unit([0.0, 0.0, 1.0]), unit([1.0, 0.0, 0.0]), unit([0.0, 0.05, 1.0])];
    let dups = semantic_duplicates(&ids, &vectors, 0.95);
    let pairs: Vec<(&str, &str)> = dups.iter().map(|d| (ids[d.dropped], ids[d.kept])).collect();
    // In id order a is seen before b, so a survives; d goes against c.
    assert_eq!(pairs, [("b", "a"), ("d", "c")]);
    assert!(dups.iter().all(|d| d.similarity > 0.95 && d.similarity <= 1.0 + 1e-9));
    // Nothing above the threshold: nothing dropped; input order does not matter.
    assert!(semantic_duplicates(&ids, &vectors, 0.999).is_empty());
    let mut rev_ids = ids;
    rev_ids.reverse();
    let mut rev_vectors = vectors.clone();
    rev_vectors.reverse();
    let rev: Vec<(&str, &str)> = semantic_duplicates(&rev_ids, &rev_vectors, 0.95)
        .iter()
        .map(|d| (rev_ids[d.dropped], rev_ids[d.kept]))
        .collect();
    assert_eq!(rev, pairs);
}

#[test]
fn densified_one_permutation_minhash_is_unbiased_on_short_and_long_texts() {
    // Over many seeds the share of agreeing values estimates Jaccard without bias, also when
    // most bins are empty (a short text: 20 shingles in 256 bins) and borrow their values.
    for (len, shared) in [(20usize, 15usize), (300, 240)] {
        let a: Vec<u64> = (0..len as u64).map(|i| i * 7919).collect();
        let b: Vec<u64> = (0..shared as u64)
            .map(|i| i * 7919)
            .chain((0..(len - shared) as u64).map(|i| 1 + i * 104_729))
            .collect();
        let (mut a, mut b) = (a, b);
        a.sort_unstable();
        b.sort_unstable();
        let truth = jaccard(&a, &b);
        let mut agree = 0.0;
        let seeds = 200;
        for seed in 0..seeds {
            let h = MinHasher::new(32, 8, seed);
            let (sa, sb) = (h.signature(&a), h.signature(&b));
            agree += sa.iter().zip(&sb).filter(|(x, y)| x == y).count() as f64 / sa.len() as f64;
        }
        let estimate = agree / seeds as f64;
        assert!((estimate - truth).abs() < 0.02, "{len} shingles: {estimate} vs {truth}");
    }
}

#[test]
fn lsh_params_follow_datasketch_and_the_weight_trades_recall_for_work() {
    // datasketch 1.6.5's `_optimal_param(0.8, 256, w_fp, w_fn)` for these weights.
    assert_eq!(lsh_params(0.8, 256, 0.5), (17, 15));
    assert_eq!(lsh_params(0.8, 256, 0.9), (23, 11));
    assert_eq!(lsh_params(0.8, 256, 0.99), (28, 9));
    assert_eq!(lsh_params(0.8, 128, 0.5), (9, 13));
}

#[test]
fn planted_near_copies_are_found_and_nothing_else_is_dropped() {
    // 2,000 distinct problems, 200 near copies with one word edited: every copy found, no
    // original merged with another.
    let templates = [
        "Let the {} be such that {} is divisible by {}. Find the largest value of {} below {}.",
        "A bag holds {} red and {} blue marbles; {} are drawn without replacement. What is the chance that {} are red, given {}?",
    ];
    let mut texts: Vec<String> = Vec::new();
    for i in 0..2000u64 {
        let mut t = templates[(i % 2) as usize].to_owned();
        for k in 0..5 {
            let v = vs_core::seeds::mix(i, k) % 100_000;
            t = t.replacen("{}", &format!("{v}x{}", (v * 31) % 977), 1);
        }
        texts.push(t);
    }
    let originals = texts.len();
    for i in 0..200 {
        let words: Vec<&str> = texts[i * 7].split(' ').collect();
        let mut copy: Vec<String> = words.iter().map(|w| w.to_string()).collect();
        copy[3] = "exactly".into();
        texts.push(copy.join(" "));
    }
    let ids: Vec<String> = (0..texts.len()).map(|i| format!("p{i:05}")).collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
    let dups = near_duplicates(&id_refs, &refs, 5, &hasher(), 0.8);
    let pairs: std::collections::BTreeSet<(usize, usize)> =
        dups.iter().map(|d| (d.dropped, d.kept)).collect();
    let expected: std::collections::BTreeSet<(usize, usize)> =
        (0..200).map(|i| (originals + i, i * 7)).collect();
    assert_eq!(pairs, expected);
}
