//! The tree an answer parses into: expressions (numbers kept exact, constants, variables,
//! arithmetic, roots, functions, factorials, percentages) and the shapes answers take around
//! them (tuples, sets, lists, intervals and their unions, matrices, relations, text).

use num_rational::BigRational;

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Num(BigRational),
    /// A number written with decimals (`0.333`): exact, but compared with tolerance, since
    /// people round decimals.
    Decimal(BigRational),
    Const(Constant),
    Var(String),
    Add(Vec<Expr>),
    Mul(Vec<Expr>),
    Neg(Box<Expr>),
    Div(Box<Expr>, Box<Expr>),
    Pow(Box<Expr>, Box<Expr>),
    /// `\sqrt[n]{x}`: (index, radicand).
    Root(Box<Expr>, Box<Expr>),
    Func(Func, Box<Expr>),
    /// `\log_b x`; natural log when the base is absent.
    Log(Option<Box<Expr>>, Box<Expr>),
    Factorial(Box<Expr>),
    Binom(Box<Expr>, Box<Expr>),
    Percent(Box<Expr>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Constant {
    Pi,
    E,
    I,
    Infinity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    Sin,
    Cos,
    Tan,
    Cot,
    Sec,
    Csc,
    Asin,
    Acos,
    Atan,
    Sinh,
    Cosh,
    Tanh,
    Exp,
    Abs,
    Floor,
    Ceil,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Interval {
    pub lo: Expr,
    pub hi: Expr,
    pub lo_closed: bool,
    pub hi_closed: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    Expr(Expr),
    /// `a op b op c ...`: `sides.len() == ops.len() + 1`.
    Relation {
        sides: Vec<Expr>,
        ops: Vec<RelOp>,
    },
    /// `(a, b, ...)` (order matters; a 2-tuple may also be an open interval).
    Tuple(Vec<Answer>),
    /// `\{a, b\}` (order-free).
    Set(Vec<Answer>),
    /// `a, b, c` with no brackets: several answers, order-free.
    List(Vec<Answer>),
    /// One interval or a union (`\cup`).
    Intervals(Vec<Interval>),
    Matrix(Vec<Vec<Answer>>),
    /// Words: `\text{Evelyn}`, `odd`. Lowercased, spaces removed.
    Text(String),
}
