//! What a gold answer is, as far as rewriting it goes: a number (integer, decimal, fraction,
//! percentage), a choice letter, a matrix, intervals, a tuple, a set or list, or anything else
//! (which only gets rewrites that are safe on any LaTeX).

use num_bigint::BigInt;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Shape {
    Integer {
        neg: bool,
        digits: String,
    },
    Decimal {
        neg: bool,
        int: String,
        frac: String,
    },
    Fraction {
        neg: bool,
        num: BigInt,
        den: BigInt,
    },
    Percent {
        number: String,
    },
    Choice(char),
    Matrix(Vec<Vec<String>>),
    /// One interval or a union; `var` when the gold reads `x \in ...`.
    Intervals {
        var: Option<String>,
        parts: Vec<Interval>,
    },
    Tuple(Vec<String>),
    Set(Vec<String>),
    List(Vec<String>),
    Other,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Interval {
    pub lo: String,
    pub hi: String,
    pub lo_closed: bool,
    pub hi_closed: bool,
}

pub(super) fn classify(core: &str) -> Shape {
    let s = core.trim();
    if let Some(n) = integer(s) {
        return n;
    }
    if let Some(d) = decimal(s) {
        return d;
    }
    if let Some(f) = fraction(s) {
        return f;
    }
    if let Some(number) = s.strip_suffix("\\%").map(str::trim)
        && (integer(number).is_some() || decimal(number).is_some())
    {
        return Shape::Percent { number: number.to_owned() };
    }
    if let Some(c) = choice(s) {
        return Shape::Choice(c);
    }
    if let Some(body) = s.strip_prefix("\\begin{pmatrix}").and_then(|r| r.strip_suffix("\\end{pmatrix}")) {
        let rows: Vec<Vec<String>> = body
            .split("\\\\")
            .map(str::trim)
            .filter(|r| !r.is_empty())
            .map(|r| r.split('&').map(|c| c.trim().to_owned()).collect())
            .collect();
        let square = !rows.is_empty() && rows.iter().all(|r| r.len() == rows[0].len());
        return if square { Shape::Matrix(rows) } else { Shape::Other };
    }
    if let Some(iv) = intervals(s) {
        return iv;
    }
    if let Some(inner) = s.strip_prefix("\\{").and_then(|r| r.strip_suffix("\\}")) {
        let items = split_top(inner, ',');
        if items.len() >= 2 && !inner.contains("\\{") {
            return Shape::Set(items);
        }
        return Shape::Other;
    }
    if s.starts_with('(') && closing(s, 0) == Some(s.len() - 1) {
        let items = split_top(&s[1..s.len() - 1], ',');
        return if items.len() >= 2 { Shape::Tuple(items) } else { Shape::Other };
    }
    let items = split_top(s, ',');
    if items.len() >= 2 && items.iter().all(|i| !i.is_empty() && !i.contains('=')) {
        return Shape::List(items);
    }
    Shape::Other
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

fn integer(s: &str) -> Option<Shape> {
    // `11,\! 111,\! 100` and `1{,}000` are thousands separators, as `,` is.
    let cleaned = s.replace("\\!", "").replace("{,}", ",").replace(' ', "");
    let s = cleaned.as_str();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b.trim_start()),
        None => (false, s),
    };
    // `10,080`: a thousands-separated integer; the groups after the first have three digits.
    let groups: Vec<&str> = body.split(',').collect();
    let separated = groups.len() > 1
        && (1..=3).contains(&groups[0].len())
        && groups[1..].iter().all(|g| g.len() == 3)
        && !groups[0].starts_with('0');
    if !groups.iter().all(|g| all_digits(g)) || (groups.len() > 1 && !separated) {
        return None;
    }
    let digits: String = groups.concat();
    if digits.len() > 1 && digits.starts_with('0') {
        return None; // `007` is a code, not a number
    }
    Some(Shape::Integer { neg: neg && digits != "0", digits })
}

fn decimal(s: &str) -> Option<Shape> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let (int, frac) = body.split_once('.')?;
    if !all_digits(frac) || !(int.is_empty() || all_digits(int)) || (int.len() > 1 && int.starts_with('0')) {
        return None;
    }
    Some(Shape::Decimal { neg, int: int.to_owned(), frac: frac.to_owned() })
}

fn fraction(s: &str) -> Option<Shape> {
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b.trim_start()),
        None => (false, s),
    };
    let body = ["\\frac", "\\dfrac", "\\tfrac"].iter().find_map(|p| body.strip_prefix(p))?;
    let num = body.strip_prefix('{')?;
    let (num, rest) = num.split_once("}{")?;
    let den = rest.strip_suffix('}')?;
    if !all_digits(num) || !all_digits(den) || num.len() > 30 || den.len() > 30 {
        return None;
    }
    let (num, den): (BigInt, BigInt) = (num.parse().ok()?, den.parse().ok()?);
    if den <= BigInt::from(1) {
        return None;
    }
    Some(Shape::Fraction { neg, num, den })
}

fn choice(s: &str) -> Option<char> {
    let inner = s.strip_prefix("\\text{").and_then(|r| r.strip_suffix('}')).unwrap_or(s);
    let inner = inner.strip_prefix('(').and_then(|r| r.strip_suffix(')'))?;
    let mut chars = inner.chars();
    match (chars.next(), chars.next()) {
        (Some(c @ 'A'..='E'), None) => Some(c),
        _ => None,
    }
}

/// `[a, b)`, `(-\infty, 0]`, unions of them, `x \in [a, b]`; an open `(a, b)` with finite ends
/// stays a tuple (a point and an interval read alike).
fn intervals(s: &str) -> Option<Shape> {
    let (var, body) = match s.split_once("\\in") {
        Some((v, b)) if v.trim().len() == 1 && v.trim().chars().all(|c| c.is_ascii_alphabetic()) => {
            (Some(v.trim().to_owned()), b.trim())
        }
        _ => (None, s),
    };
    let mut parts = Vec::new();
    for part in body.split("\\cup") {
        let p = part.trim();
        let (lo_closed, hi_closed) = match (p.chars().next()?, p.chars().last()?) {
            ('[' | '(', ']' | ')') => (p.starts_with('['), p.ends_with(']')),
            _ => return None,
        };
        let items = split_top(&p[1..p.len() - 1], ',');
        if items.len() != 2 || items.iter().any(|i| i.is_empty() || i.contains('[') || i.contains('(')) {
            return None;
        }
        parts.push(Interval { lo: items[0].clone(), hi: items[1].clone(), lo_closed, hi_closed });
    }
    let bracketed =
        parts.iter().any(|p| p.lo_closed || p.hi_closed || p.lo.contains("infty") || p.hi.contains("infty"));
    (bracketed || parts.len() > 1 || var.is_some()).then_some(Shape::Intervals { var, parts })
}

/// Index of the bracket closing the one at byte `open` (`(`, `[` or `{`).
pub(super) fn closing(s: &str, open: usize) -> Option<usize> {
    let mut depth = 0i32;
    for (i, b) in s.bytes().enumerate().skip(open) {
        match b {
            b'(' | b'[' | b'{' => depth += 1,
            b')' | b']' | b'}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(i);
                }
            }
            _ => {}
        }
    }
    None
}

/// `s` split at top-level `sep`, parts trimmed.
pub(super) fn split_top(s: &str, sep: char) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0i32;
    let mut start = 0;
    for (i, c) in s.char_indices() {
        match c {
            '(' | '[' | '{' => depth += 1,
            ')' | ']' | '}' => depth -= 1,
            c if c == sep && depth == 0 => {
                parts.push(s[start..i].trim().to_owned());
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(s[start..].trim().to_owned());
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_of_real_golds() {
        assert_eq!(classify("10,080"), Shape::Integer { neg: false, digits: "10080".into() });
        assert!(matches!(classify(".35625"), Shape::Decimal { .. }));
        assert!(matches!(classify("-\\frac{10}{9}"), Shape::Fraction { neg: true, .. }));
        assert_eq!(classify("\\text{(C)}"), Shape::Choice('C'));
        assert!(matches!(classify("(0,9) \\cup (9,36)"), Shape::Intervals { parts, .. } if parts.len() == 2));
        assert!(matches!(classify("x \\in [-2,7]"), Shape::Intervals { var: Some(_), .. }));
        assert!(matches!(classify("(6,31,-1)"), Shape::Tuple(v) if v.len() == 3));
        assert!(matches!(classify("(-\\sqrt{3}, \\sqrt{3})"), Shape::Tuple(_)));
        assert!(matches!(classify("11,13"), Shape::List(_)));
        assert!(matches!(classify("8 \\%"), Shape::Percent { .. }));
        assert!(
            matches!(classify("\\begin{pmatrix} -1 & 0 \\\\ 0 & -1 \\end{pmatrix}"), Shape::Matrix(r) if r.len() == 2)
        );
        assert_eq!(classify("p - q"), Shape::Other);
    }
}
