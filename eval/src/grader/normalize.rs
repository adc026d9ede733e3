//! Text-level clean-up before parsing, in the spirit of math-verify's `NormalizationConfig`:
//! math delimiters, spacing commands, `\left`/`\right`, `\dfrac`, degrees, dollar signs,
//! trailing units and punctuation. Structure (`\frac`, braces, `\text{}` around words) is kept
//! for the parser.

use std::borrow::Cow;
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
    Regex::new(r"\\(?:text|textbf|textit|textnormal|textrm|mathrm|mathbf|mbox|mathit|operatorname)\s*\{")
        .unwrap()
});

static ARRAY_SPEC: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\\begin\{pmatrix\}\s*\{[lcr|\s]*\}").expect("valid regex"));
static BRACKETED_MATRIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?s)^\s*[\[(]\s*(\\begin\{pmatrix\}.*\\end\{pmatrix\})\s*[\])]\s*$").expect("valid regex")
});

static PERCENT_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(\d)\s*(?:[Pp]ercentage|[Pp]ercent|[Pp]ct)\b").expect("valid regex"));

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
    let base = normalize_base(raw);
    match units {
        Units::Strip => finish(&strip_text_units(&base)),
        Units::Keep => finish(&base),
    }
}

/// Which bytes occur in a text, and which occur right after a `\\`.
struct Present {
    any: [u64; 4],
    after_backslash: [u64; 4],
}

impl Present {
    fn of(s: &str) -> Self {
        let mut p = Self { any: [0; 4], after_backslash: [0; 4] };
        let bytes = s.as_bytes();
        for (i, &b) in bytes.iter().enumerate() {
            p.any[usize::from(b >> 6)] |= 1 << (b & 63);
            if b == b'\\'
                && let Some(&n) = bytes.get(i + 1)
            {
                p.after_backslash[usize::from(n >> 6)] |= 1 << (n & 63);
            }
        }
        p
    }

    /// False only where `other`'s text cannot occur in this one: one of its bytes is absent,
    /// or one it has right after a `\\` never follows one here. (A cheap test before a
    /// substring search: the search for `,\\! ` in every text with a comma was a visible cost.)
    fn may_hold(&self, other: &Present) -> bool {
        (0..4).all(|k| {
            other.any[k] & !self.any[k] == 0 && other.after_backslash[k] & !self.after_backslash[k] == 0
        })
    }
}

/// Both readings at the cost of one: (units stripped, units kept).
pub fn normalize_both(raw: &str) -> (String, String) {
    let base = normalize_base(raw);
    let stripped = strip_text_units(&base);
    let strip = finish(&stripped);
    let keep = if stripped == base { strip.clone() } else { finish(&base) };
    (strip, keep)
}

fn finish(s: &str) -> String {
    // (Most answers have no row break: no copy to make for them.)
    let s = if s.contains(ROW_BREAK) { Cow::Owned(s.replace(ROW_BREAK, "\\\\")) } else { Cow::Borrowed(s) };
    // A lone leading `x=`-style assignment is kept: the comparer decides how to use it.
    s.trim().trim_end_matches(['.', ';']).trim().to_owned()
}

/// Textual rewrites, in order: (pattern, replacement).
const REWRITE_PAIRS: &[(&str, &str)] = &[
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
    ("^{\\prime\\prime}", "''"),
    ("^{\\prime}", "'"),
    ("^\\prime", "'"),
    ("\\prime", "'"),
    ("\\%", "%"),
    // Currency signs, like `\$`, are not part of the value; nor is a unit's `²`.
    ("\\euro", ""),
    ("€", ""),
    ("£", ""),
    ("¥", ""),
    ("²", "^2"),
    ("³", "^3"),
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
];

/// `REWRITE_PAIRS` with the bytes each pattern needs (see `Present::may_hold`), computed once.
static REWRITES: LazyLock<Vec<(&str, &str, Present)>> =
    LazyLock::new(|| REWRITE_PAIRS.iter().map(|&(from, to)| (from, to, Present::of(from))).collect());

/// Everything but the units step.
fn normalize_base(raw: &str) -> String {
    // `\\` (a matrix row break) must not be read as `\` + the next character.
    // (Each replacement only where its pattern occurs: `str::replace` copies even when not.)
    let mut t = Cow::Borrowed(raw.trim());
    if t.contains("\\\\") {
        t = Cow::Owned(t.replace("\\\\", ROW_BREAK));
    }
    if t.contains("\\$") {
        t = Cow::Owned(t.replace("\\$", ""));
    }
    let mut s = strip_math_delimiters(&t);
    // A box around the whole answer (`$\\boxed{x}$` read from a "final answer is" phrase) is
    // decoration, as math-verify's normalization drops it.
    while let Some(inner) = s.strip_prefix("\\boxed{")
        && let Some(last) = inner.len().checked_sub(1)
        && matching_brace(inner, 0) == Some(last)
    {
        s = inner[..inner.len() - 1].trim().to_owned();
    }
    let mut present = Present::of(&s);
    for (from, to, needs) in REWRITES.iter() {
        // Most patterns cannot occur: test the bytes the pattern needs (every byte, and each
        // letter right after a `\\`) against the bytes present before searching for it.
        if present.may_hold(needs) && s.contains(from) {
            s = s.replace(from, to);
            present = Present::of(&s);
        }
    }
    if s.contains("\\begin{pmatrix}") {
        // `\left[\begin{array}{cc} .. \end{array}\right]` is a matrix like `pmatrix`.
        s = ARRAY_SPEC.replace_all(&s, "\\begin{pmatrix}").into_owned();
        if let Some(c) = BRACKETED_MATRIX.captures(&s) {
            s = c[1].to_owned();
        }
    }
    // `28 pct`, `28 percentage`: the percent sign, written out. (Every spelling holds `ct` or
    // `ercent`: the many texts with a `p`, `\\pi` or `pmatrix`, skip the regex.)
    if (s.contains("ercent") || s.contains("ct"))
        && let Cow::Owned(replaced) = PERCENT_WORD.replace_all(&s, "$1%")
    {
        s = replaced;
    }
    s
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
    // Trailing \text{...} whose content is a unit (or anything, after a number). Every
    // command `TEXT_CMD` knows starts so: a text without one skips the regex.
    let text_cmd = ["\\text", "\\math", "\\mbox", "\\operatorname"].iter().any(|c| s.contains(c));
    while text_cmd && let Some(m) = TEXT_CMD.find_iter(&out).last() {
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
        // (The cheap test first: both are pure.)
        && head.trim_end().ends_with(|c: char| c.is_ascii_digit() || c == '}')
        && is_unit(tail.trim_start_matches('\\'))
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
