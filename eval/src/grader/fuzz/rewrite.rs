//! Rewrites of a gold answer: ones that keep it the same answer (`expected: true`) and ones
//! that make it another (`expected: false`), chosen by the gold's shape. Every rewrite here
//! has a certain label; where a label would depend on the problem (percent words for a count),
//! the rewrite is not offered.

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, Zero};

use super::gold::Gold;
use super::rng::Rng;
use super::shape::{Interval, Shape};

/// How a rewritten answer may be set in a response.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Form {
    /// Plain text: may stand outside math or in it (`1,234`, `28 pct`, `-\frac{10}{9}`).
    Plain,
    /// Text only, never inside math: a decimal comma (`2,5`: in math, a pair), a currency
    /// sign or unit word written as text (`900€`, `12 dollars`, `3 m²`), as models write them
    /// in a sentence; in math they write `\$900` or `12 \text{ dollars}`.
    Text,
    /// LaTeX: in a box or math delimiters only.
    Latex,
    /// Several answers, each boxed or in its own math span, that together are the answer.
    Pieces(Vec<String>),
}

#[derive(Debug, Clone)]
pub(super) struct Variant {
    pub answer: String,
    pub expected: bool,
    pub name: &'static str,
    pub form: Form,
}

fn v(name: &'static str, expected: bool, form: Form, answer: impl Into<String>) -> Variant {
    Variant { answer: answer.into(), expected, name, form }
}

/// A rewrite of `gold`'s answer: a breaking one when asked and the shape has one.
pub(super) fn variant(rng: &mut Rng, gold: &Gold, breaking: bool) -> Option<Variant> {
    let mut all = Vec::new();
    by_shape(rng, gold, &mut all);
    generic(gold, &mut all);
    let wanted: Vec<&Variant> = all.iter().filter(|x| x.expected != breaking).collect();
    let pool: Vec<&Variant> =
        if wanted.is_empty() { all.iter().filter(|x| x.expected).collect() } else { wanted };
    // A rewrite kind first, then one of its variants: the many dressings of a number do not
    // crowd out the rarer kinds.
    // (`thousands-comma` and `thousands-thin` are one kind.)
    let kind = |name: &'static str| name.split('-').next().unwrap_or(name);
    let mut kinds: Vec<&'static str> = pool.iter().map(|x| kind(x.name)).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let chosen = *rng.pick(&kinds)?;
    let of_name: Vec<&&Variant> = pool.iter().filter(|x| kind(x.name) == chosen).collect();
    rng.pick(&of_name).map(|x| (**x).clone())
}

/// Rewrites that are safe on any LaTeX answer.
fn generic(gold: &Gold, out: &mut Vec<Variant>) {
    let core = gold.core.as_str();
    let form = if matches!(gold.shape, Shape::Integer { .. } | Shape::Decimal { .. }) {
        Form::Plain
    } else {
        Form::Latex
    };
    out.push(v("same", true, form, core));
    if core.contains("\\frac") && !core.contains("\\dfrac") {
        out.push(v("dfrac", true, Form::Latex, core.replace("\\frac", "\\dfrac")));
    } else if core.contains("\\dfrac") {
        out.push(v("tfrac", true, Form::Latex, core.replace("\\dfrac", "\\tfrac")));
    }
    let parens = core.matches('(').count();
    if parens > 0 && parens == core.matches(')').count() && !core.contains("\\left") && !core.contains("\\(")
    {
        out.push(v("left-right", true, Form::Latex, core.replace('(', "\\left(").replace(')', "\\right)")));
    }
    if !core.contains("\\text") && !matches!(gold.shape, Shape::Integer { .. } | Shape::Other) {
        let spaced = core.replace(", ", ",").replace(',', ", ").replace('+', " + ").replace('=', " = ");
        if spaced != core {
            out.push(v("spacing", true, Form::Latex, spaced));
        }
    }
}

fn by_shape(rng: &mut Rng, gold: &Gold, out: &mut Vec<Variant>) {
    match &gold.shape {
        Shape::Integer { neg, digits } => integer(rng, *neg, digits, gold.percent_problem, out),
        Shape::Decimal { neg, int, frac } => decimal(rng, *neg, int, frac, out),
        Shape::Fraction { neg, num, den } => fraction(*neg, num, den, out),
        Shape::Percent { number } => percent(rng, number, out),
        Shape::Choice(c) => choice(*c, out),
        Shape::Matrix(rows) => matrix(rows, out),
        Shape::Intervals { var, parts } => intervals(var.as_deref(), parts, out),
        Shape::Tuple(items) => tuple(rng, items, out),
        Shape::Set(items) | Shape::List(items) => {
            collection(rng, items, matches!(gold.shape, Shape::Set(_)), out)
        }
        Shape::Other => {}
    }
}

fn signed(neg: bool, s: &str) -> String {
    if neg { format!("-{s}") } else { s.to_owned() }
}

/// `digits` grouped by three with `sep`.
fn grouped(digits: &str, sep: &str) -> String {
    let mut out = String::new();
    let first = digits.len() % 3;
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (i + 3 - first).is_multiple_of(3) {
            out.push_str(sep);
        }
        out.push(ch);
    }
    out
}

/// `digits` with one digit among the first `within` changed (never to a leading zero).
fn change_digit(rng: &mut Rng, digits: &str, within: usize) -> String {
    let bytes = digits.as_bytes();
    let i = rng.below(within.min(bytes.len()).max(1));
    let old = bytes[i] - b'0';
    let lowest = if i == 0 && bytes.len() > 1 { 1 } else { 0 };
    let choices: Vec<u8> = (lowest..10).filter(|&d| d != old).collect();
    let new = choices[rng.below(choices.len())];
    let mut s = digits.to_owned().into_bytes();
    s[i] = b'0' + new;
    String::from_utf8(s).unwrap_or_else(|_| digits.to_owned())
}

const UNITS: &[(&str, &str, Form)] = &[
    ("unit", " \\text{ cm}", Form::Latex),
    ("unit", "\\textnormal{ miles}", Form::Latex),
    ("unit", " \\mathrm{~m}", Form::Latex),
    ("unit", " m²", Form::Text),
    ("unit", " \\text{ meters}", Form::Latex),
    ("currency", "€", Form::Text),
    ("currency", " dollars", Form::Text),
    ("currency", " \\text{ dollars}", Form::Latex),
];

fn number_dressings(value: &str, out: &mut Vec<Variant>) {
    for (name, unit, form) in UNITS {
        out.push(v(name, true, form.clone(), format!("{value}{unit}")));
    }
    if !value.starts_with('-') {
        out.push(v("currency", true, Form::Latex, format!("\\${value}")));
    }
    out.push(v("assign", true, Form::Latex, format!("x = {value}")));
    out.push(v("approx", true, Form::Latex, format!("x \\approx {value}")));
}

fn integer(rng: &mut Rng, neg: bool, digits: &str, percent_problem: bool, out: &mut Vec<Variant>) {
    let value = signed(neg, digits);
    if digits.len() >= 4 {
        for (name, sep, form) in [
            ("thousands-comma", ",", Form::Plain),
            ("thousands-brace", "{,}", Form::Latex),
            ("thousands-bang", ",\\! ", Form::Latex),
            ("thousands-thin", "\\,", Form::Latex),
            ("thousands-space", " ", Form::Plain),
        ] {
            out.push(v(name, true, form, signed(neg, &grouped(digits, sep))));
        }
        let wrong = change_digit(rng, digits, digits.len());
        out.push(v("digit+thousands", false, Form::Plain, signed(neg, &grouped(&wrong, ","))));
    }
    out.push(v("as-decimal", true, Form::Plain, format!("{value}.0")));
    number_dressings(&value, out);
    if percent_problem {
        for word in ["\\%", "%", " percent", " pct", " percentage"] {
            out.push(v("percent-word", true, Form::Plain, format!("{value}{word}")));
        }
    }
    out.push(v("digit", false, Form::Plain, signed(neg, &change_digit(rng, digits, digits.len()))));
    let n: BigInt = value.parse().unwrap_or_default();
    if !n.is_zero() {
        out.push(v("sign", false, Form::Plain, (-&n).to_string()));
        out.push(v("double", false, Form::Plain, (&n * BigInt::from(2)).to_string()));
    }
    out.push(v("off-by-one", false, Form::Plain, (n + BigInt::from(1)).to_string()));
}

fn decimal(rng: &mut Rng, neg: bool, int: &str, frac: &str, out: &mut Vec<Variant>) {
    let written = format!("{int}.{frac}");
    let value = signed(neg, &written);
    // `1,220` would read as one thousand two hundred and twenty: only unambiguous commas.
    if frac.len() != 3 || int == "0" || int.is_empty() {
        let int0 = if int.is_empty() { "0" } else { int };
        out.push(v("decimal-comma", true, Form::Text, signed(neg, &format!("{int0},{frac}"))));
        // LaTeX's own decimal comma, which no reader takes for a pair.
        out.push(v("decimal-comma", true, Form::Latex, signed(neg, &format!("{int0}{{,}}{frac}"))));
    }
    out.push(v("trailing-zero", true, Form::Plain, format!("{value}0")));
    if int == "0" {
        out.push(v("leading-zero", true, Form::Plain, signed(neg, &format!(".{frac}"))));
    } else if int.is_empty() {
        out.push(v("leading-zero", true, Form::Plain, signed(neg, &format!("0.{frac}"))));
    }
    if int.len() >= 4 {
        out.push(v(
            "thousands-comma",
            true,
            Form::Plain,
            signed(
                neg,
                &format!("{},{frac}", grouped(int, ",")).replacen(
                    &format!(",{frac}"),
                    &format!(".{frac}"),
                    1,
                ),
            ),
        ));
    }
    if frac.len() <= 12 {
        let scale = num_traits::pow(BigInt::from(10), frac.len());
        let p: BigInt = format!("{int}{frac}").parse().unwrap_or_default();
        let r = BigRational::new(p, scale);
        if !r.is_zero() && !r.is_integer() {
            let (p, q) = (r.numer(), r.denom());
            out.push(v("as-fraction", true, Form::Latex, signed(neg, &format!("\\frac{{{p}}}{{{q}}}"))));
        }
    }
    number_dressings(&value, out);
    // A leading significant digit changed: far outside any rounding tolerance.
    let all = format!("{int}{frac}");
    let lead = all.find(|c: char| c != '0').unwrap_or(0);
    if lead < all.len() {
        let changed = format!("{}{}", &all[..lead], change_digit(rng, &all[lead..], 1));
        let (i, f) = changed.split_at(int.len());
        out.push(v("digit", false, Form::Plain, signed(neg, &format!("{i}.{f}"))));
        if frac.len() != 3 || int == "0" || int.is_empty() {
            let i0 = if i.is_empty() { "0" } else { i };
            out.push(v("digit+decimal-comma", false, Form::Text, signed(neg, &format!("{i0},{f}"))));
        }
        out.push(v("sign", false, Form::Plain, signed(!neg, &written)));
    }
}

fn fraction(neg: bool, num: &BigInt, den: &BigInt, out: &mut Vec<Variant>) {
    let frac = |n: &BigInt, d: &BigInt| format!("\\frac{{{n}}}{{{d}}}");
    out.push(v("slash", true, Form::Plain, signed(neg, &format!("{num}/{den}"))));
    out.push(v("bare-frac", true, Form::Plain, signed(neg, &frac(num, den))));
    out.push(v("tfrac", true, Form::Latex, signed(neg, &format!("\\tfrac{{{num}}}{{{den}}}"))));
    let (n, d) = (num.to_string(), den.to_string());
    if n.len() == 1 && d.len() == 1 {
        out.push(v("frac-short", true, Form::Latex, signed(neg, &format!("\\frac{n}{d}"))));
    }
    if neg {
        out.push(v("sign-inside", true, Form::Latex, format!("\\frac{{-{num}}}{{{den}}}")));
    }
    if let Some(dec) = terminating(num, den) {
        out.push(v("as-decimal", true, Form::Plain, signed(neg, &dec)));
    }
    if !num.is_zero() {
        out.push(v("sign", false, Form::Plain, signed(!neg, &frac(num, den))));
        out.push(v("double", false, Form::Latex, signed(neg, &frac(&(num * 2), den))));
        out.push(v("numerator+1", false, Form::Latex, signed(neg, &frac(&(num + 1), den))));
        if num.abs() != den.abs() {
            out.push(v("reciprocal", false, Form::Latex, signed(neg, &frac(den, num))));
        }
    }
}

/// `num/den` as a decimal when it terminates within 6 places.
fn terminating(num: &BigInt, den: &BigInt) -> Option<String> {
    for places in 1..=6u32 {
        let scale = num_traits::pow(BigInt::from(10), places as usize);
        let scaled = num * &scale;
        if (&scaled % den).is_zero() {
            let q = scaled / den;
            let s = format!("{:0>width$}", q.to_string(), width = places as usize + 1);
            let (i, f) = s.split_at(s.len() - places as usize);
            return Some(format!("{i}.{f}"));
        }
    }
    None
}

fn percent(rng: &mut Rng, number: &str, out: &mut Vec<Variant>) {
    for word in ["%", " percent", " pct", " percentage", "\\%"] {
        out.push(v("percent-word", true, Form::Plain, format!("{number}{word}")));
    }
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    if number.chars().all(|c| c.is_ascii_digit()) {
        out.push(v("digit", false, Form::Plain, format!("{}\\%", change_digit(rng, &digits, digits.len()))));
    }
}

fn choice(c: char, out: &mut Vec<Variant>) {
    for (name, s) in [
        ("choice-text", format!("\\text{{{c}}}")),
        ("choice-paren", format!("({c})")),
        ("choice-bare", c.to_string()),
        ("choice-textbf", format!("\\textbf{{({c})}}")),
    ] {
        out.push(v(name, true, Form::Latex, s));
    }
    let other = if c == 'A' { 'B' } else { 'A' };
    out.push(v("choice-other", false, Form::Latex, format!("\\text{{({other})}}")));
}

fn pmatrix(rows: &[Vec<String>], env: &str) -> String {
    let body: Vec<String> = rows.iter().map(|r| r.join(" & ")).collect();
    format!("\\begin{{{env}}} {} \\end{{{env}}}", body.join(" \\\\ "))
}

fn matrix(rows: &[Vec<String>], out: &mut Vec<Variant>) {
    out.push(v("bmatrix", true, Form::Latex, pmatrix(rows, "bmatrix")));
    let cols = "c".repeat(rows[0].len());
    let body: Vec<String> = rows.iter().map(|r| r.join(" & ")).collect();
    out.push(v(
        "array",
        true,
        Form::Latex,
        format!("\\left[\\begin{{array}}{{{cols}}} {} \\end{{array}}\\right]", body.join(" \\\\ ")),
    ));
    let slashed: Vec<Vec<String>> = rows
        .iter()
        .map(|r| {
            r.iter()
                .map(|c| match c.trim_start_matches('-').split_once('/') {
                    Some((a, b)) => {
                        format!("{}\\frac{{{a}}}{{{b}}}", if c.starts_with('-') { "-" } else { "" })
                    }
                    None => c.clone(),
                })
                .collect()
        })
        .collect();
    if slashed != rows {
        out.push(v("matrix-frac", true, Form::Latex, pmatrix(&slashed, "pmatrix")));
    }
    let ints: Option<Vec<Vec<i64>>> = rows
        .iter()
        .map(|r| r.iter().map(|c| c.trim().parse::<i64>().ok().filter(|x| x.abs() < 1 << 40)).collect())
        .collect();
    let Some(ints) = ints else { return };
    let show = |m: &[Vec<i64>]| -> Vec<Vec<String>> {
        m.iter().map(|r| r.iter().map(i64::to_string).collect()).collect()
    };
    // The gold as a sum: (M - J) + J with J all ones.
    let less: Vec<Vec<i64>> = ints.iter().map(|r| r.iter().map(|x| x - 1).collect()).collect();
    let ones: Vec<Vec<i64>> = ints.iter().map(|r| r.iter().map(|_| 1).collect()).collect();
    out.push(v(
        "matrix-sum",
        true,
        Form::Latex,
        format!("{} + {}", pmatrix(&show(&less), "pmatrix"), pmatrix(&show(&ones), "pmatrix")),
    ));
    let mut wrong = ints.clone();
    wrong[0][0] += 1;
    out.push(v("matrix-entry", false, Form::Latex, pmatrix(&show(&wrong), "pmatrix")));
    out.push(v(
        "matrix-sum-wrong",
        false,
        Form::Latex,
        format!("{} + {}", pmatrix(&show(&less), "pmatrix"), pmatrix(&show(&wrong), "pmatrix")),
    ));
    let transposed: Vec<Vec<i64>> = (0..ints[0].len()).map(|j| ints.iter().map(|r| r[j]).collect()).collect();
    if transposed != ints {
        out.push(v("matrix-transpose", false, Form::Latex, pmatrix(&show(&transposed), "pmatrix")));
    }
}

fn show_interval(i: &Interval) -> String {
    format!(
        "{}{}, {}{}",
        if i.lo_closed { '[' } else { '(' },
        i.lo,
        i.hi,
        if i.hi_closed { ']' } else { ')' }
    )
}

fn union(parts: &[Interval]) -> String {
    parts.iter().map(show_interval).collect::<Vec<_>>().join(" \\cup ")
}

fn infinite(end: &str) -> bool {
    end.contains("infty")
}

fn intervals(var: Option<&str>, parts: &[Interval], out: &mut Vec<Variant>) {
    let x = var.unwrap_or("x");
    let plain = union(parts);
    match var {
        Some(_) => out.push(v("drop-in", true, Form::Latex, plain.clone())),
        None => out.push(v("x-in", true, Form::Latex, format!("x \\in {plain}"))),
    }
    let lr: Vec<String> = parts
        .iter()
        .map(|i| {
            format!(
                "\\left{} {}, {} \\right{}",
                if i.lo_closed { '[' } else { '(' },
                i.lo,
                i.hi,
                if i.hi_closed { ']' } else { ')' }
            )
        })
        .collect();
    out.push(v("left-right", true, Form::Latex, lr.join(" \\cup ")));
    if parts.len() == 2 {
        out.push(v("union-order", true, Form::Latex, union(&[parts[1].clone(), parts[0].clone()])));
    }
    if let [i] = parts {
        let (lo_inf, hi_inf) = (infinite(&i.lo), infinite(&i.hi));
        match (lo_inf, hi_inf) {
            (false, true) => {
                let wrong = if i.lo_closed { ">" } else { "\\geq" };
                out.push(v("inequality-strictness", false, Form::Latex, format!("{x} {wrong} {}", i.lo)));
            }
            (true, false) => {
                let wrong = if i.hi_closed { "<" } else { "\\leq" };
                out.push(v("inequality-strictness", false, Form::Latex, format!("{x} {wrong} {}", i.hi)));
            }
            // An inequality for an interval gold, right or not, is wrong by math-verify's
            // one-way rule, which we keep (see compare.rs); so a reader's verdict on a right
            // inequality is a convention, not certain, and only a wrong one is made.
            _ => {}
        }
    }
    // Flipping a finite end's bracket makes another set of numbers.
    if let Some(k) = parts.iter().position(|i| !infinite(&i.lo) || !infinite(&i.hi)) {
        let mut flipped = parts.to_vec();
        let i = &mut flipped[k];
        if !infinite(&i.hi) {
            i.hi_closed = !i.hi_closed;
        } else {
            i.lo_closed = !i.lo_closed;
        }
        out.push(v("interval-end", false, Form::Latex, union(&flipped)));
    }
    if let Some(k) = parts.iter().position(|i| i.hi.parse::<i64>().is_ok()) {
        let mut moved = parts.to_vec();
        let hi: i64 = moved[k].hi.parse().unwrap_or(0);
        moved[k].hi = (hi + 1).to_string();
        out.push(v("interval-bound", false, Form::Latex, union(&moved)));
    }
}

fn tuple(rng: &mut Rng, items: &[String], out: &mut Vec<Variant>) {
    out.push(v("left-right", true, Form::Latex, format!("\\left( {} \\right)", items.join(", "))));
    let distinct: Vec<(usize, usize)> = (0..items.len())
        .flat_map(|a| (a + 1..items.len()).map(move |b| (a, b)))
        .filter(|&(a, b)| differ(&items[a], &items[b]))
        .collect();
    if let Some(&(a, b)) = rng.pick(&distinct) {
        let mut swapped = items.to_vec();
        swapped.swap(a, b);
        out.push(v("tuple-swap", false, Form::Latex, format!("({})", swapped.join(", "))));
    }
    if let Some(changed) = change_an_integer(rng, items) {
        out.push(v("item-digit", false, Form::Latex, format!("({})", changed.join(", "))));
    }
}

/// Two items that are certainly different values: different integers, or texts that differ
/// beyond spacing when neither is a number.
fn differ(a: &str, b: &str) -> bool {
    let squash = |s: &str| s.chars().filter(|c| !c.is_whitespace()).collect::<String>();
    match (a.trim().parse::<i64>(), b.trim().parse::<i64>()) {
        (Ok(x), Ok(y)) => x != y,
        (Ok(_), Err(_)) | (Err(_), Ok(_)) => false,
        _ => squash(a) != squash(b) && squash(a).trim_start_matches('-') == squash(b).trim_start_matches('-'),
    }
}

fn change_an_integer(rng: &mut Rng, items: &[String]) -> Option<Vec<String>> {
    let ints: Vec<usize> = (0..items.len()).filter(|&i| items[i].parse::<i64>().is_ok()).collect();
    let &k = rng.pick(&ints)?;
    let mut changed = items.to_vec();
    let n: i64 = changed[k].parse().ok()?;
    changed[k] = (n + BigInt::from(1)).to_string();
    // Still a different collection when the items are read without order.
    (!items.contains(&changed[k])).then_some(changed)
}

fn collection(rng: &mut Rng, items: &[String], is_set: bool, out: &mut Vec<Variant>) {
    let mut reordered = items.to_vec();
    reordered.rotate_left(1);
    let join = |v: &[String]| v.join(", ");
    if is_set {
        out.push(v("set-reorder", true, Form::Latex, format!("\\{{{}\\}}", join(&reordered))));
        out.push(v("set-as-list", true, Form::Latex, join(items)));
    } else {
        out.push(v("list-reorder", true, Form::Latex, join(&reordered)));
        out.push(v("list-as-set", true, Form::Latex, format!("\\{{{}\\}}", join(items))));
    }
    out.push(v("pieces", true, Form::Pieces(items.to_vec()), join(items)));
    let mut dropped = items.to_vec();
    dropped.pop();
    if !items.iter().take(items.len() - 1).any(|i| *i == items[items.len() - 1]) {
        out.push(v("drop-item", false, Form::Latex, join(&dropped)));
    }
    if let Some(changed) = change_an_integer(rng, items) {
        out.push(v("item-digit", false, Form::Latex, join(&changed)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helpers() {
        assert_eq!(grouped("1234567", ","), "1,234,567");
        assert_eq!(grouped("123456", "\\,"), "123\\,456");
        assert_eq!(terminating(&3.into(), &8.into()).as_deref(), Some("0.375"));
        assert_eq!(terminating(&1.into(), &3.into()), None);
        assert_eq!(terminating(&10.into(), &4.into()).as_deref(), Some("2.5"));
    }
}
