//! Matrix arithmetic written out as the answer: `\begin{pmatrix}..\end{pmatrix} +
//! \begin{pmatrix}..\end{pmatrix}`, `2 \begin{pmatrix}..\end{pmatrix}`, a product `A B` or
//! `A \cdot B`. math-verify evaluates such an answer to one matrix; so do we, cell by cell,
//! building the cells' expressions (the comparer evaluates them).

use super::tree::{Answer, Expr};

const BEGIN: &str = "\\begin{pmatrix}";
const END: &str = "\\end{pmatrix}";

type Cells = Vec<Vec<Expr>>;

/// One matrix from `s` (normalized, holding at least one `pmatrix`), or `None` when `s` is not
/// matrix arithmetic. `cell` parses one cell's text; `scalar` an expression between matrices.
pub(super) fn evaluate(
    s: &str,
    cell: &dyn Fn(&str) -> Result<Answer, String>,
    scalar: &dyn Fn(&str) -> Result<Expr, String>,
) -> Option<Result<Answer, String>> {
    // (text before the matrix, the matrix's body) for each matrix, then what follows the last.
    let mut pieces: Vec<(&str, &str)> = Vec::new();
    let mut rest = s;
    while let Some(start) = rest.find(BEGIN) {
        let body_start = start + BEGIN.len();
        let end = rest[body_start..].find(END)? + body_start;
        pieces.push((&rest[..start], &rest[body_start..end]));
        rest = &rest[end + END.len()..];
    }
    if pieces.len() < 2 && pieces.first().is_none_or(|(before, _)| before.trim().is_empty()) {
        return None; // one plain matrix: the caller's reading
    }
    if !rest.trim().is_empty() {
        return None;
    }
    Some(combine(&pieces, cell, scalar))
}

fn combine(
    pieces: &[(&str, &str)],
    cell: &dyn Fn(&str) -> Result<Answer, String>,
    scalar: &dyn Fn(&str) -> Result<Expr, String>,
) -> Result<Answer, String> {
    let mut sum: Option<Cells> = None;
    let mut term: Option<Cells> = None;
    for (k, (before, body)) in pieces.iter().enumerate() {
        let m = cells(body, cell)?;
        let before = before.trim();
        // Between two matrices: `+`/`-` starts a new term, nothing (or `\cdot`) multiplies.
        let (new_term, negative, coefficient) = match before.strip_prefix('+') {
            Some(r) => (true, false, r),
            None => match before.strip_prefix('-') {
                Some(r) if k > 0 => (true, true, r),
                _ => (k == 0, false, before),
            },
        };
        let coefficient = coefficient.trim();
        let coefficient = ["\\cdot", "\\times", "*"]
            .iter()
            .find_map(|op| coefficient.strip_suffix(op))
            .unwrap_or(coefficient)
            .trim();
        let mut m = m;
        if !coefficient.is_empty() {
            let c = if coefficient == "-" { Expr::Neg(Box::new(one())) } else { scalar(coefficient)? };
            m = map(m, |x| Expr::Mul(vec![c.clone(), x]));
        }
        if negative {
            m = map(m, |x| Expr::Neg(Box::new(x)));
        }
        if new_term {
            if let Some(t) = term.take() {
                sum = Some(add(sum, t)?);
            }
            term = Some(m);
        } else {
            term = Some(product(term.ok_or("a matrix product without a left factor")?, m)?);
        }
    }
    let total = add(sum, term.ok_or("no matrix")?)?;
    Ok(Answer::Matrix(total.into_iter().map(|r| r.into_iter().map(Answer::Expr).collect()).collect()))
}

fn one() -> Expr {
    Expr::Num(num_rational::BigRational::from_integer(1.into()))
}

fn cells(body: &str, cell: &dyn Fn(&str) -> Result<Answer, String>) -> Result<Cells, String> {
    let rows: Vec<Vec<Expr>> = body
        .split("\\\\")
        .map(str::trim)
        .filter(|r| !r.is_empty())
        .map(|r| {
            r.split('&')
                .map(|c| match cell(c)? {
                    Answer::Expr(e) => Ok(e),
                    _ => Err("a matrix cell in arithmetic that is not a number".to_owned()),
                })
                .collect::<Result<Vec<_>, String>>()
        })
        .collect::<Result<_, _>>()?;
    if rows.is_empty() || rows.iter().any(|r| r.len() != rows[0].len()) {
        return Err("matrix rows differ in length".into());
    }
    Ok(rows)
}

fn map(m: Cells, f: impl Fn(Expr) -> Expr) -> Cells {
    m.into_iter().map(|r| r.into_iter().map(&f).collect()).collect()
}

fn add(acc: Option<Cells>, m: Cells) -> Result<Cells, String> {
    let Some(acc) = acc else { return Ok(m) };
    if acc.len() != m.len() || acc[0].len() != m[0].len() {
        return Err("matrices of different sizes added".into());
    }
    Ok(acc
        .into_iter()
        .zip(m)
        .map(|(r, s)| r.into_iter().zip(s).map(|(a, b)| Expr::Add(vec![a, b])).collect())
        .collect())
}

fn product(a: Cells, b: Cells) -> Result<Cells, String> {
    if a[0].len() != b.len() {
        return Err("matrix product of mismatched sizes".into());
    }
    Ok((0..a.len())
        .map(|i| {
            (0..b[0].len())
                .map(|j| {
                    Expr::Add(
                        (0..b.len()).map(|k| Expr::Mul(vec![a[i][k].clone(), b[k][j].clone()])).collect(),
                    )
                })
                .collect()
        })
        .collect())
}
