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
    // A gold inequality is answered by its interval; a gold interval is not answered by an
    // inequality (math-verify's one-way rule, kept: the question asked for an interval).
    eq("x > 3", "(3, \\infty)");
    eq("1 < x \\le 3", "(1, 3]");
    eq("x \\le 2", "(-\\infty, 2]");
    ne("x > 3", "[3, \\infty)");
    ne("(3, \\infty)", "x > 3");
    ne("(3, \\infty)", "x \\geq 3");
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

/// Kinds the differential fuzzer (`fuzz::pairs` against math-verify) found, each at its cause.
mod fuzzer_found {
    use super::*;

    fn graded(gold: &str, response: &str) -> bool {
        grade_response(gold, response, None, Extraction::MathVerify).verdict.equal
    }

    #[test]
    fn relations_in_both_notations_and_approximations() {
        eq("x \\geq 5", "x >= 5");
        eq("x \\le 2", "x <= 2");
        eq("x \\neq 3", "x != 3");
        eq("x \\ne 3", "x\\neq3");
        ne("x \\geq 5", "x > 5");
        // `3!=6` is a factorial, not `3 != 6`.
        ne("x \\neq 3", "x!=3");
        assert!(graded("11", "So the final answer is $\\boxed{x \\approx 11}$."));
        assert!(graded("\\frac{1}{3}", "So $x=1/3\\approx0.33$."));
    }

    #[test]
    fn inequalities_in_both_notations_and_unions_in_any_order() {
        // A gold inequality, in either notation, is answered by its interval; a gold interval
        // is not answered by an inequality (math-verify's one-way rule, kept).
        eq("x \\geq 5", "[5, \\infty)");
        eq("x >= 5", "[5, \\infty)");
        eq("\\frac{1}{2} \\le x \\le 8", "[\\frac{1}{2}, 8]");
        eq("x \\geq 5", "x >= 5");
        eq("x \\neq 3", "x != 3");
        ne("[5, \\infty)", "x \\geq 5");
        ne("x \\geq 5", "(5, \\infty)");
        // A union is a set of numbers: any order.
        eq("(0,9) \\cup (9,36)", "(9, 36) \\cup (0, 9)");
        ne("(0,9) \\cup (9,36)", "(0, 9] \\cup (9, 36)");
    }

    #[test]
    fn numbers_as_people_write_them() {
        // A thousands group ends at a non-digit in a response.
        assert!(!graded("1234", "The count is 1 2345"));
        assert!(graded("2345", "The count is 1 2345"));
        assert!(graded("2300", "We need 2 300 ml."));
        eq("1525", "1 525");
        eq("0.554", "0,554");
        eq("0.15", "0,15");
        eq("-0.2", "-0,2");
        ne("0.15", "0,16");
        // A list gold keeps `11,13` a list.
        eq("11,13", "13,11");
        eq("900", "900€");
        eq("3", "3 m²");
        eq("34", "34\\textnormal{ miles}");
        eq("8 \\%", "8 pct");
        eq("28\\%", "28 percentage");
        assert!(graded("0.5", "The answer is 0.5€."));
        assert!(graded("-0.875", "So the total comes to -.875"));
        // A minus before a bare `\frac` is the answer's sign.
        assert!(!graded("\\frac{1}{2}", "-\\frac{1}{2}"));
        assert!(graded("-\\frac{10}{9}", "The value is -\\frac{10}{9}."));
    }

    #[test]
    fn matrices_written_as_arithmetic() {
        let gold = "\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}";
        eq(
            gold,
            "\\begin{pmatrix} -2 & -1 \\\\ -1 & -2 \\end{pmatrix} + \\begin{pmatrix} 1 & 1 \\\\ 1 & 1 \\end{pmatrix}",
        );
        eq(gold, "-\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}");
        eq(
            gold,
            "\\begin{pmatrix} 0 & 1 \\\\ 1 & 0 \\end{pmatrix} \\begin{pmatrix} 0 & -1 \\\\ -1 & 0 \\end{pmatrix}",
        );
        ne(
            gold,
            "\\begin{pmatrix} -2 & -1 \\\\ -1 & -2 \\end{pmatrix} + \\begin{pmatrix} 2 & 1 \\\\ 1 & 1 \\end{pmatrix}",
        );
    }

    #[test]
    fn boxes_joined_into_one_answer() {
        assert!(graded(
            "1,-1,7,-7",
            "The solutions are $\\boxed{1}$, $\\boxed{-1}$, $\\boxed{7}$ and $\\boxed{-7}$."
        ));
        assert!(graded("$(1,1), (3,2)$", "The solutions are $\\boxed{(1,1)}$ and $\\boxed{(3,2)}$."));
        assert!(!graded("1,-1,7,-7", "The solutions are $\\boxed{1}$ and $\\boxed{-1}$."));
        // A box after a phrase, with an answer the parser cannot read, is still that answer.
        let gold = "\\hbar \\omega(v+1 / 2)";
        assert!(graded(gold, "So the final answer is $\\boxed{\\hbar \\omega(v+1 / 2)}$."));
        eq("x^{\\prime}+\\frac{r}{V} x-r c=0", "x'+\\dfrac{r}{V} x-r c=0");
    }

    #[test]
    fn a_gold_that_is_a_whole_solution_is_read_for_its_answer() {
        let solution = "Cross-multiplying, $d = 15\\frac{975}{1000} = \\boxed{15\\frac{39}{40}},$ or $\\boxed{\\frac{639}{40}}$ inches.";
        assert!(graded(solution, "Putting it together,\n\\[\n15.975\n\\]"));
        assert!(!graded(solution, "So we get $15.9$."));
        let math = "At $t = 2,$ $(x,y) = (2^3 + 7, -3 \\cdot 2^2 - 6 \\cdot 2 - 5) = \\boxed{(15,-29)}.$";
        assert!(graded(math, "Putting it together,\n\\[\n(15,-29)\n\\]"));
        assert!(!graded(math, "So we get $(-29, 15)$."));
        // A bare gold the parser cannot read is compared as text, not replaced by a number in it.
        assert!(!graded("y^{\\prime}+r y-r x(t)=0", "$0$"));
    }
}
