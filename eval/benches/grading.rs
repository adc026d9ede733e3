//! Grading throughput on a mix of easy pairs (same text, plain numbers) and hard ones (symbolic
//! equality at random points, sets, intervals, matrices, equations, whole responses).
//! Run: `just bench` or `cargo bench -p eval --bench grading`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eval::grader::{Extraction, grade, grade_response};

const EASY: &[(&str, &str)] = &[
    ("5", "5"),
    ("\\frac{1}{2}", "0.5"),
    ("7425000", "7,425,000"),
    ("10\\%", "0.1"),
    ("\\text{(C)}", "C"),
    ("3", "4"),
    ("2\\sqrt{2}", "\\sqrt{8}"),
    ("90^\\circ", "90"),
];

const HARD: &[(&str, &str)] = &[
    ("(r+5)(r+5)", "(r+5)^2"),
    ("x^2-1", "(x-1)(x+1)"),
    ("\\frac{1}{2 n+2}", "\\frac{1}{2(n+1)}"),
    ("\\sin^2 x + \\cos^2 x", "1"),
    ("y=2x+1", "2x+1-y=0"),
    ("(-\\infty, 0) \\cup (1, \\infty)", "(-\\infty,0)\\cup(1,+\\infty)"),
    ("$(1,8,19), (2,7,13), (4,5,7)$", "(4,5,7),(1,8,19),(2,7,13)"),
    ("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}"),
    ("1 \\pm \\sqrt{19}", "1-\\sqrt{19}, 1+\\sqrt{19}"),
    ("\\frac{\\sqrt{3}}{2}", "Long reasoning... so the answer is $\\boxed{\\frac{1}{2}\\sqrt{3}}$."),
];

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("grade");
    for (name, pairs) in [("easy", EASY), ("hard", HARD)] {
        group.throughput(Throughput::Elements(pairs.len() as u64));
        group.bench_function(name, |b| {
            b.iter(|| {
                pairs
                    .iter()
                    .filter(|(g, p)| grade(std::hint::black_box(g), std::hint::black_box(p)).equal)
                    .count()
            })
        });
    }
    group.finish();
}

/// Whole responses from the differential fuzzer (`eval::grader::fuzz`): every rewrite kind and
/// response shape, about 40% wrong answers, graded as the evaluate stage grades.
fn fuzz(c: &mut Criterion) {
    let pairs = eval::grader::fuzz::pairs(1, 2000);
    let mut group = c.benchmark_group("fuzz");
    group.throughput(Throughput::Elements(pairs.len() as u64));
    group.bench_function("grade_response", |b| {
        b.iter(|| {
            pairs
                .iter()
                .filter(|p| {
                    let (g, r) = (std::hint::black_box(&p.gold), std::hint::black_box(&p.response));
                    grade_response(g, r, None, Extraction::MathVerify).verdict.equal
                })
                .count()
        })
    });
    group.finish();
}

criterion_group!(benches, bench, fuzz);
criterion_main!(benches);
