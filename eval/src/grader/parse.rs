//! A parser for the LaTeX and plain math that answers are written in, into the small tree of
//! `tree` (re-exported here): expressions (numbers kept exact, constants, variables, arithmetic,
//! roots, functions, factorials, percentages) and the shapes answers take around them (tuples,
//! sets, lists, intervals and their unions, matrices, equations and inequalities, text).
//!
//! It never panics: input it does not understand is an `Err` with a reason, and nesting is
//! bounded so no input can exhaust the stack.

use std::sync::LazyLock;

use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Zero};
use regex::Regex;

use super::matrix;
use super::normalize::{Units, normalize_with};
pub use super::tree::{Answer, Constant, Expr, Func, Interval, RelOp};

const MAX_DEPTH: usize = 64;

/// Answers longer than this are not parsed (they still compare as text): parsing is
/// near-linear, but nothing that long is an answer.
pub(crate) const MAX_ANSWER_CHARS: usize = 10_000;
/// Digits in one number literal; bigger literals are refused rather than slow.
const MAX_DIGITS: usize = 400;

/// Normalizes (dropping trailing units) and parses an answer.
pub fn parse_answer(raw: &str) -> Result<Answer, String> {
    parse_answer_with(raw, Units::Strip)
}

pub fn parse_answer_with(raw: &str, units: Units) -> Result<Answer, String> {
    if raw.len() > MAX_ANSWER_CHARS {
        return Err(format!("longer than {MAX_ANSWER_CHARS} characters"));
    }
    parse_prepared(&normalize_with(raw, units))
}

/// Parses text that has already been through `normalize`.
pub(crate) fn parse_prepared(s: &str) -> Result<Answer, String> {
    if s.len() > MAX_ANSWER_CHARS {
        return Err(format!("longer than {MAX_ANSWER_CHARS} characters"));
    }
    if s.is_empty() {
        return Err("empty answer".into());
    }
    parse_normalized(s, 0)
}

// A first group of `0` is no thousands grouping: `0,554` is a decimal comma.
static THOUSANDS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^-?[1-9]\d{0,2}(?:(?:,\d{3})+|(?: \d{3})+)(?:\.\d+)?$").unwrap());
static WHOLE_TEXT: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\\(?:text|textbf|textnormal|textrm|mathrm|mbox)\{([^{}]*)\}$").unwrap());
static WORDS: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z][A-Za-z ]*[A-Za-z]$").unwrap());
static IN_PREFIX: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[A-Za-z]\s*\\in\s*").unwrap());

fn parse_normalized(s: &str, depth: usize) -> Result<Answer, String> {
    if depth > MAX_DEPTH {
        return Err("nested too deeply".into());
    }
    let s = s.trim();
    // (Each regex only where its first character can match: parsing is on the hot path.)
    // (A thousands grouping starts with `-` or a digit 1-9: the answers with a space, most
    // of them, skip the regex.)
    if s.starts_with(['-', '1', '2', '3', '4', '5', '6', '7', '8', '9'])
        && s.contains([',', ' '])
        && THOUSANDS.is_match(s)
    {
        // `1,234` and `1 234` (a space groups thousands too; nobody writes 1·234 so).
        return parse_normalized(&s.replace([',', ' '], ""), depth + 1);
    }
    if let Some(c) = s.starts_with('\\').then(|| WHOLE_TEXT.captures(s)).flatten() {
        return Ok(Answer::Text(text_key(&c[1])));
    }
    if s.starts_with(|c: char| c.is_ascii_alphabetic())
        && WORDS.is_match(s)
        && s.split(' ').any(|w| w.len() >= 2 && func_by_name(w).is_none())
    {
        return Ok(Answer::Text(text_key(s)));
    }
    if s.contains("\\begin{pmatrix}")
        && let Some(m) = matrix::evaluate(
            s,
            &|c| parse_normalized(c, depth + 1),
            &|c| match parse_normalized(c, depth + 1)? {
                Answer::Expr(e) => Ok(e),
                _ => Err("a matrix's factor that is not a number".to_owned()),
            },
        )
    {
        return m;
    }
    if let Some(rest) = s.strip_prefix("\\begin{pmatrix}").and_then(|r| r.strip_suffix("\\end{pmatrix}")) {
        return parse_matrix(rest, depth);
    }
    let s = if s.contains("\\in") { IN_PREFIX.find(s).map_or(s, |m| &s[m.end()..]) } else { s };
    if s == "\\emptyset" || s == "\\varnothing" || s == "\\{\\}" {
        return Ok(Answer::Set(Vec::new()));
    }
    let toks = tokenize(s)?;
    Parser { toks: &toks, pos: 0, depth }.answer()
}

fn parse_matrix(body: &str, depth: usize) -> Result<Answer, String> {
    let rows = body
        .split("\\\\")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| r.split('&').map(|cell| parse_normalized(cell, depth + 1)).collect::<Result<Vec<_>, _>>())
        .collect::<Result<Vec<_>, _>>()?;
    if rows.is_empty() || rows.iter().any(|r| r.len() != rows[0].len()) {
        return Err("matrix rows differ in length".into());
    }
    Ok(Answer::Matrix(rows))
}

/// How text answers compare: case, spaces and a few decorations do not matter.
pub fn text_key(s: &str) -> String {
    s.chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '{' | '}' | '\\'))
        .flat_map(char::to_lowercase)
        .collect()
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(String),
    Letter(char),
    Cmd(String),
    LBrace,
    RBrace,
    LParen,
    RParen,
    LBracket,
    RBracket,
    LSet,
    RSet,
    Plus,
    Minus,
    Times,
    Slash,
    Caret,
    Underscore,
    /// `'` (also `^{\prime}`): a derivative's mark, part of the name it follows.
    Prime,
    Bang,
    Comma,
    Percent,
    Pipe,
    Rel(RelOp),
}

fn tokenize(s: &str) -> Result<Vec<Tok>, String> {
    let chars: Vec<char> = s.chars().collect();
    // (At most a token per character: one allocation, not a doubling series.)
    let mut toks = Vec::with_capacity(chars.len());
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        i += 1;
        let tok = match c {
            c if c.is_whitespace() => continue,
            '0'..='9' | '.' => {
                let start = i - 1;
                while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                if text == "." || text.matches('.').count() > 1 {
                    return Err(format!("malformed number `{text}`"));
                }
                if let Some((exponent, negative, next)) = scientific_exponent(&chars, i) {
                    // `4.5e33` is 4.5 x 10^33, not 4.5·e·33 (Minerva writes its golds so);
                    // `2e` and `e^{t}` keep Euler's e.
                    i = next;
                    toks.extend([Tok::Num(text), Tok::Times, Tok::Num("10".into()), Tok::Caret, Tok::LBrace]);
                    if negative {
                        toks.push(Tok::Minus);
                    }
                    toks.push(Tok::Num(exponent));
                    toks.push(Tok::RBrace);
                    continue;
                }
                Tok::Num(text)
            }
            'a'..='z' | 'A'..='Z' => Tok::Letter(c),
            '\\' => {
                let start = i;
                while i < chars.len() && chars[i].is_ascii_alphabetic() {
                    i += 1;
                }
                if i == start {
                    let next = chars.get(i).copied();
                    i += 1;
                    match next {
                        Some('{') => Tok::LSet,
                        Some('}') => Tok::RSet,
                        Some('|') => Tok::Pipe,
                        other => return Err(format!("unsupported escape `\\{}`", other.unwrap_or(' '))),
                    }
                } else {
                    let name: String = chars[start..i].iter().collect();
                    match name.as_str() {
                        "cdot" | "times" | "ast" => Tok::Times,
                        "div" => Tok::Slash,
                        "lbrace" => Tok::LSet,
                        "rbrace" => Tok::RSet,
                        "vert" | "lvert" | "rvert" | "mid" => Tok::Pipe,
                        "langle" => Tok::LParen,
                        "rangle" => Tok::RParen,
                        // Relations however written (`\le5` has no space for normalization
                        // to see); `x \approx 11` states the value, as `x = 11` does.
                        "le" | "leq" | "leqslant" => Tok::Rel(RelOp::Le),
                        "ge" | "geq" | "geqslant" => Tok::Rel(RelOp::Ge),
                        "ne" | "neq" => Tok::Rel(RelOp::Ne),
                        "lt" => Tok::Rel(RelOp::Lt),
                        "gt" => Tok::Rel(RelOp::Gt),
                        "approx" => Tok::Rel(RelOp::Eq),
                        _ => Tok::Cmd(name),
                    }
                }
            }
            // Plain-text relations: `x >= 5`, `x <= 2`, `x != 3`.
            // (`!=` only after a space: `3!=6` is a factorial.)
            '<' | '>' | '!'
                if chars.get(i) == Some(&'=') && (c != '!' || i >= 2 && chars[i - 2].is_whitespace()) =>
            {
                i += 1;
                Tok::Rel(match c {
                    '<' => RelOp::Le,
                    '>' => RelOp::Ge,
                    _ => RelOp::Ne,
                })
            }
            '{' => Tok::LBrace,
            '}' => Tok::RBrace,
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '[' => Tok::LBracket,
            ']' => Tok::RBracket,
            '+' => Tok::Plus,
            '-' | '−' | '–' => Tok::Minus,
            '*' | '×' | '·' => Tok::Times,
            '/' | '÷' => Tok::Slash,
            '^' => Tok::Caret,
            '_' => Tok::Underscore,
            '\'' | '′' => Tok::Prime,
            '!' => Tok::Bang,
            ',' => Tok::Comma,
            '%' => Tok::Percent,
            '|' => Tok::Pipe,
            '=' => Tok::Rel(RelOp::Eq),
            '<' => Tok::Rel(RelOp::Lt),
            '>' => Tok::Rel(RelOp::Gt),
            '≤' => Tok::Rel(RelOp::Le),
            '≥' => Tok::Rel(RelOp::Ge),
            '≠' => Tok::Rel(RelOp::Ne),
            'π' => Tok::Cmd("pi".into()),
            '∞' => Tok::Cmd("infty".into()),
            '√' => Tok::Cmd("sqrt".into()),
            other => return Err(format!("unexpected character `{other}`")),
        };
        toks.push(tok);
    }
    // Only these commands' arguments are split: without one, it would return `toks` as is.
    let splits = toks.iter().any(
        |t| matches!(t, Tok::Cmd(c) if matches!(c.as_str(), "frac" | "cfrac" | "binom" | "choose" | "sqrt")),
    );
    Ok(if splits { split_command_digits(toks) } else { toks })
}

/// The exponent of scientific notation right after a mantissa ending at `i` (`e33`, `E-5`,
/// `e+07`): its digits, its sign and where it ends. Not when a letter follows the digits
/// (`2e3x` stays a product) or no digit follows the `e` (`2e`, `2e^{x}`).
fn scientific_exponent(chars: &[char], i: usize) -> Option<(String, bool, usize)> {
    if !matches!(chars.get(i), Some('e' | 'E')) {
        return None;
    }
    let mut j = i + 1;
    let negative = matches!(chars.get(j), Some('-' | '−'));
    if negative || chars.get(j) == Some(&'+') {
        j += 1;
    }
    let start = j;
    while chars.get(j).is_some_and(char::is_ascii_digit) {
        j += 1;
    }
    if j == start || chars.get(j).is_some_and(|c| c.is_ascii_alphabetic()) {
        return None;
    }
    Some((chars[start..j].iter().collect(), negative, j))
}

/// `\frac12` means `\frac{1}{2}` and `\sqrt23` means `\sqrt{2}3`: a bare number as a command
/// argument contributes only its first digit.
fn split_command_digits(toks: Vec<Tok>) -> Vec<Tok> {
    let mut out = Vec::with_capacity(toks.len());
    let mut pending = 0usize;
    let mut depth_at_open: Option<usize> = None;
    let mut depth = 0usize;
    for tok in toks {
        match &tok {
            Tok::Cmd(c)
                if matches!(c.as_str(), "frac" | "cfrac" | "binom" | "choose") && depth_at_open.is_none() =>
            {
                pending = 2;
                out.push(tok);
                continue;
            }
            Tok::Cmd(c) if c == "sqrt" && depth_at_open.is_none() => {
                pending = 1;
                out.push(tok);
                continue;
            }
            _ => {}
        }
        if let Some(open) = depth_at_open {
            // Inside a braced (or bracketed) argument: wait for it to close.
            match tok {
                Tok::LBrace | Tok::LBracket => depth += 1,
                Tok::RBrace | Tok::RBracket => {
                    depth -= 1;
                    if depth == open {
                        depth_at_open = None;
                    }
                }
                _ => {}
            }
            out.push(tok);
            continue;
        }
        if pending == 0 {
            out.push(tok);
            continue;
        }
        match tok {
            Tok::LBrace => {
                depth_at_open = Some(depth);
                depth += 1;
                pending -= 1;
                out.push(tok);
            }
            // `\sqrt[3]{x}`: the index does not count as an argument.
            Tok::LBracket => {
                depth_at_open = Some(depth);
                depth += 1;
                out.push(tok);
            }
            Tok::Num(ref n) if n.len() > 1 && !n.contains('.') => {
                let (first, rest) = n.split_at(1);
                out.push(Tok::Num(first.to_owned()));
                pending -= 1;
                if pending > 0 {
                    // `\frac123` = `\frac{1}{2}3`.
                    let (second, tail) = rest.split_at(1);
                    out.push(Tok::Num(second.to_owned()));
                    pending -= 1;
                    if !tail.is_empty() {
                        out.push(Tok::Num(tail.to_owned()));
                    }
                } else {
                    out.push(Tok::Num(rest.to_owned()));
                }
            }
            other => {
                pending -= 1;
                out.push(other);
            }
        }
    }
    out
}

fn func_by_name(name: &str) -> Option<Func> {
    Some(match name {
        "sin" => Func::Sin,
        "cos" => Func::Cos,
        "tan" => Func::Tan,
        "cot" => Func::Cot,
        "sec" => Func::Sec,
        "csc" => Func::Csc,
        "arcsin" | "asin" => Func::Asin,
        "arccos" | "acos" => Func::Acos,
        "arctan" | "atan" => Func::Atan,
        "sinh" => Func::Sinh,
        "cosh" => Func::Cosh,
        "tanh" => Func::Tanh,
        "exp" => Func::Exp,
        "abs" => Func::Abs,
        _ => return None,
    })
}

const GREEK: &[&str] = &[
    "alpha",
    "beta",
    "gamma",
    "delta",
    "epsilon",
    "varepsilon",
    "zeta",
    "eta",
    "theta",
    "vartheta",
    "iota",
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "upsilon",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Xi",
    "Sigma",
    "Phi",
    "Psi",
    "Omega",
];

struct Parser<'t> {
    toks: &'t [Tok],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn deeper(&self) -> Result<usize, String> {
        if self.depth >= MAX_DEPTH { Err("nested too deeply".into()) } else { Ok(self.depth + 1) }
    }

    fn sub(&self, toks: &'_ [Tok]) -> Result<Answer, String> {
        let depth = self.deeper()?;
        Parser { toks, pos: 0, depth }.answer()
    }

    fn sub_expr(&self, toks: &'_ [Tok]) -> Result<Expr, String> {
        let depth = self.deeper()?;
        let mut p = Parser { toks, pos: 0, depth };
        let e = p.expr()?;
        if p.pos != toks.len() {
            return Err(format!("unexpected {:?}", toks.get(p.pos)));
        }
        Ok(e)
    }

    /// Splits `toks` at top-level tokens for which `is_sep` holds.
    fn split_top(toks: &[Tok], is_sep: impl Fn(&Tok) -> bool) -> Vec<&[Tok]> {
        let mut parts = Vec::new();
        let mut depth = 0i32;
        let mut start = 0;
        for (i, t) in toks.iter().enumerate() {
            match t {
                Tok::LBrace | Tok::LParen | Tok::LBracket | Tok::LSet => depth += 1,
                Tok::RBrace | Tok::RParen | Tok::RBracket | Tok::RSet => depth -= 1,
                t if depth == 0 && is_sep(t) => {
                    parts.push(&toks[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        parts.push(&toks[start..]);
        parts
    }

    /// `split_top`, or nothing (no part at all) where no token is a separator.
    fn split_if_any(toks: &[Tok], is_sep: impl Fn(&Tok) -> bool) -> Vec<&[Tok]> {
        if toks.iter().any(&is_sep) { Self::split_top(toks, is_sep) } else { Vec::new() }
    }

    /// Index of the bracket closing the one at `open` (any of `( [ { \{`).
    fn closing(toks: &[Tok], open: usize) -> Option<usize> {
        let mut depth = 0i32;
        for (i, t) in toks.iter().enumerate().skip(open) {
            match t {
                Tok::LBrace | Tok::LParen | Tok::LBracket | Tok::LSet => depth += 1,
                Tok::RBrace | Tok::RParen | Tok::RBracket | Tok::RSet => {
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

    /// The elements of a list or set; an element `a \pm b` contributes both of its values.
    fn items(&self, parts: &[&[Tok]]) -> Result<Vec<Answer>, String> {
        let mut out = Vec::new();
        for p in parts {
            let pm = Self::split_if_any(p, |t| is_cmd(t, "pm")).len() == 2;
            match self.sub(p)? {
                Answer::List(v) if pm => out.extend(v),
                other => out.push(other),
            }
        }
        Ok(out)
    }

    fn answer(&mut self) -> Result<Answer, String> {
        let toks = self.toks;
        if toks.is_empty() {
            return Err("empty answer".into());
        }
        // Each split only where its separator occurs at all (without one the split is the
        // whole, one part, which no test below takes): most answers have none, and each
        // split allocates.
        let parts = Self::split_if_any(toks, |t| *t == Tok::Comma);
        if parts.len() > 1 {
            return self.items(&parts).map(Answer::List);
        }
        let pm = Self::split_if_any(toks, |t| is_cmd(t, "pm"));
        if pm.len() == 2 {
            // `a \pm b` is the two answers a + b and a - b.
            let (a, b) = (self.sub_expr(pm[0])?, self.sub_expr(pm[1])?);
            return Ok(Answer::List(vec![
                Answer::Expr(Expr::Add(vec![a.clone(), b.clone()])),
                Answer::Expr(Expr::Add(vec![a, Expr::Neg(Box::new(b))])),
            ]));
        }
        let unions = Self::split_if_any(toks, |t| is_cmd(t, "cup"));
        if unions.len() > 1 {
            let mut all = Vec::new();
            for part in unions {
                match self.sub(part)? {
                    Answer::Intervals(v) => all.extend(v),
                    Answer::Tuple(v) if v.len() == 2 => all.push(open_interval(v)?),
                    other => return Err(format!("`\\cup` of a non-interval: {other:?}")),
                }
            }
            return Ok(Answer::Intervals(all));
        }
        let first = &toks[0];
        if matches!(first, Tok::LParen | Tok::LBracket | Tok::LSet)
            && Self::closing(toks, 0) == Some(toks.len() - 1)
        {
            let inner = &toks[1..toks.len() - 1];
            let items = Self::split_top(inner, |t| *t == Tok::Comma);
            let last = &toks[toks.len() - 1];
            if *first == Tok::LSet {
                if inner.is_empty() {
                    return Ok(Answer::Set(Vec::new()));
                }
                return self.items(&items).map(Answer::Set);
            }
            if items.len() > 1 {
                let is_interval = items.len() == 2 && (*first == Tok::LBracket || *last == Tok::RBracket);
                if is_interval {
                    return Ok(Answer::Intervals(vec![Interval {
                        lo: self.sub_expr(items[0])?,
                        hi: self.sub_expr(items[1])?,
                        lo_closed: *first == Tok::LBracket,
                        hi_closed: *last == Tok::RBracket,
                    }]));
                }
                return items.iter().map(|p| self.sub(p)).collect::<Result<Vec<_>, _>>().map(Answer::Tuple);
            }
        }
        let sides = Self::split_if_any(toks, |t| matches!(t, Tok::Rel(_)));
        if sides.len() > 1 {
            let ops = toks
                .iter()
                .scan(0i32, |depth, t| {
                    match t {
                        Tok::LBrace | Tok::LParen | Tok::LBracket | Tok::LSet => *depth += 1,
                        Tok::RBrace | Tok::RParen | Tok::RBracket | Tok::RSet => *depth -= 1,
                        _ => {}
                    }
                    Some((*depth, t))
                })
                .filter_map(|(d, t)| match t {
                    Tok::Rel(op) if d == 0 => Some(*op),
                    _ => None,
                })
                .collect();
            let sides = sides.iter().map(|s| self.sub_expr(s)).collect::<Result<Vec<_>, _>>()?;
            return Ok(Answer::Relation { sides, ops });
        }
        self.sub_expr(toks).map(Answer::Expr)
    }

    fn expr(&mut self) -> Result<Expr, String> {
        let first = self.term()?;
        // A single term is itself (as the loop below would give): no Vec to allocate.
        if !matches!(self.peek(), Some(Tok::Plus | Tok::Minus)) {
            return Ok(first);
        }
        let mut terms = vec![first];
        loop {
            match self.peek() {
                Some(Tok::Plus) => {
                    self.pos += 1;
                    terms.push(self.term()?);
                }
                Some(Tok::Minus) => {
                    self.pos += 1;
                    terms.push(Expr::Neg(Box::new(self.term()?)));
                }
                _ => break,
            }
        }
        Ok(if terms.len() == 1 { terms.pop().expect("one term") } else { Expr::Add(terms) })
    }

    fn starts_primary(t: &Tok) -> bool {
        match t {
            Tok::Num(_) | Tok::Letter(_) | Tok::LParen | Tok::LBrace | Tok::LBracket => true,
            Tok::Cmd(c) => !matches!(c.as_str(), "cup" | "cap" | "in" | "pm" | "mp"),
            _ => false,
        }
    }

    fn term(&mut self) -> Result<Expr, String> {
        let first = self.unary()?;
        // A single factor is itself (`flatten_mul` of one factor): no Vec to allocate.
        if !matches!(self.peek(), Some(t) if matches!(t, Tok::Times | Tok::Slash) || Self::starts_primary(t))
        {
            return Ok(first);
        }
        let mut factors = vec![first];
        loop {
            match self.peek() {
                Some(Tok::Times) => {
                    self.pos += 1;
                    factors.push(self.unary()?);
                }
                Some(Tok::Slash) => {
                    self.pos += 1;
                    let num = Expr::Mul(std::mem::take(&mut factors));
                    let den = self.unary()?;
                    factors.push(Expr::Div(Box::new(flatten_mul(num)), Box::new(den)));
                }
                Some(t) if Self::starts_primary(t) => {
                    let mixed = matches!(factors.last(), Some(Expr::Num(n)) if n.is_integer())
                        && is_cmd(t, "frac")
                        && factors.len() == 1;
                    let next = self.power()?;
                    if mixed
                        && matches!(&next, Expr::Div(a, b) if matches!(**a, Expr::Num(_)) && matches!(**b, Expr::Num(_)))
                    {
                        // `918\frac12` is a mixed number: 918 + 1/2.
                        let whole = factors.pop().expect("one factor");
                        factors.push(Expr::Add(vec![whole, next]));
                    } else {
                        factors.push(next);
                    }
                }
                _ => break,
            }
        }
        Ok(flatten_mul(Expr::Mul(factors)))
    }

    fn unary(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(Tok::Minus) => {
                self.pos += 1;
                let depth = self.deeper()?;
                let saved = self.depth;
                self.depth = depth;
                let inner = self.unary();
                self.depth = saved;
                Ok(Expr::Neg(Box::new(inner?)))
            }
            Some(Tok::Plus) => {
                self.pos += 1;
                self.unary()
            }
            _ => self.power(),
        }
    }

    fn power(&mut self) -> Result<Expr, String> {
        let base = self.postfix()?;
        if self.peek() == Some(&Tok::Caret) {
            self.pos += 1;
            let exp = self.script_arg()?;
            return Ok(Expr::Pow(Box::new(base), Box::new(exp)));
        }
        Ok(base)
    }

    /// The argument of `^`: a braced group, or one signed primary (`x^2`, `x^-1`).
    fn script_arg(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(Tok::LBrace) => self.group(),
            Some(Tok::Minus) => {
                self.pos += 1;
                Ok(Expr::Neg(Box::new(self.single()?)))
            }
            _ => self.single(),
        }
    }

    fn postfix(&mut self) -> Result<Expr, String> {
        let mut e = self.primary()?;
        loop {
            match self.peek() {
                Some(Tok::Bang) => {
                    self.pos += 1;
                    e = Expr::Factorial(Box::new(e));
                }
                Some(Tok::Percent) => {
                    self.pos += 1;
                    e = Expr::Percent(Box::new(e));
                }
                _ => return Ok(e),
            }
        }
    }

    /// `{ expr }`.
    fn group(&mut self) -> Result<Expr, String> {
        let open = self.pos;
        let close = Self::closing(self.toks, open).ok_or("unbalanced braces")?;
        if self.toks[open] != Tok::LBrace {
            return Err("expected `{`".into());
        }
        let e = self.sub_expr(&self.toks[open + 1..close])?;
        self.pos = close + 1;
        Ok(e)
    }

    /// One argument of a command: `{...}`, or a single digit or letter (`\frac12`, `\sqrt x`;
    /// the tokenizer has already split such digits).
    fn single(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(Tok::LBrace) => self.group(),
            _ => self.primary(),
        }
    }

    fn primary(&mut self) -> Result<Expr, String> {
        // By reference into the token slice: cloning a token copies its text.
        let toks = self.toks;
        let tok = toks.get(self.pos).ok_or("unexpected end")?;
        self.pos += 1;
        match tok {
            // `52_8` (a numeral in base 8) is compared as a name, digit for digit.
            Tok::Num(n) if self.peek() == Some(&Tok::Underscore) => {
                self.pos += 1;
                Ok(Expr::Var(format!("{n}_{}", self.subscript()?)))
            }
            Tok::Num(n) if n.contains('.') => parse_decimal(n).map(Expr::Decimal),
            Tok::Num(n) => parse_decimal(n).map(Expr::Num),
            &Tok::Letter(c) => {
                let mut name = c.to_string();
                if self.peek() == Some(&Tok::Prime) {
                    // `y'` is a name of its own (`y' + ry = 0`), not y times something.
                    while self.peek() == Some(&Tok::Prime) {
                        self.pos += 1;
                        name.push('\'');
                    }
                    return Ok(Expr::Var(name));
                }
                if self.peek() == Some(&Tok::Underscore) {
                    self.pos += 1;
                    name.push('_');
                    name.push_str(&self.subscript()?);
                    return Ok(Expr::Var(name));
                }
                Ok(match c {
                    'e' => Expr::Const(Constant::E),
                    'i' => Expr::Const(Constant::I),
                    _ => Expr::Var(name),
                })
            }
            Tok::LParen | Tok::LBracket | Tok::LBrace => {
                let open = self.pos - 1;
                let close = Self::closing(self.toks, open).ok_or("unbalanced brackets")?;
                let e = self.sub_expr(&self.toks[open + 1..close])?;
                self.pos = close + 1;
                Ok(e)
            }
            Tok::Pipe => {
                let start = self.pos;
                let end =
                    self.toks[start..].iter().position(|t| *t == Tok::Pipe).ok_or("unclosed `|`")? + start;
                let e = self.sub_expr(&self.toks[start..end])?;
                self.pos = end + 1;
                Ok(Expr::Func(Func::Abs, Box::new(e)))
            }
            Tok::Cmd(name) => self.command(name),
            other => Err(format!("unexpected {other:?}")),
        }
    }

    fn subscript(&mut self) -> Result<String, String> {
        match self.next() {
            Some(Tok::LBrace) => {
                let open = self.pos - 1;
                let close = Self::closing(self.toks, open).ok_or("unbalanced braces")?;
                let s = self.toks[open + 1..close].iter().map(tok_text).collect::<String>();
                self.pos = close + 1;
                Ok(s)
            }
            Some(t) => Ok(tok_text(&t)),
            None => Err("missing subscript".into()),
        }
    }

    fn command(&mut self, name: &str) -> Result<Expr, String> {
        match name {
            "frac" | "cfrac" => {
                let num = self.single()?;
                let den = self.single()?;
                Ok(Expr::Div(Box::new(num), Box::new(den)))
            }
            "sqrt" => {
                let index = if self.peek() == Some(&Tok::LBracket) {
                    let open = self.pos;
                    let close = Self::closing(self.toks, open).ok_or("unbalanced `[`")?;
                    let e = self.sub_expr(&self.toks[open + 1..close])?;
                    self.pos = close + 1;
                    e
                } else {
                    Expr::Num(BigRational::from_integer(2.into()))
                };
                let radicand = self.single()?;
                Ok(Expr::Root(Box::new(index), Box::new(radicand)))
            }
            "binom" | "choose" => {
                let n = self.single()?;
                let k = self.single()?;
                Ok(Expr::Binom(Box::new(n), Box::new(k)))
            }
            "pi" => Ok(Expr::Const(Constant::Pi)),
            "infty" | "infinity" | "inf" => Ok(Expr::Const(Constant::Infinity)),
            "text" | "textbf" | "textnormal" | "textrm" | "mathrm" | "mathbf" | "mbox" | "mathit"
            | "operatorname" => {
                let open = self.pos;
                if self.toks.get(open) != Some(&Tok::LBrace) {
                    return Err(format!("`\\{name}` without braces"));
                }
                let close = Self::closing(self.toks, open).ok_or("unbalanced braces")?;
                let inner = &self.toks[open + 1..close];
                self.pos = close + 1;
                let word: String = inner.iter().map(tok_text).collect();
                if let Some(f) = func_by_name(&word) {
                    return self.function(Some(f));
                }
                if word == "e" {
                    return Ok(Expr::Const(Constant::E));
                }
                self.sub_expr(inner)
            }
            "ln" | "log" | "lg" => {
                let base = if self.peek() == Some(&Tok::Underscore) {
                    self.pos += 1;
                    Some(Box::new(self.script_arg()?))
                } else if name == "lg" {
                    Some(Box::new(Expr::Num(BigRational::from_integer(10.into()))))
                } else {
                    None
                };
                let arg = self.func_arg()?;
                Ok(Expr::Log(base, Box::new(arg)))
            }
            g if GREEK.contains(&g) => {
                let mut name = g.to_owned();
                if self.peek() == Some(&Tok::Underscore) {
                    self.pos += 1;
                    name.push('_');
                    name.push_str(&self.subscript()?);
                }
                Ok(Expr::Var(name))
            }
            "lfloor" | "lceil" => {
                let close = if name == "lfloor" { "rfloor" } else { "rceil" };
                let start = self.pos;
                let end = self.toks[start..]
                    .iter()
                    .position(|t| *t == Tok::Cmd(close.into()))
                    .ok_or(format!("`\\{name}` without `\\{close}`"))?
                    + start;
                let e = self.sub_expr(&self.toks[start..end])?;
                self.pos = end + 1;
                Ok(Expr::Func(if name == "lfloor" { Func::Floor } else { Func::Ceil }, Box::new(e)))
            }
            f => match func_by_name(f) {
                Some(func) => self.function(Some(func)),
                None => Err(format!("unsupported command `\\{f}`")),
            },
        }
    }

    /// A function call, `\sin x`, `\sin(x)`, `\sin^2 x` (= `(\sin x)^2`).
    fn function(&mut self, f: Option<Func>) -> Result<Expr, String> {
        let f = f.ok_or("unknown function")?;
        let power = if self.peek() == Some(&Tok::Caret) {
            self.pos += 1;
            Some(self.script_arg()?)
        } else {
            None
        };
        let arg = self.func_arg()?;
        let call = Expr::Func(f, Box::new(arg));
        Ok(match power {
            // `\sin^{-1}` is the inverse, not a reciprocal.
            Some(Expr::Neg(ref one)) if **one == Expr::Num(BigRational::one()) => {
                let Expr::Func(_, arg) = call else { unreachable!() };
                let inverse = match f {
                    Func::Sin => Func::Asin,
                    Func::Cos => Func::Acos,
                    Func::Tan => Func::Atan,
                    _ => return Err("inverse of this function is not supported".into()),
                };
                Expr::Func(inverse, arg)
            }
            Some(p) => Expr::Pow(Box::new(call), Box::new(p)),
            None => call,
        })
    }

    /// `(x)`, `{x}`, or the next power-level factor (`\sin 2x` reads `2x`, as people mean it).
    fn func_arg(&mut self) -> Result<Expr, String> {
        match self.peek() {
            Some(Tok::LParen) | Some(Tok::LBrace) => self.power(),
            _ => {
                let mut factors = vec![self.power()?];
                while let Some(Tok::Letter(_)) = self.peek() {
                    factors.push(self.power()?);
                }
                Ok(flatten_mul(Expr::Mul(factors)))
            }
        }
    }
}

fn open_interval(v: Vec<Answer>) -> Result<Interval, String> {
    let mut it = v.into_iter();
    match (it.next(), it.next()) {
        (Some(Answer::Expr(lo)), Some(Answer::Expr(hi))) => {
            Ok(Interval { lo, hi, lo_closed: false, hi_closed: false })
        }
        _ => Err("interval ends must be expressions".into()),
    }
}

/// `t` is the command `\name` (compared without building a token).
fn is_cmd(t: &Tok, name: &str) -> bool {
    matches!(t, Tok::Cmd(c) if c == name)
}

fn tok_text(t: &Tok) -> String {
    match t {
        Tok::Num(n) => n.clone(),
        Tok::Letter(c) => c.to_string(),
        Tok::Cmd(c) => c.clone(),
        Tok::Comma => ",".into(),
        Tok::Plus => "+".into(),
        Tok::Minus => "-".into(),
        _ => String::new(),
    }
}

fn flatten_mul(e: Expr) -> Expr {
    match e {
        Expr::Mul(mut v) if v.len() == 1 => v.pop().expect("one factor"),
        other => other,
    }
}

/// `12`, `0.25`, `.5` as exact rationals.
fn parse_decimal(text: &str) -> Result<BigRational, String> {
    if text.len() > MAX_DIGITS {
        return Err(format!("a number with more than {MAX_DIGITS} digits"));
    }
    let (int, frac) = text.split_once('.').unwrap_or((text, ""));
    // Most numbers fit a u64: no decimal string to build and parse as a big integer.
    if int.len() + frac.len() <= 18
        && let (Ok(i), Ok(f)) = (
            if int.is_empty() { Ok(0) } else { int.parse::<u64>() },
            if frac.is_empty() { Ok(0) } else { frac.parse::<u64>() },
        )
    {
        let scale = 10u64.pow(frac.len() as u32);
        // Reduced here in u64 (below 10^18, the scale positive): what `BigRational::new`
        // would give, without its big-integer gcd, which was most of this function's time.
        let n = i * scale + f;
        let g = gcd_u64(n, scale);
        return Ok(BigRational::new_raw(BigInt::from(n / g), BigInt::from(scale / g)));
    }
    let digits = format!("{int}{frac}");
    let digits = if digits.is_empty() { "0".to_owned() } else { digits };
    let n: BigInt = digits.parse().map_err(|_| format!("malformed number `{text}`"))?;
    let scale = num_traits::pow(BigInt::from(10), frac.len());
    if scale.is_zero() {
        return Err(format!("malformed number `{text}`"));
    }
    Ok(BigRational::new(n, scale))
}

/// Greatest common divisor; `gcd_u64(0, b) == b`, as a reduced `0 / b` is `0 / 1`.
fn gcd_u64(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    fn num(n: i64) -> Expr {
        Expr::Num(BigRational::from_integer(n.into()))
    }

    fn expr(s: &str) -> Expr {
        match parse_answer(s) {
            Ok(Answer::Expr(e)) => e,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn numbers_are_exact() {
        assert_eq!(expr("0.25"), Expr::Decimal(BigRational::new(1.into(), 4.into())));
        assert_eq!(expr("7,425,000"), num(7_425_000));
        assert_eq!(expr(".5"), Expr::Decimal(BigRational::new(1.into(), 2.into())));
    }

    #[test]
    fn small_decimals_reduce_as_big_rationals_do() {
        // `parse_decimal` reduces numbers that fit a u64 itself: the same value and form as
        // `BigRational::new`'s own reduction.
        for text in ["0", "0.0", "12", "0.25", ".5", "10.50", "100", "3.000", "999999999.999999999", "1.5"] {
            let (int, frac) = text.split_once('.').unwrap_or((text, ""));
            let digits: BigInt = format!("0{int}{frac}").parse().expect("digits");
            let expected = BigRational::new(digits, num_traits::pow(BigInt::from(10), frac.len()));
            let got = parse_decimal(text).expect("parses");
            assert_eq!((got.numer(), got.denom()), (expected.numer(), expected.denom()), "{text}");
        }
    }

    #[test]
    fn fractions_roots_and_mixed_numbers() {
        assert_eq!(expr("\\frac12"), Expr::Div(Box::new(num(1)), Box::new(num(2))));
        assert_eq!(expr("\\frac{1}{2}"), expr("\\dfrac{1}{2}"));
        assert_eq!(
            expr("918\\frac12"),
            Expr::Add(vec![num(918), Expr::Div(Box::new(num(1)), Box::new(num(2)))])
        );
        assert_eq!(expr("\\sqrt[3]{8}"), Expr::Root(Box::new(num(3)), Box::new(num(8))));
        assert_eq!(expr("\\sqrt2"), Expr::Root(Box::new(num(2)), Box::new(num(2))));
        assert!(matches!(expr("2\\sqrt{3}x"), Expr::Mul(v) if v.len() == 3));
    }

    #[test]
    fn shapes() {
        assert!(matches!(parse_answer("(1, 2)"), Ok(Answer::Tuple(v)) if v.len() == 2));
        assert!(
            matches!(parse_answer("[1, 2)"), Ok(Answer::Intervals(v)) if v.len() == 1 && v[0].lo_closed && !v[0].hi_closed)
        );
        assert!(
            matches!(parse_answer("(-\\infty, 0) \\cup (1, \\infty)"), Ok(Answer::Intervals(v)) if v.len() == 2)
        );
        assert!(matches!(parse_answer("\\{1, 2, 3\\}"), Ok(Answer::Set(v)) if v.len() == 3));
        assert!(matches!(parse_answer("1, 3, 5"), Ok(Answer::List(v)) if v.len() == 3));
        assert!(matches!(parse_answer("x = 5"), Ok(Answer::Relation { ops, .. }) if ops == vec![RelOp::Eq]));
        assert!(
            matches!(parse_answer("1 < x \\le 3"), Ok(Answer::Relation { ops, .. }) if ops == vec![RelOp::Lt, RelOp::Le])
        );
        assert!(
            matches!(parse_answer("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"), Ok(Answer::Matrix(r)) if r.len() == 2)
        );
        assert_eq!(parse_answer("\\text{Evelyn}"), Ok(Answer::Text("evelyn".into())));
        assert_eq!(parse_answer("\\emptyset"), Ok(Answer::Set(vec![])));
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for s in ["", "\\frac{", "((", "\\sqrt", "1..2", "@", "\\unknowncmd", "|x", "x^", "{{{{", "a_"] {
            assert!(parse_answer(s).is_err(), "{s}");
        }
        let deep = "(".repeat(10_000) + "1" + &")".repeat(10_000);
        assert!(parse_answer(&deep).is_err());
        let deep_neg = "-".repeat(10_000) + "1";
        assert!(parse_answer(&deep_neg).is_err());
    }
}
