use super::*;

fn hasher() -> MinHasher {
    MinHasher::new(20, 13, 42)
}

#[test]
fn normalisation_ignores_case_spacing_and_latex_spacing() {
    assert_eq!(exact_key("Find $x$ if  2x=4."), exact_key("find x\\, if 2x=4."));
    assert_ne!(exact_key("Find x if 2x=4."), exact_key("Find x if 2x=5."));
}

#[test]
fn minhash_estimates_jaccard() {
    let h = MinHasher::new(32, 8, 1);
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
