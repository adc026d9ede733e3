//! Properties of the grader over generated inputs: it never panics, whatever the text, and it is
//! reflexive (and format-insensitive) on numbers.

use eval::grader::{answers_equal, grade};
use proptest::prelude::*;

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn never_panics_on_latexish_text(
        gold in r"[0-9a-z\\{}()\[\]^_+\-*/=<>,.$% |&!éπ√−°≤]{0,40}",
        pred in r"[0-9a-z\\{}()\[\]^_+\-*/=<>,.$% |&!éπ√−°≤]{0,40}",
    ) {
        let v = answers_equal(&gold, &pred);
        prop_assert!(!v.reason.is_empty());
        let _ = grade(&gold, &pred);
    }

    #[test]
    fn never_panics_on_commands(parts in prop::collection::vec(
        prop::sample::select(vec![
            "\\frac", "\\sqrt", "{", "}", "[", "]", "(", ")", "\\{", "\\}", "\\left", "\\right", "^", "_",
            "\\pi", "\\infty", "x", "2", "10", "-", "+", ",", "\\cup", "\\pm", "\\text{", "\\boxed{", "$",
            "\\begin{pmatrix}", "\\end{pmatrix}", "&", "\\\\", "\\lfloor", "\\rfloor", "=", "\\le", "%", "!",
            "\\log_", "\\sin", "e", "i", ".", "0",
        ]), 0..30)) {
        let s: String = parts.concat();
        let _ = answers_equal(&s, &s);
        let _ = answers_equal(&s, "1");
        let _ = grade("1", &s);
    }

    #[test]
    fn integers_equal_themselves_in_any_format(n in -1_000_000_000i64..1_000_000_000) {
        let s = n.to_string();
        let (decimal, boxed, next) = (format!("{n}.0"), format!("so \\boxed{{{n}}}"), (n + 1).to_string());
        prop_assert!(answers_equal(&s, &s).equal);
        prop_assert!(answers_equal(&s, &decimal).equal);
        prop_assert!(grade(&s, &boxed).equal);
        prop_assert!(!answers_equal(&s, &next).equal);
    }

    #[test]
    fn fractions_equal_their_decimal_and_latex_forms(a in -500i64..500, b in 1i64..64) {
        let frac = format!("\\frac{{{a}}}{{{b}}}");
        let slash = format!("{a}/{b}");
        let scaled = format!("\\dfrac{{{}}}{{{}}}", 3 * a, 3 * b);
        let decimal = format!("{:.12}", a as f64 / b as f64);
        let other = format!("\\frac{{{}}}{{{b}}}", a + 1);
        prop_assert!(answers_equal(&frac, &frac).equal);
        prop_assert!(answers_equal(&frac, &slash).equal);
        prop_assert!(answers_equal(&frac, &scaled).equal);
        prop_assert!(answers_equal(&frac, &decimal).equal);
        prop_assert!(!answers_equal(&frac, &other).equal);
    }

    #[test]
    fn decimals_are_reflexive(x in -1e6f64..1e6) {
        let s = format!("{x}");
        prop_assert!(answers_equal(&s, &s).equal);
    }
}
