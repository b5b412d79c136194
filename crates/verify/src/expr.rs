//! The expression tree every answer is parsed into, and its printer. The printer writes a
//! LaTeX-flavoured plain syntax that [`parse_answer`](crate::parse_answer) reads back to the same
//! tree (a property test checks the round trip), so trees can be logged and diffed as text.
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed};
use std::fmt;

/// Named constants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Const {
    /// π
    Pi,
    /// Euler's number
    E,
    /// The imaginary unit
    I,
    /// ∞
    Inf,
}

/// Relation symbols of equations and inequalities.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelOp {
    /// =
    Eq,
    /// ≠
    Ne,
    /// <
    Lt,
    /// ≤
    Le,
    /// >
    Gt,
    /// ≥
    Ge,
}

impl RelOp {
    fn latex(self) -> &'static str {
        match self {
            RelOp::Eq => "=",
            RelOp::Ne => "\\ne",
            RelOp::Lt => "<",
            RelOp::Le => "\\le",
            RelOp::Gt => ">",
            RelOp::Ge => "\\ge",
        }
    }
}

/// A parsed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// An exact rational (integer literals, folded integer fractions, mixed numbers).
    Num(BigRational),
    /// A decimal literal: its exact value and the number of decimal places it states.
    Dec(BigRational, u32),
    /// A variable (`x`, `x_1`).
    Sym(String),
    /// A named constant.
    Const(Const),
    /// Negation.
    Neg(Box<Expr>),
    /// Sum (flattened).
    Add(Vec<Expr>),
    /// Product (flattened).
    Mul(Vec<Expr>),
    /// Quotient.
    Div(Box<Expr>, Box<Expr>),
    /// Power.
    Pow(Box<Expr>, Box<Expr>),
    /// A function application: `sqrt`, `root` (radicand, index), `log` (arg[, base]), `ln`,
    /// `exp`, trig, `abs`, `fact`, `binom`.
    Func(String, Vec<Expr>),
    /// `x%`.
    Percent(Box<Expr>),
    /// `a ± b` (`a` is zero for a prefix ±).
    PlusMinus(Box<Expr>, Box<Expr>),
    /// An ordered tuple `(a, b, ...)` or vector `[a, b, c]`.
    Tuple(Vec<Expr>),
    /// A set `\{a, b\}`.
    Set(Vec<Expr>),
    /// A bare comma-separated list (answers such as `2, 3`): compared as a set.
    List(Vec<Expr>),
    /// An interval with openness of each end.
    Interval(Box<Expr>, Box<Expr>, bool, bool),
    /// A union of sets/intervals.
    Union(Vec<Expr>),
    /// A matrix, row-major.
    Matrix(Vec<Vec<Expr>>),
    /// A relation chain `a op b op c ...`: operands and operators (one fewer).
    Rel(Vec<Expr>, Vec<RelOp>),
    /// Free text (`\text{Monday}`).
    Text(String),
}

impl Expr {
    /// An integer constant.
    pub fn int(n: i64) -> Expr {
        Expr::Num(BigRational::from_integer(BigInt::from(n)))
    }

    /// Whether this tree contains no variables.
    pub fn free_symbols(&self, out: &mut Vec<String>) {
        match self {
            Expr::Sym(s) => {
                if !out.contains(s) {
                    out.push(s.clone())
                }
            }
            _ => self.children().for_each(|c| c.free_symbols(out)),
        }
    }

    /// Direct children (for generic traversals).
    pub fn children(&self) -> Box<dyn Iterator<Item = &Expr> + '_> {
        match self {
            Expr::Num(_) | Expr::Dec(..) | Expr::Sym(_) | Expr::Const(_) | Expr::Text(_) => {
                Box::new(std::iter::empty())
            }
            Expr::Neg(a) | Expr::Percent(a) => Box::new(std::iter::once(a.as_ref())),
            Expr::Div(a, b)
            | Expr::Pow(a, b)
            | Expr::PlusMinus(a, b)
            | Expr::Interval(a, b, ..) => Box::new([a.as_ref(), b.as_ref()].into_iter()),
            Expr::Add(v)
            | Expr::Mul(v)
            | Expr::Func(_, v)
            | Expr::Tuple(v)
            | Expr::Set(v)
            | Expr::List(v)
            | Expr::Union(v)
            | Expr::Rel(v, _) => Box::new(v.iter()),
            Expr::Matrix(rows) => Box::new(rows.iter().flatten()),
        }
    }

    /// Number of nodes (for budgets).
    pub fn size(&self) -> usize {
        1 + self.children().map(Expr::size).sum::<usize>()
    }
}

fn write_rational(f: &mut fmt::Formatter<'_>, r: &BigRational) -> fmt::Result {
    if r.is_negative() {
        f.write_str("-")?;
    }
    let a = r.abs();
    if a.denom().is_one() {
        write!(f, "{}", a.numer())
    } else {
        write!(f, "\\frac{{{}}}{{{}}}", a.numer(), a.denom())
    }
}

fn write_decimal(f: &mut fmt::Formatter<'_>, r: &BigRational, places: u32) -> fmt::Result {
    let scale = num_traits::pow(BigInt::from(10), places as usize);
    let scaled = r * BigRational::from_integer(scale.clone());
    if !scaled.denom().is_one() {
        // Not representable at the stated places (cannot come from the parser).
        return write_rational(f, r);
    }
    let n = scaled.numer().clone();
    if n.is_negative() {
        f.write_str("-")?;
    }
    let digits = n.abs().to_string();
    let p = places as usize;
    if p == 0 {
        return write!(f, "{digits}.0").and(Ok(())).or(Ok(()));
    }
    let digits = if digits.len() <= p {
        format!("{}{}", "0".repeat(p + 1 - digits.len()), digits)
    } else {
        digits
    };
    let (int, frac) = digits.split_at(digits.len() - p);
    write!(f, "{int}.{frac}")
}

fn list(f: &mut fmt::Formatter<'_>, v: &[Expr]) -> fmt::Result {
    for (k, e) in v.iter().enumerate() {
        if k > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{e}")?;
    }
    Ok(())
}

impl fmt::Display for Expr {
    /// Prints with explicit grouping so that the parser rebuilds the same tree.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Num(r) => {
                if r.is_negative() || !r.denom().is_one() {
                    f.write_str("{")?;
                    write_rational(f, r)?;
                    f.write_str("}")
                } else {
                    write_rational(f, r)
                }
            }
            Expr::Dec(r, p) => {
                f.write_str("{")?;
                if *p == 0 {
                    // A literal like "5." never reaches here; keep a parseable form.
                    write_rational(f, r)?;
                } else {
                    write_decimal(f, r, *p)?;
                }
                f.write_str("}")
            }
            Expr::Sym(s) => match s.split_once('_') {
                Some((a, b)) => write!(f, "{a}_{{{b}}}"),
                None => f.write_str(s),
            },
            Expr::Const(c) => f.write_str(match c {
                Const::Pi => "\\pi",
                Const::E => "e",
                Const::I => "i",
                Const::Inf => "\\infty",
            }),
            Expr::Neg(a) => write!(f, "{{-{{{a}}}}}"),
            Expr::Add(v) => {
                f.write_str("{")?;
                for (k, e) in v.iter().enumerate() {
                    if k > 0 {
                        f.write_str(" + ")?;
                    }
                    write!(f, "{{{e}}}")?;
                }
                f.write_str("}")
            }
            Expr::Mul(v) => {
                f.write_str("{")?;
                for (k, e) in v.iter().enumerate() {
                    if k > 0 {
                        f.write_str(" \\cdot ")?;
                    }
                    write!(f, "{{{e}}}")?;
                }
                f.write_str("}")
            }
            Expr::Div(a, b) => write!(f, "{{{{{a}}} / {{{b}}}}}"),
            Expr::Pow(a, b) => write!(f, "{{{{{a}}}^{{{b}}}}}"),
            Expr::Func(name, args) => match (name.as_str(), args.as_slice()) {
                ("sqrt", [a]) => write!(f, "\\sqrt{{{a}}}"),
                ("root", [a, n]) => write!(f, "\\sqrt[{n}]{{{a}}}"),
                ("log", [a, b]) => write!(f, "\\log_{{{b}}}{{({a})}}"),
                ("abs", [a]) => write!(f, "{{|{a}|}}"),
                ("fact", [a]) => write!(f, "{{{{{a}}}!}}"),
                ("binom", [a, b]) => write!(f, "\\binom{{{a}}}{{{b}}}"),
                (n, args) => {
                    write!(f, "\\{n}(")?;
                    list(f, args)?;
                    f.write_str(")")
                }
            },
            Expr::Percent(a) => write!(f, "{{{{{a}}}\\%}}"),
            Expr::PlusMinus(a, b) => write!(f, "{{{{{a}}} \\pm {{{b}}}}}"),
            Expr::Tuple(v) => {
                f.write_str("(")?;
                list(f, v)?;
                f.write_str(")")
            }
            Expr::Set(v) => {
                if v.is_empty() {
                    return f.write_str("\\emptyset");
                }
                f.write_str("\\{")?;
                list(f, v)?;
                f.write_str("\\}")
            }
            Expr::List(v) => list(f, v),
            Expr::Interval(a, b, lo, hi) => {
                write!(f, "{}{a}, {b}{}", if *lo { "(" } else { "[" }, if *hi { ")" } else { "]" })
            }
            Expr::Union(v) => {
                for (k, e) in v.iter().enumerate() {
                    if k > 0 {
                        f.write_str(" \\cup ")?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Expr::Matrix(rows) => {
                f.write_str("\\begin{pmatrix}")?;
                for (r, row) in rows.iter().enumerate() {
                    if r > 0 {
                        f.write_str(" \\\\ ")?;
                    }
                    for (c, e) in row.iter().enumerate() {
                        if c > 0 {
                            f.write_str(" & ")?;
                        }
                        write!(f, "{e}")?;
                    }
                }
                f.write_str("\\end{pmatrix}")
            }
            Expr::Rel(v, ops) => {
                for (k, e) in v.iter().enumerate() {
                    if k > 0 {
                        write!(f, " {} ", ops[k - 1].latex())?;
                    }
                    write!(f, "{e}")?;
                }
                Ok(())
            }
            Expr::Text(t) => write!(f, "\\text{{{t}}}"),
        }
    }
}
