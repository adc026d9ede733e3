//! Lexical diversity of a set of texts, as the VS paper measures it: distinct-n within each
//! response (unique n-grams / all n-grams, averaged over responses) and pairwise ROUGE-L
//! (mean F1 over pairs; lower is more diverse). Semantic diversity needs embeddings and lives
//! with the embedding providers.

pub mod intervals;

use std::collections::HashSet;

fn words(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_lowercase).collect()
}

/// Mean over texts of (distinct n-grams / n-grams); texts shorter than `n` words are skipped.
pub fn distinct_n(texts: &[&str], n: usize) -> Option<f64> {
    let scores: Vec<f64> = texts
        .iter()
        .filter_map(|t| {
            let w = words(t);
            if w.len() < n {
                return None;
            }
            let grams: Vec<&[String]> = w.windows(n).collect();
            let unique: HashSet<&[String]> = grams.iter().copied().collect();
            Some(unique.len() as f64 / grams.len() as f64)
        })
        .collect();
    (!scores.is_empty()).then(|| scores.iter().sum::<f64>() / scores.len() as f64)
}

fn lcs(a: &[String], b: &[String]) -> usize {
    let mut row = vec![0usize; b.len() + 1];
    for x in a {
        let mut diag = 0;
        for (j, y) in b.iter().enumerate() {
            let up = row[j + 1];
            row[j + 1] = if x == y { diag + 1 } else { row[j + 1].max(row[j]) };
            diag = up;
        }
    }
    row[b.len()]
}

/// ROUGE-L F1 of two texts over lower-cased words.
pub fn rouge_l(a: &str, b: &str) -> f64 {
    let (a, b) = (words(a), words(b));
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let l = lcs(&a, &b) as f64;
    if l == 0.0 {
        return 0.0;
    }
    let (p, r) = (l / b.len() as f64, l / a.len() as f64);
    2.0 * p * r / (p + r)
}

/// Mean ROUGE-L F1 over all pairs of the first `max_texts` texts (callers pass a seeded sample
/// when the set is large: the cost is quadratic).
pub fn pairwise_rouge_l(texts: &[&str], max_texts: usize) -> Option<f64> {
    let texts = &texts[..texts.len().min(max_texts)];
    let mut sum = 0.0;
    let mut pairs = 0usize;
    for i in 0..texts.len() {
        for j in i + 1..texts.len() {
            sum += rouge_l(texts[i], texts[j]);
            pairs += 1;
        }
    }
    (pairs > 0).then(|| sum / pairs as f64)
}

/// The paper's semantic diversity: mean over pairs of `1 - max(cos, 0)`, times 100.
pub fn semantic_diversity(embeddings: &[Vec<f32>]) -> Option<f64> {
    let norms: Vec<f64> = embeddings
        .iter()
        .map(|e| e.iter().map(|&x| f64::from(x) * f64::from(x)).sum::<f64>().sqrt())
        .collect();
    let mut sum = 0.0;
    let mut pairs = 0usize;
    for i in 0..embeddings.len() {
        for j in i + 1..embeddings.len() {
            let dot: f64 =
                embeddings[i].iter().zip(&embeddings[j]).map(|(&a, &b)| f64::from(a) * f64::from(b)).sum();
            let cos = dot / (norms[i] * norms[j]).max(1e-12);
            sum += 1.0 - cos.max(0.0);
            pairs += 1;
        }
    }
    (pairs > 0).then(|| 100.0 * sum / pairs as f64)
}

#[cfg(test)]
mod tests {
    #[test]
    fn semantic_diversity_is_one_minus_cosine() {
        assert_eq!(super::semantic_diversity(&[vec![1.0, 0.0], vec![2.0, 0.0]]), Some(0.0));
        assert_eq!(super::semantic_diversity(&[vec![1.0, 0.0], vec![0.0, 1.0]]), Some(100.0));
        // Opposite directions count as unrelated (cos clipped at 0), not as "more" diverse.
        assert_eq!(super::semantic_diversity(&[vec![1.0, 0.0], vec![-1.0, 0.0]]), Some(100.0));
        assert_eq!(super::semantic_diversity(&[vec![1.0]]), None);
    }

    use super::*;

    #[test]
    fn distinct_n_counts_repeats() {
        assert_eq!(distinct_n(&["a b c d"], 1), Some(1.0));
        assert_eq!(distinct_n(&["a a a a"], 1), Some(0.25));
        // "a b a b": bigrams ab, ba, ab -> 2 of 3
        assert!((distinct_n(&["a b a b"], 2).unwrap() - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(distinct_n(&["a"], 2), None);
    }

    #[test]
    fn rouge_l_is_lcs_f1() {
        assert_eq!(rouge_l("the cat sat", "the cat sat"), 1.0);
        assert_eq!(rouge_l("a b c", "x y z"), 0.0);
        // LCS("a b c d", "a c d e") = 3: p = r = 3/4
        assert!((rouge_l("a b c d", "a c d e") - 0.75).abs() < 1e-12);
        let same = pairwise_rouge_l(&["x y", "x y", "x y"], 10).unwrap();
        assert_eq!(same, 1.0);
        assert!(pairwise_rouge_l(&["x y z", "p q r", "x q w"], 10).unwrap() < 0.5);
    }
}
