//! Deciding whether a predicted answer equals the gold one (gold first, as math-verify).
//!
//! Numbers compare exactly as rationals when both sides are rational; otherwise numerically
//! (relative tolerance [`REL_TOL`]); expressions with variables by evaluating both at several
//! seeded random points. Tuples, sets and lists, intervals, matrices, equations and
//! inequalities compare by their structure. Every comparison runs under a step budget, so no
//! input can make it slow, and nothing here panics.

use num_bigint::BigInt;
use num_complex::Complex64;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

use super::tree::{Answer, Constant, Expr, Func, Interval, RelOp};

/// Relative tolerance of equality between values computed from exact expressions (`\sqrt{8}`
/// vs `2\sqrt2`): only floating-point error separates equal ones.
pub const REL_TOL: f64 = 1e-6;
/// Relative tolerance once a decimal was written on either side (`0.7854` vs `\pi/4`,
/// `2.998e8` vs `2.998 \times 10^8`): Qwen2.5-Math's `math_equal` uses the same 1e-4. A written
/// decimal is rounded, so exactness would mark right answers wrong; 1e-4 still tells apart
/// answers that differ in their fourth significant digit, which Minerva's golds rarely carry.
pub const NUMERIC_REL_TOL: f64 = 1e-4;
const ABS_TOL: f64 = 1e-9;
/// Evaluation steps one comparison may take.
pub const STEP_BUDGET: u64 = 200_000;
/// Random points for expressions with variables.
const POINTS: usize = 5;
/// Exact powers are computed only while the result stays this small (bits).
const MAX_EXACT_BITS: u64 = 1 << 16;

#[derive(Debug)]
pub(crate) enum EvalError {
    Budget,
    /// Outside the function's domain here (division by zero, log of zero, ...).
    Domain,
    /// A variable with no value at this point.
    Unbound,
    Infinite,
}

pub(crate) struct Budget(u64);

impl Budget {
    pub fn new() -> Self {
        Self(STEP_BUDGET)
    }

    fn step(&mut self) -> Result<(), EvalError> {
        self.0 = self.0.checked_sub(1).ok_or(EvalError::Budget)?;
        Ok(())
    }

    pub fn exhausted(&self) -> bool {
        self.0 == 0
    }
}

#[derive(Debug, Clone)]
enum Val {
    Rat(BigRational),
    Cx(Complex64),
}

impl Val {
    fn cx(&self) -> Complex64 {
        match self {
            Val::Rat(r) => Complex64::new(r.to_f64().unwrap_or(f64::NAN), 0.0),
            Val::Cx(c) => *c,
        }
    }

    fn finite(self) -> Result<Val, EvalError> {
        match &self {
            Val::Cx(c) if !(c.re.is_finite() && c.im.is_finite()) => Err(EvalError::Domain),
            _ => Ok(self),
        }
    }
}

/// How `%` reads: as a hundredth (`10%` = 0.1), or as the number written (`10%` = 10).
#[derive(Clone, Copy, PartialEq)]
enum PercentAs {
    Fraction,
    Written,
}

struct Env<'a> {
    vars: &'a [(String, Complex64)],
    percent: PercentAs,
}

fn eval(e: &Expr, env: &Env, budget: &mut Budget) -> Result<Val, EvalError> {
    budget.step()?;
    let v = match e {
        Expr::Num(r) | Expr::Decimal(r) => Val::Rat(r.clone()),
        Expr::Const(Constant::Pi) => Val::Cx(Complex64::new(std::f64::consts::PI, 0.0)),
        Expr::Const(Constant::E) => Val::Cx(Complex64::new(std::f64::consts::E, 0.0)),
        Expr::Const(Constant::I) => Val::Cx(Complex64::new(0.0, 1.0)),
        Expr::Const(Constant::Infinity) => return Err(EvalError::Infinite),
        Expr::Var(name) => match env.vars.iter().find(|(n, _)| n == name) {
            Some((_, v)) => Val::Cx(*v),
            None => return Err(EvalError::Unbound),
        },
        Expr::Add(terms) => {
            let mut acc = Val::Rat(BigRational::zero());
            for t in terms {
                acc = add(acc, eval(t, env, budget)?);
            }
            acc
        }
        Expr::Mul(factors) => {
            let mut acc = Val::Rat(BigRational::one());
            for f in factors {
                acc = mul(acc, eval(f, env, budget)?);
            }
            acc
        }
        Expr::Neg(x) => match eval(x, env, budget)? {
            Val::Rat(r) => Val::Rat(-r),
            Val::Cx(c) => Val::Cx(-c),
        },
        Expr::Div(a, b) => div(eval(a, env, budget)?, eval(b, env, budget)?)?,
        Expr::Pow(a, b) => pow(eval(a, env, budget)?, eval(b, env, budget)?)?,
        Expr::Root(n, x) => {
            let n = eval(n, env, budget)?;
            let inv = div(Val::Rat(BigRational::one()), n)?;
            pow(eval(x, env, budget)?, inv)?
        }
        Expr::Func(f, x) => {
            let x = eval(x, env, budget)?;
            if let Val::Rat(r) = &x {
                match f {
                    Func::Abs => return Ok(Val::Rat(r.abs())),
                    Func::Floor => return Ok(Val::Rat(r.floor())),
                    Func::Ceil => return Ok(Val::Rat(r.ceil())),
                    _ => {}
                }
            }
            Val::Cx(apply(*f, x.cx()))
        }
        Expr::Log(base, x) => {
            let x = eval(x, env, budget)?.cx();
            if x == Complex64::zero() {
                return Err(EvalError::Domain);
            }
            match base {
                None => Val::Cx(x.ln()),
                Some(b) => {
                    let b = eval(b, env, budget)?.cx();
                    Val::Cx(x.ln() / b.ln())
                }
            }
        }
        Expr::Factorial(x) => match eval(x, env, budget)? {
            Val::Rat(r)
                if r.is_integer() && !r.is_negative() && r <= BigRational::from_integer(2000.into()) =>
            {
                let n = r.to_integer().to_u64().unwrap_or(0);
                let mut acc = BigInt::one();
                for k in 2..=n {
                    budget.step()?;
                    acc *= k;
                }
                Val::Rat(BigRational::from_integer(acc))
            }
            _ => return Err(EvalError::Domain),
        },
        Expr::Binom(n, k) => match (eval(n, env, budget)?, eval(k, env, budget)?) {
            (Val::Rat(n), Val::Rat(k)) if n.is_integer() && k.is_integer() && n.numer().bits() <= 64 => {
                let n = n.to_integer();
                let k = k.to_integer();
                if k.is_negative() || k > n || k > BigInt::from(5000) {
                    return Err(EvalError::Domain);
                }
                let k = k.to_u64().unwrap_or(0);
                let mut acc = BigRational::one();
                for j in 0..k {
                    budget.step()?;
                    acc = acc * BigRational::from_integer(&n - BigInt::from(j))
                        / BigRational::from_integer((j + 1).into());
                }
                Val::Rat(acc)
            }
            _ => return Err(EvalError::Domain),
        },
        Expr::Percent(x) => {
            let v = eval(x, env, budget)?;
            match env.percent {
                PercentAs::Fraction => div(v, Val::Rat(BigRational::from_integer(100.into())))?,
                PercentAs::Written => v,
            }
        }
    };
    v.finite()
}

fn apply(f: Func, x: Complex64) -> Complex64 {
    match f {
        Func::Sin => x.sin(),
        Func::Cos => x.cos(),
        Func::Tan => x.tan(),
        Func::Cot => x.tan().inv(),
        Func::Sec => x.cos().inv(),
        Func::Csc => x.sin().inv(),
        Func::Asin => x.asin(),
        Func::Acos => x.acos(),
        Func::Atan => x.atan(),
        Func::Sinh => x.sinh(),
        Func::Cosh => x.cosh(),
        Func::Tanh => x.tanh(),
        Func::Exp => x.exp(),
        Func::Abs => Complex64::new(x.norm(), 0.0),
        Func::Floor => Complex64::new(x.re.floor(), 0.0),
        Func::Ceil => Complex64::new(x.re.ceil(), 0.0),
    }
}

/// Exact arithmetic on operands this large (bits) would be slow: such values go numeric.
const MAX_OPERAND_BITS: u64 = 4 * MAX_EXACT_BITS;

fn small(x: &BigRational, y: &BigRational) -> bool {
    bits(x) + bits(y) <= MAX_OPERAND_BITS
}

fn add(a: Val, b: Val) -> Val {
    match (a, b) {
        (Val::Rat(x), Val::Rat(y)) if small(&x, &y) => Val::Rat(x + y),
        (a, b) => Val::Cx(a.cx() + b.cx()),
    }
}

fn mul(a: Val, b: Val) -> Val {
    match (a, b) {
        (Val::Rat(x), Val::Rat(y)) if small(&x, &y) => Val::Rat(x * y),
        (a, b) => Val::Cx(a.cx() * b.cx()),
    }
}

fn div(a: Val, b: Val) -> Result<Val, EvalError> {
    match (a, b) {
        (_, Val::Rat(y)) if y.is_zero() => Err(EvalError::Domain),
        (Val::Rat(x), Val::Rat(y)) if small(&x, &y) => Ok(Val::Rat(x / y)),
        (a, b) => {
            let d = b.cx();
            if d.norm() == 0.0 { Err(EvalError::Domain) } else { Ok(Val::Cx(a.cx() / d)) }
        }
    }
}

fn bits(r: &BigRational) -> u64 {
    r.numer().bits() + r.denom().bits()
}

fn pow(a: Val, b: Val) -> Result<Val, EvalError> {
    if let (Val::Rat(base), Val::Rat(exp)) = (&a, &b) {
        if base.is_zero() && !exp.is_positive() {
            return Err(EvalError::Domain);
        }
        if exp.is_integer() {
            let e = exp.to_integer();
            if let Some(e) = e.to_i64()
                && bits(base).saturating_mul(e.unsigned_abs()) <= MAX_EXACT_BITS
            {
                let p = num_traits::pow(base.clone(), e.unsigned_abs() as usize);
                return Ok(Val::Rat(if e < 0 { p.recip() } else { p }));
            }
        } else if !base.is_negative()
            && let (Some(p), Some(q)) = (exp.numer().to_i64(), exp.denom().to_u32())
            && q <= 64
            && let (Some(rn), Some(rd)) = (exact_root(base.numer(), q), exact_root(base.denom(), q))
        {
            // `\sqrt{4}` = 2 exactly, `8^{2/3}` = 4.
            return pow(Val::Rat(BigRational::new(rn, rd)), Val::Rat(BigRational::from_integer(p.into())));
        }
    }
    let (x, y) = (a.cx(), b.cx());
    if x == Complex64::zero() {
        return if y.re > 0.0 { Ok(Val::Cx(Complex64::zero())) } else { Err(EvalError::Domain) };
    }
    // Real base and integer or real result: stay on the real line where the answer is real.
    if x.im == 0.0 && y.im == 0.0 && (x.re > 0.0 || y.re.fract() == 0.0) {
        return Ok(Val::Cx(Complex64::new(x.re.powf(y.re), 0.0)));
    }
    Ok(Val::Cx(x.powc(y)))
}

fn exact_root(n: &BigInt, q: u32) -> Option<BigInt> {
    if n.bits() > MAX_EXACT_BITS {
        return None;
    }
    let r = n.nth_root(q);
    (num_traits::pow(r.clone(), q as usize) == *n).then_some(r)
}

fn close(a: Complex64, b: Complex64) -> bool {
    close_within(a, b, REL_TOL)
}

/// Relative closeness; the absolute tolerance only against an exact zero (`\sin\pi` is
/// 1.2e-16 in floating point), so `4.6e-27` is not `4.6e-24`.
fn close_within(a: Complex64, b: Complex64, rel: f64) -> bool {
    let diff = (a - b).norm();
    if a == Complex64::new(0.0, 0.0) || b == Complex64::new(0.0, 0.0) {
        return diff <= ABS_TOL;
    }
    diff <= rel * a.norm().max(b.norm())
}

/// Rationals compare exactly unless a decimal was written (`approx`): `1/3` is not `0.333`
/// exactly, but is within tolerance of `0.333333333`.
fn vals_equal(a: &Val, b: &Val, approx: bool) -> bool {
    match (a, b) {
        (Val::Rat(x), Val::Rat(y)) if !approx || x == y => x == y,
        _ if approx => close_within(a.cx(), b.cx(), NUMERIC_REL_TOL),
        _ => close(a.cx(), b.cx()),
    }
}

fn collect_vars(e: &Expr, out: &mut Vec<String>) {
    match e {
        Expr::Var(n) => {
            if !out.contains(n) {
                out.push(n.clone());
            }
        }
        Expr::Num(_) | Expr::Decimal(_) | Expr::Const(_) => {}
        Expr::Add(v) | Expr::Mul(v) => v.iter().for_each(|x| collect_vars(x, out)),
        Expr::Neg(x) | Expr::Func(_, x) | Expr::Factorial(x) | Expr::Percent(x) => collect_vars(x, out),
        Expr::Log(b, x) => {
            if let Some(b) = b {
                collect_vars(b, out);
            }
            collect_vars(x, out);
        }
        Expr::Div(a, b) | Expr::Pow(a, b) | Expr::Root(a, b) | Expr::Binom(a, b) => {
            collect_vars(a, out);
            collect_vars(b, out);
        }
    }
}

/// Whether `e` holds a number written with decimals.
fn has_decimal(e: &Expr) -> bool {
    match e {
        Expr::Decimal(_) => true,
        Expr::Num(_) | Expr::Const(_) | Expr::Var(_) => false,
        Expr::Add(v) | Expr::Mul(v) => v.iter().any(has_decimal),
        Expr::Neg(x) | Expr::Func(_, x) | Expr::Factorial(x) | Expr::Percent(x) => has_decimal(x),
        Expr::Log(b, x) => b.as_deref().is_some_and(has_decimal) || has_decimal(x),
        Expr::Div(a, b) | Expr::Pow(a, b) | Expr::Root(a, b) | Expr::Binom(a, b) => {
            has_decimal(a) || has_decimal(b)
        }
    }
}

fn has_percent(e: &Expr) -> bool {
    match e {
        Expr::Percent(_) => true,
        Expr::Num(_) | Expr::Decimal(_) | Expr::Const(_) | Expr::Var(_) => false,
        Expr::Add(v) | Expr::Mul(v) => v.iter().any(has_percent),
        Expr::Neg(x) | Expr::Func(_, x) | Expr::Factorial(x) => has_percent(x),
        Expr::Log(b, x) => b.as_deref().is_some_and(has_percent) || has_percent(x),
        Expr::Div(a, b) | Expr::Pow(a, b) | Expr::Root(a, b) | Expr::Binom(a, b) => {
            has_percent(a) || has_percent(b)
        }
    }
}

/// Sign of an infinite expression (`\infty`, `-\infty`, `+\infty`), if it is one.
fn infinity_sign(e: &Expr) -> Option<i8> {
    match e {
        Expr::Const(Constant::Infinity) => Some(1),
        Expr::Neg(x) => infinity_sign(x).map(|s| -s),
        _ => None,
    }
}

/// Deterministic points in [0.5, 2.5): no RNG state shared between comparisons.
fn point(k: usize, var: usize) -> f64 {
    let mut x = (k as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ (var as u64 + 1).wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    x ^= x >> 33;
    x = x.wrapping_mul(0xFF51_AFD7_ED55_8CCD);
    x ^= x >> 33;
    0.5 + 2.0 * (x >> 11) as f64 / (1u64 << 53) as f64
}

/// The `k`-th point: a value for every variable.
fn assignment(names: &[String], k: usize) -> Vec<(String, Complex64)> {
    names.iter().enumerate().map(|(j, n)| (n.clone(), Complex64::new(point(k, j), 0.0))).collect()
}

pub(crate) fn exprs_equal(a: &Expr, b: &Expr, budget: &mut Budget) -> bool {
    if a == b {
        return true;
    }
    if let (Some(x), Some(y)) = (infinity_sign(a), infinity_sign(b)) {
        return x == y;
    }
    let modes: &[PercentAs] = if has_percent(a) || has_percent(b) {
        &[PercentAs::Fraction, PercentAs::Written]
    } else {
        &[PercentAs::Fraction]
    };
    modes.iter().any(|&percent| equal_under(a, b, percent, budget))
}

fn equal_under(a: &Expr, b: &Expr, percent: PercentAs, budget: &mut Budget) -> bool {
    let approx = has_decimal(a) || has_decimal(b);
    let mut names = Vec::new();
    collect_vars(a, &mut names);
    collect_vars(b, &mut names);
    if names.is_empty() {
        let env = Env { vars: &[], percent };
        return match (eval(a, &env, budget), eval(b, &env, budget)) {
            (Ok(x), Ok(y)) => vals_equal(&x, &y, approx),
            _ => false,
        };
    }
    let mut agreed = 0;
    for k in 0..POINTS {
        let vars = assignment(&names, k);
        let env = Env { vars: &vars, percent };
        match (eval(a, &env, budget), eval(b, &env, budget)) {
            (Ok(x), Ok(y)) if vals_equal(&x, &y, approx) => agreed += 1,
            (Ok(_), Ok(_)) => return false,
            (Err(EvalError::Budget), _) | (_, Err(EvalError::Budget)) => return false,
            _ => {} // a domain error at this point: try the next one
        }
    }
    agreed >= 2
}

/// `lhs - rhs`.
fn difference(lhs: &Expr, rhs: &Expr) -> Expr {
    Expr::Add(vec![lhs.clone(), Expr::Neg(Box::new(rhs.clone()))])
}

/// Whether `a / b` is the same constant at every point, with the sign `positive` asks for
/// (`None`: either sign). Used for equations up to scaling and oriented inequalities.
fn proportional(a: &Expr, b: &Expr, positive: Option<bool>, budget: &mut Budget) -> bool {
    let mut names = Vec::new();
    collect_vars(a, &mut names);
    collect_vars(b, &mut names);
    let mut ratio: Option<Complex64> = None;
    let mut agreed = 0;
    for k in 0..POINTS {
        let vars = assignment(&names, k);
        let env = Env { vars: &vars, percent: PercentAs::Fraction };
        let (Ok(x), Ok(y)) = (eval(a, &env, budget), eval(b, &env, budget)) else {
            if budget.exhausted() {
                return false;
            }
            continue;
        };
        let (x, y) = (x.cx(), y.cx());
        if y.norm() <= ABS_TOL {
            if x.norm() <= ABS_TOL {
                continue; // both vanish here: no information
            }
            return false;
        }
        let r = x / y;
        match ratio {
            None => {
                if r.norm() <= ABS_TOL || r.im.abs() > ABS_TOL {
                    return false;
                }
                if let Some(pos) = positive
                    && (r.re > 0.0) != pos
                {
                    return false;
                }
                ratio = Some(r);
            }
            Some(r0) if !close(r0, r) => return false,
            Some(_) => {}
        }
        agreed += 1;
    }
    agreed >= 1 && (names.is_empty() || agreed >= 2)
}

/// `a op b` as `d op' 0` with `op'` one of `=`, `≠`, `<`, `≤` (`>` flipped).
fn oriented(lhs: &Expr, op: RelOp, rhs: &Expr) -> (Expr, RelOp) {
    match op {
        RelOp::Gt => (difference(rhs, lhs), RelOp::Lt),
        RelOp::Ge => (difference(rhs, lhs), RelOp::Le),
        _ => (difference(lhs, rhs), op),
    }
}

fn relations_equal(ga: (&[Expr], &[RelOp]), pa: (&[Expr], &[RelOp]), budget: &mut Budget) -> bool {
    let (gs, gops) = ga;
    let (ps, pops) = pa;
    // Single equations: `y = 2x+1` ~ `2x+1-y = 0`, and `x = 5` ~ `x = 10/2`.
    if gops.len() == 1 && pops.len() == 1 {
        let (gd, gop) = oriented(&gs[0], gops[0], &gs[1]);
        let (pd, pop) = oriented(&ps[0], pops[0], &ps[1]);
        if gop != pop {
            return false;
        }
        if gops[0] == pops[0] && gs[0] == ps[0] && exprs_equal(&gs[1], &ps[1], budget) {
            return true;
        }
        let positive = match gop {
            RelOp::Eq | RelOp::Ne => None,
            _ => Some(true),
        };
        return proportional(&gd, &pd, positive, budget);
    }
    // Chains (`1 < x < 3`): same shape read in either direction, sides equal.
    let flip = |op: RelOp| match op {
        RelOp::Lt => RelOp::Gt,
        RelOp::Gt => RelOp::Lt,
        RelOp::Le => RelOp::Ge,
        RelOp::Ge => RelOp::Le,
        other => other,
    };
    if gops.len() != pops.len() {
        return false;
    }
    let same = gops == pops && gs.iter().zip(ps).all(|(a, b)| exprs_equal(a, b, budget));
    same || (gops.iter().zip(pops.iter().rev()).all(|(a, b)| *a == flip(*b))
        && gs.iter().zip(ps.iter().rev()).all(|(a, b)| exprs_equal(a, b, budget)))
}

/// A 2-tuple of expressions read as an open interval.
fn open_interval(t: &[Answer]) -> Option<Interval> {
    match t {
        [Answer::Expr(lo), Answer::Expr(hi)] => {
            Some(Interval { lo: lo.clone(), hi: hi.clone(), lo_closed: false, hi_closed: false })
        }
        _ => None,
    }
}

/// `a < x <= b`, `x > a`, `b >= x`, ... as the interval of `x`.
fn relation_as_interval(sides: &[Expr], ops: &[RelOp]) -> Option<Interval> {
    let inf = || Expr::Const(Constant::Infinity);
    let neg_inf = || Expr::Neg(Box::new(Expr::Const(Constant::Infinity)));
    let is_var = |e: &Expr| matches!(e, Expr::Var(_));
    // Orient every chain as ascending (`<`, `<=`).
    let (sides, ops): (Vec<&Expr>, Vec<RelOp>) = if ops.iter().all(|o| matches!(o, RelOp::Gt | RelOp::Ge)) {
        let flipped = ops.iter().rev().map(|o| if *o == RelOp::Gt { RelOp::Lt } else { RelOp::Le }).collect();
        (sides.iter().rev().collect(), flipped)
    } else if ops.iter().all(|o| matches!(o, RelOp::Lt | RelOp::Le)) {
        (sides.iter().collect(), ops.to_vec())
    } else {
        return None;
    };
    match (sides.as_slice(), ops.as_slice()) {
        ([lo, x, hi], [a, b]) if is_var(x) => Some(Interval {
            lo: (*lo).clone(),
            hi: (*hi).clone(),
            lo_closed: *a == RelOp::Le,
            hi_closed: *b == RelOp::Le,
        }),
        ([x, hi], [a]) if is_var(x) => {
            Some(Interval { lo: neg_inf(), hi: (*hi).clone(), lo_closed: false, hi_closed: *a == RelOp::Le })
        }
        ([lo, x], [a]) if is_var(x) => {
            Some(Interval { lo: (*lo).clone(), hi: inf(), lo_closed: *a == RelOp::Le, hi_closed: false })
        }
        _ => None,
    }
}

fn intervals_equal(a: &Interval, b: &Interval, budget: &mut Budget) -> bool {
    // Closedness at an infinite end is meaningless (`[0, \infty]` is a common typo).
    let lo_ok = infinity_sign(&a.lo).is_some() || a.lo_closed == b.lo_closed;
    let hi_ok = infinity_sign(&a.hi).is_some() || a.hi_closed == b.hi_closed;
    lo_ok && hi_ok && exprs_equal(&a.lo, &b.lo, budget) && exprs_equal(&a.hi, &b.hi, budget)
}

/// Order-free matching of two collections.
fn unordered_equal(gold: &[Answer], pred: &[Answer], budget: &mut Budget) -> bool {
    if gold.len() != pred.len() {
        return false;
    }
    let mut used = vec![false; pred.len()];
    gold.iter().all(|g| {
        let found = (0..pred.len()).find(|&j| !used[j] && answers_equal(g, &pred[j], budget));
        found.map(|j| used[j] = true).is_some()
    })
}

/// Structural equality of parsed answers, gold first.
pub(crate) fn answers_equal(gold: &Answer, pred: &Answer, budget: &mut Budget) -> bool {
    if budget.exhausted() {
        return false;
    }
    use Answer as A;
    match (gold, pred) {
        (A::Expr(a), A::Expr(b)) => exprs_equal(a, b, budget),
        (A::Text(a), A::Text(b)) => a == b,
        (A::Relation { sides: gs, ops: go }, A::Relation { sides: ps, ops: po }) => {
            relations_equal((gs, go), (ps, po), budget)
        }
        // `x = 5` ~ `5` (either side); the variable must be alone on its side.
        (A::Relation { sides, ops }, A::Expr(e)) | (A::Expr(e), A::Relation { sides, ops })
            if ops == &[RelOp::Eq] =>
        {
            let alone = |x: &Expr| matches!(x, Expr::Var(_));
            (alone(&sides[0]) && exprs_equal(&sides[1], e, budget))
                || (alone(&sides[1]) && exprs_equal(&sides[0], e, budget))
        }
        // An inequality in the gold is answered by its interval (`x > 3` ~ `(3, \infty)`); the
        // reverse is not accepted, as in math-verify, whose comparison is one-way by design: a
        // question whose gold is an interval asks for one.
        (A::Relation { sides, ops }, A::Intervals(iv)) if iv.len() == 1 => {
            relation_as_interval(sides, ops).is_some_and(|i| intervals_equal(&i, &iv[0], budget))
        }
        (A::Relation { sides, ops }, A::Tuple(t)) => {
            match (relation_as_interval(sides, ops), open_interval(t)) {
                (Some(a), Some(b)) => intervals_equal(&a, &b, budget),
                _ => false,
            }
        }
        // `x = 1, y = 2` ~ `(1, 2)` is too loose to accept; lists compare as lists.
        (A::Tuple(a), A::Tuple(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| answers_equal(x, y, budget))
        }
        (A::Set(a) | A::List(a), A::Set(b) | A::List(b)) => unordered_equal(a, b, budget),
        // A union is a set of numbers: its intervals may come in any order.
        (A::Intervals(a), A::Intervals(b)) => {
            if a.len() != b.len() {
                return false;
            }
            let mut used = vec![false; b.len()];
            a.iter().all(|x| {
                let found = (0..b.len()).find(|&j| !used[j] && intervals_equal(x, &b[j], budget));
                found.map(|j| used[j] = true).is_some()
            })
        }
        // `(a, b)` is a tuple or an open interval: let the other side decide.
        (A::Tuple(t), A::Intervals(iv)) | (A::Intervals(iv), A::Tuple(t)) if iv.len() == 1 => {
            open_interval(t).is_some_and(|i| intervals_equal(&i, &iv[0], budget))
        }
        (A::Matrix(a), A::Matrix(b)) => {
            a.len() == b.len()
                && a.iter().zip(b).all(|(r, s)| {
                    r.len() == s.len() && r.iter().zip(s).all(|(x, y)| answers_equal(x, y, budget))
                })
        }
        // A one-element collection against a bare answer.
        (A::Set(v) | A::List(v), other) | (other, A::Set(v) | A::List(v)) if v.len() == 1 => {
            answers_equal(&v[0], other, budget)
        }
        // A set's repeats collapse: `\{15\frac{39}{40}, \frac{639}{40}\}` (a solution boxing
        // one value twice) is that one value.
        (A::Set(v), other) | (other, A::Set(v))
            if !v.is_empty() && !matches!(other, A::Set(_) | A::List(_)) =>
        {
            v.iter().all(|x| answers_equal(x, other, budget))
        }
        _ => false,
    }
}
