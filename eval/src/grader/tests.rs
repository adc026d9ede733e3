//! Equivalence cases by category (the categories math-verify's and NeMo-Skills' suites cover).

use super::*;

#[track_caller]
fn eq(gold: &str, pred: &str) {
    let v = answers_equal(gold, pred);
    assert!(v.equal, "expected `{gold}` == `{pred}` ({})", v.reason);
}

#[track_caller]
fn ne(gold: &str, pred: &str) {
    let v = answers_equal(gold, pred);
    assert!(!v.equal, "expected `{gold}` != `{pred}` ({})", v.reason);
}

#[test]
fn numbers_exact_and_with_tolerance() {
    eq("5", "5.0");
    eq("0.5", "\\frac{1}{2}");
    eq("\\frac{1}{2}", ".5");
    eq("7425000", "7,425,000");
    eq("1000", "1{,}000");
    eq("11,\\! 111,\\! 111,\\! 100", "11,\\!111,\\!111,\\!100");
    eq("11,\\! 111,\\! 111,\\! 100", "11111111100");
    eq("-3", "- 3");
    eq("\\frac{\\sqrt{3}}{2}", "0.8660254037844386");
    eq("3.14159265", "\\pi");
    ne("3.14", "\\pi");
    ne("5", "6");
    ne("\\frac{1}{3}", "0.33");
    ne("\\frac{1}{3}", "0.333");
    eq("\\frac{1}{3}", "0.3333333333");
    eq("-\\frac{7}{11}", "-0.636363636364");
    ne("1000000000", "1000000001");
    ne("1000", "1001");
    eq("2^{1009}", "2^{1009}");
    ne("2^{1009}", "2^{1008}");
}

#[test]
fn fractions_roots_powers() {
    eq("\\frac{3}{4}", "3/4");
    eq("\\dfrac{3}{4}", "\\tfrac34");
    eq("\\frac{\\sqrt{2}}{2}", "\\frac{1}{\\sqrt{2}}");
    eq("2\\sqrt{2}", "\\sqrt{8}");
    eq("\\sqrt[3]{27}", "3");
    eq("918\\frac{1}{2}", "918.5");
    eq("8^{2/3}", "4");
    eq("x^{-1}", "\\frac{1}{x}");
    ne("\\sqrt{2}", "\\sqrt{3}");
}

#[test]
fn constants_and_complex_numbers() {
    eq("e^{i\\pi}", "-1");
    eq("2i", "i + i");
    eq("3+4i", "4i+3");
    ne("3+4i", "3-4i");
    eq("\\pi r^2", "r^2\\pi");
}

#[test]
fn symbolic_equality_at_random_points() {
    eq("(r+5)(r+5)", "(r+5)^2");
    eq("x^2-1", "(x-1)(x+1)");
    eq("\\frac{1}{2 n+2}", "\\frac{1}{2(n+1)}");
    eq("\\sin^2 x + \\cos^2 x", "1");
    eq("\\ln(e^x)", "x");
    eq("\\log_2 8", "3");
    ne("x^2", "x^3");
    // Variable names matter.
    ne("x+1", "y+1");
}

#[test]
fn percentages_units_degrees_and_dollars() {
    eq("10\\%", "0.1");
    eq("10\\%", "10");
    eq("10", "10\\%");
    eq("\\$10", "10");
    eq("90^\\circ", "90");
    eq("6.5", "6.5 \\mathrm{~m}");
    eq("45", "45 minutes");
    eq("1.6", "1.6 \\text{ cm}");
    // A unit glued on one side only is read as a factor on both.
    eq("\\frac{37}{4} m", "\\frac{37}{4}m");
    ne("\\frac{37}{4} m", "\\frac{37}{5}m");
    ne("10\\%", "0.2");
}

#[test]
fn tuples_sets_lists_intervals() {
    eq("(1,2)", "(1, 2)");
    ne("(1,2)", "(2,1)");
    eq("\\{1,2,3\\}", "\\{3,2,1\\}");
    eq("1,3,5", "5, 3, 1");
    eq("1,3,5", "\\{1,3,5\\}");
    eq("$(1,8,19), (2,7,13), (4,5,7)$", "(4,5,7),(1,8,19),(2,7,13)");
    ne("1,3,5", "1,3");
    eq("[1,2)", "[1, 2)");
    ne("[1,2)", "(1,2]");
    eq("(1,2)", "(1,2)");
    eq("(-\\infty, 0) \\cup (1, \\infty)", "(-\\infty,0)\\cup(1,+\\infty)");
    ne("(-\\infty, 0) \\cup (1, \\infty)", "(-\\infty,0)\\cup[1,\\infty)");
    eq("[0, \\infty)", "[0,\\infty]");
    eq("\\emptyset", "\\{\\}");
    eq("\\{5\\}", "5");
}

#[test]
fn plus_minus_floor_and_base_numerals() {
    eq("1 \\pm \\sqrt{19}", "1-\\sqrt{19}, 1+\\sqrt{19}");
    eq("\\{1\\pm\\sqrt{5},-2\\}", "\\{-2, 1+\\sqrt5, 1-\\sqrt5\\}");
    ne("1 \\pm \\sqrt{19}", "1+\\sqrt{19}");
    eq("\\lfloor\\frac{7}{2}\\rfloor", "3");
    eq("\\lceil n / 2\\rceil+1", "\\left\\lceil \\frac{n}{2} \\right\\rceil + 1");
    eq("52_8", "52_{8}");
    ne("52_8", "52");
    eq("\\omega_{d}^{2}", "\\omega_d^2");
}

#[test]
fn matrices() {
    eq("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}", "\\begin{bmatrix}1&2\\\\3&4\\end{bmatrix}");
    eq("\\begin{pmatrix} \\frac12 \\\\ 0 \\end{pmatrix}", "\\begin{pmatrix} 0.5 \\\\ 0 \\end{pmatrix}");
    ne(
        "\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}",
        "\\begin{pmatrix} 1 & 3 \\\\ 2 & 4 \\end{pmatrix}",
    );
}

#[test]
fn equations_and_inequalities() {
    eq("x=5", "5");
    eq("5", "x = 5");
    eq("y=2x+1", "2x+1-y=0");
    eq("y = 2x + 1", "2y = 4x + 2");
    ne("y=2x+1", "y=2x-1");
    eq("x > 3", "3 < x");
    eq("x \\geq 3", "3 \\le x");
    ne("x > 3", "x \\ge 3");
    ne("x > 3", "x < 3");
    eq("1 < x < 3", "3 > x > 1");
    // Gold inequality, predicted interval: accepted; the reverse is not (math-verify's asymmetry).
    eq("x > 3", "(3, \\infty)");
    eq("1 < x \\le 3", "(1, 3]");
    eq("x \\le 2", "(-\\infty, 2]");
    ne("x > 3", "[3, \\infty)");
    ne("(3, \\infty)", "x > 3");
}

#[test]
fn choices_and_text() {
    eq("\\text{(C)}", "C");
    eq("C", "(C)");
    ne("\\text{(C)}", "D");
    eq("\\text{Evelyn}", "Evelyn");
    eq("\\text{odd}", "Odd");
    ne("\\text{even}", "odd");
    // Spacing can matter: `\\pi r` is not the word "pir".
    ne("\\pi r", "pir");
    // Plain-text exponents read as people mean them.
    eq("x^{10}", "x^10");
}

#[test]
fn responses_are_extracted_before_grading() {
    assert!(grade("\\frac{1}{2}", "We compute ... so the answer is $\\boxed{0.5}$.").equal);
    assert!(grade("1.6", "Final Answer: The final answer is 1.6. I hope it is correct.").equal);
    assert!(grade("x=5", "x = 5").equal);
    assert!(!grade("3", "I could not solve it.").equal);
    let long = "Let me think step by step.\nFirst we note that 2+2 = 4.\nThen the result is 12.";
    let graded = grade_response("12", long, None, Extraction::MathVerify);
    assert_eq!(graded.extracted.as_deref(), Some("12"));
    assert!(graded.verdict.equal);
}

#[test]
fn garbage_gives_false_with_a_reason_never_a_panic() {
    for (g, p) in
        [("5", ""), ("", "5"), ("\\frac{", "}"), ("((((", "))))"), ("\\unknown{1}", "1"), ("5", "@#!")]
    {
        let v = answers_equal(g, p);
        assert!(!v.equal, "{g} vs {p}");
        assert!(!v.reason.is_empty());
    }
}

#[test]
fn huge_inputs_stay_bounded() {
    // An exponent tower is evaluated numerically (overflowing to a non-finite value), not exactly.
    ne("10^{10^{10}}", "10^{10^{10}}+1");
    let long_sum = (0..2000).map(|i| i.to_string()).collect::<Vec<_>>().join("+");
    let v = answers_equal(&long_sum, "1999000");
    assert!(v.equal, "{}", v.reason);
    assert!(!answers_equal("1000!", "1001!").equal);
    // Products of huge exact powers go numeric (and overflow) instead of growing without bound.
    let tower = vec!["2^{60000}"; 200].join("\\cdot ");
    assert!(!answers_equal(&tower, "1").equal);
    assert!(!answers_equal(&"9".repeat(5000), "1").equal);
    assert!(!answers_equal("\\binom{10^{300}}{4000}", "1").equal);
    assert!(!answers_equal(&"x+".repeat(20_000), "x").equal);
}
