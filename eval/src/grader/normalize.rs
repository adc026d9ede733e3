//! Text-level clean-up before parsing, in the spirit of math-verify's `NormalizationConfig`:
//! math delimiters, spacing commands, `\left`/`\right`, `\dfrac`, degrees, dollar signs,
//! trailing units and punctuation. Structure (`\frac`, braces, `\text{}` around words) is kept
//! for the parser.

use std::sync::LazyLock;

use regex::Regex;

/// Unit words and symbols dropped when they trail a number (Minerva and OlympiadBench answers).
const UNITS: &[&str] = &[
    "cm", "mm", "km", "m", "nm", "kg", "g", "mg", "s", "sec", "seconds", "second", "min", "minute",
    "minutes", "hour", "hours", "h", "hr", "days", "day", "years", "year", "yr", "ms", "K", "J", "eV", "keV",
    "MeV", "W", "N", "Pa", "atm", "Hz", "mol", "L", "mL", "V", "A", "C", "ohm", "degrees", "degree", "deg",
    "units", "unit", "dollars", "dollar", "cents", "cent", "inches", "inch", "feet", "foot", "ft", "miles",
    "mile", "meters", "meter", "mph", "km/h", "m/s", "cm^2", "cm^3", "m^2", "m^3", "sq", "square", "cubic",
    "pounds", "lb", "ergs", "erg", "Mpc", "pc", "AU", "ly", "arcsec", "rad", "radians", "percent",
];

static TEXT_CMD: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\\(?:text|textbf|textit|mathrm|mathbf|mbox|mathit|operatorname)\s*\{").unwrap()
});

static ARRAY_SPEC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\\begin\{pmatrix\}\s*\{[lcr|\s]*\}").expect("valid regex"));
static BRACKETED_MATRIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)^\s*[\[(]\s*(\\begin\{pmatrix\}.*\\end\{pmatrix\})\s*[\])]\s*$").expect("valid regex")
});

const ROW_BREAK: &str = "\u{1}";

/// Applies every clean-up; the result is what the parser reads.
pub fn normalize(raw: &str) -> String {
    normalize_with(raw, Units::Strip)
}

/// Whether trailing units are dropped. Grading tries both: `\frac{37}{4} m` loses its unit
/// but `\frac{37}{4}m` keeps `m` as a factor, and only reading both alike makes them equal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Units {
    Strip,
    Keep,
}

pub fn normalize_with(raw: &str, units: Units) -> String {
    // `\\` (a matrix row break) must not be read as `\` + the next character.
    let mut s = raw.trim().replace("\\\\", ROW_BREAK).replace("\\$", "");
    s = strip_math_delimiters(&s);
    for (from, to) in [
        ("\\dfrac", "\\frac"),
        ("\\tfrac", "\\frac"),
        ("\\dbinom", "\\binom"),
        ("\\tbinom", "\\binom"),
        ("\\displaystyle", ""),
        ("\\left", ""),
        ("\\right", ""),
        ("\\bigl", ""),
        ("\\bigr", ""),
        ("\\Bigl", ""),
        ("\\Bigr", ""),
        ("\\big", ""),
        ("\\Big", ""),
        // `11,\\! 111` is a thousands separator, not a list.
        (",\\! ", ","),
        (",\\!", ","),
        ("\\!", ""),
        ("{,}", ","),
        ("\\,", ""),
        ("\\;", ""),
        ("\\:", ""),
        ("\\quad", " "),
        ("\\qquad", " "),
        ("\\ ", " "),
        ("~", " "),
        ("\\%", "%"),
        ("\\circ", "°"),
        ("\\degree", "°"),
        ("^{°}", ""),
        ("^°", ""),
        ("°", ""),
        ("\\le ", "\\leq "),
        ("\\ge ", "\\geq "),
        ("\\neq", "≠"),
        ("\\ne ", "≠ "),
        ("\\leq", "≤"),
        ("\\geq", "≥"),
        ("\\leqslant", "≤"),
        ("\\geqslant", "≥"),
        ("\\lt", "<"),
        ("\\gt", ">"),
        ("\\dots", ""),
        ("\\ldots", ""),
        ("\\cdots", ""),
        ("\\bmatrix", "\\pmatrix"),
        ("{bmatrix}", "{pmatrix}"),
        ("{array}", "{pmatrix}"),
        ("{vmatrix}", "{pmatrix}"),
    ] {
        if s.contains(from) {
            s = s.replace(from, to);
        }
    }
    if s.contains("\\begin{pmatrix}") {
        // `\left[\begin{array}{cc} .. \end{array}\right]` is a matrix like `pmatrix`.
        s = ARRAY_SPEC.replace_all(&s, "\\begin{pmatrix}").into_owned();
        if let Some(c) = BRACKETED_MATRIX.captures(&s) {
            s = c[1].to_owned();
        }
    }
    if units == Units::Strip {
        s = strip_text_units(&s);
    }
    s = s.replace(ROW_BREAK, "\\\\");
    let s = s.trim().trim_end_matches(['.', ';']).trim();
    // A lone leading `x=`-style assignment is kept: the comparer decides how to use it.
    s.to_owned()
}

/// `$...$`, `$$...$$`, `\(...\)`, `\[...\]` around the whole answer, and stray `$`.
fn strip_math_delimiters(s: &str) -> String {
    let mut t = s.trim();
    loop {
        let before = t;
        for (open, close) in [("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")] {
            if let Some(inner) = t.strip_prefix(open).and_then(|r| r.strip_suffix(close)) {
                t = inner.trim();
            }
        }
        if t == before {
            break;
        }
    }
    // OlympiadBench joins answers as `$a$,$b$`.
    t.replace('$', "")
}

/// Drops `\text{ cm}`-style units and bare unit words after a number, e.g. `10 \text{ cm}`,
/// `6.5 \mathrm{~m}`, `45 minutes`. A `\text{...}` that is the whole answer is kept.
fn strip_text_units(s: &str) -> String {
    let mut out = s.to_owned();
    // Trailing \text{...} whose content is a unit (or anything, after a number).
    while let Some(m) = TEXT_CMD.find_iter(&out).last() {
        let Some(close) = matching_brace(&out, m.end()) else { break };
        if !out[close + 1..].trim().is_empty() {
            break;
        }
        let before = out[..m.start()].trim_end();
        let content = out[m.end()..close].trim();
        let numberish = before.ends_with(|c: char| c.is_ascii_digit() || c == '}' || c == ')');
        if before.is_empty() || !(numberish || is_unit(content)) {
            break;
        }
        out = before.to_owned();
    }
    // Bare trailing unit words: `45 minutes`, `3.2 km/h`.
    if let Some((head, tail)) = out.rsplit_once(' ')
        && is_unit(tail.trim_start_matches('\\'))
        && head.trim_end().ends_with(|c: char| c.is_ascii_digit() || c == '}')
    {
        out = head.trim_end().to_owned();
    }
    out
}

fn is_unit(word: &str) -> bool {
    let w = word.trim().trim_start_matches('~').trim_start_matches("\\mathrm").trim_matches(['{', '}', ' ']);
    !w.is_empty()
        && (UNITS.contains(&w) || w.split([' ', '/', '^', '~']).all(|p| p.is_empty() || UNITS.contains(&p)))
}

/// Index of the `}` matching the `{` just before `open_end`.
pub fn matching_brace(s: &str, open_end: usize) -> Option<usize> {
    let bytes = s.as_bytes();
    let mut depth = 1usize;
    let mut i = open_end;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'{' => depth += 1,
            b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cleans_delimiters_spacing_and_decoration() {
        assert_eq!(normalize("$\\dfrac{1}{2}$"), "\\frac{1}{2}");
        assert_eq!(normalize("\\left( 3, \\frac{\\pi}{2} \\right)"), "( 3, \\frac{\\pi}{2} )");
        assert_eq!(normalize("90^\\circ"), "90");
        assert_eq!(normalize("90^{\\circ}"), "90");
        assert_eq!(normalize("\\$10.50"), "10.50");
        assert_eq!(normalize("10\\%"), "10%");
        assert_eq!(normalize("1{,}000\\!"), "1,000");
        assert_eq!(normalize("x \\le 3"), "x ≤ 3");
        assert_eq!(normalize("5."), "5");
        assert_eq!(normalize("$69$,$84$"), "69,84");
    }

    #[test]
    fn strips_units_after_numbers_but_keeps_text_answers() {
        assert_eq!(normalize("10 \\text{ cm}"), "10");
        assert_eq!(normalize("6.5 \\mathrm{~m}"), "6.5");
        assert_eq!(normalize("45 minutes"), "45");
        assert_eq!(normalize("\\frac{600}{7} km/h"), "\\frac{600}{7}");
        assert_eq!(normalize("\\text{Evelyn}"), "\\text{Evelyn}");
        assert_eq!(normalize("\\text{(C)}"), "\\text{(C)}");
    }
}
