//! Evaluation of expression trees exactly over the Gaussian rationals (`a + bi`, `a, b ∈ ℚ`),
//! where every operation stays rational; values outside ℚ(i) are left to [`crate::mp`].
//!
//! Exact evaluation is what makes `1/2^99` differ from `1/2^98` and `1e-7` from `2e-7` (issue #3:
//! graders that compare floats with an absolute tolerance call these equal). It also makes the
//! identity test of expressions with variables exact: two rational functions that agree at
//! several random rational points are equal with overwhelming probability (Schwartz–Zippel),
//! with no rounding involved. Only values outside ℚ(i) (`\sqrt{2}`, `\pi`, `\sin 1`) go to
//! arbitrary-precision floating point ([`crate::mp`]).
use crate::budget::{Budget, MAX_BITS, MAX_DEPTH};
use crate::expr::{Const, Expr};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, ToPrimitive, Zero};

/// Why a value could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EvalErr {
    /// Not in ℚ(i): evaluate in high precision.
    NotExact,
    /// In ℚ(i) as far as known, but larger than [`MAX_BITS`] allows: no rounded evaluation can
    /// tell such values apart (`2^{10^6}` vs `2^{10^6}+1`), so they are not compared.
    TooBig,
    /// Division by zero, log of zero, ...: the expression has no value here.
    Undefined,
    /// The expression is not a scalar (a set, a relation, text) or names an unknown variable.
    Unsupported,
    /// The step budget ran out.
    Budget,
}

type R<T> = std::result::Result<T, EvalErr>;

/// A Gaussian rational.
#[derive(Debug, Clone, PartialEq)]
pub struct CRat {
    /// Real part.
    pub re: BigRational,
    /// Imaginary part.
    pub im: BigRational,
}

impl CRat {
    fn real(r: BigRational) -> Self {
        Self { re: r, im: BigRational::zero() }
    }
    fn is_zero(&self) -> bool {
        self.re.is_zero() && self.im.is_zero()
    }
    fn is_real(&self) -> bool {
        self.im.is_zero()
    }
    fn bits(&self) -> u64 {
        let b = |r: &BigRational| r.numer().bits() + r.denom().bits();
        b(&self.re) + b(&self.im)
    }
    fn add(&self, o: &CRat) -> CRat {
        CRat { re: &self.re + &o.re, im: &self.im + &o.im }
    }
    fn neg(&self) -> CRat {
        CRat { re: -&self.re, im: -&self.im }
    }
    fn mul(&self, o: &CRat) -> CRat {
        CRat { re: &self.re * &o.re - &self.im * &o.im, im: &self.re * &o.im + &self.im * &o.re }
    }
    fn inv(&self) -> Option<CRat> {
        let d = &self.re * &self.re + &self.im * &self.im;
        if d.is_zero() {
            return None;
        }
        Some(CRat { re: &self.re / &d, im: -&self.im / &d })
    }
}

/// Exact integer n-th root of a non-negative integer, if it is a perfect power.
fn exact_root(n: &BigInt, k: u32) -> Option<BigInt> {
    if n.is_negative() || k == 0 || n.bits() > MAX_BITS {
        return None;
    }
    let r = n.nth_root(k);
    (num_traits::pow(r.clone(), k as usize) == *n).then_some(r)
}

fn rat_root(r: &BigRational, k: u32) -> Option<BigRational> {
    if r.is_negative() {
        if k % 2 == 1 {
            return rat_root(&-r, k).map(|x| -x);
        }
        return None;
    }
    Some(BigRational::new(exact_root(r.numer(), k)?, exact_root(r.denom(), k)?))
}

fn small_int(r: &BigRational) -> Option<i64> {
    if r.is_integer() {
        r.to_integer().to_i64()
    } else {
        None
    }
}

/// Variable assignments for one evaluation point.
pub struct Env<'a, T> {
    /// (name, value) pairs.
    pub vars: &'a [(String, T)],
    /// Real-variable semantics: a square root or logarithm of a negative number is undefined
    /// (so `\sqrt{x}\sqrt{y}` and `\sqrt{xy}` agree wherever both are defined over ℝ).
    pub real: bool,
}

/// Evaluate exactly in ℚ(i).
pub fn exact(e: &Expr, env: &Env<CRat>, b: &Budget, depth: usize) -> R<CRat> {
    if depth > MAX_DEPTH {
        return Err(EvalErr::Unsupported);
    }
    b.charge(1).map_err(|_| EvalErr::Budget)?;
    let d = depth + 1;
    let v = match e {
        Expr::Num(r) | Expr::Dec(r, _) => CRat::real(r.clone()),
        Expr::Sym(s) => env
            .vars
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, v)| v.clone())
            .ok_or(EvalErr::Unsupported)?,
        Expr::Const(Const::I) => CRat { re: BigRational::zero(), im: BigRational::one() },
        Expr::Const(_) => return Err(EvalErr::NotExact),
        Expr::Neg(a) => exact(a, env, b, d)?.neg(),
        Expr::Add(v) => {
            let mut acc = CRat::real(BigRational::zero());
            for x in v {
                acc = acc.add(&exact(x, env, b, d)?);
            }
            acc
        }
        Expr::Mul(v) => {
            let mut acc = CRat::real(BigRational::one());
            for x in v {
                acc = acc.mul(&exact(x, env, b, d)?);
                b.charge(acc.bits() / 256).map_err(|_| EvalErr::Budget)?;
                if acc.bits() > MAX_BITS {
                    return Err(EvalErr::TooBig);
                }
            }
            acc
        }
        Expr::Div(x, y) => {
            let num = exact(x, env, b, d)?;
            let den = exact(y, env, b, d)?;
            num.mul(&den.inv().ok_or(EvalErr::Undefined)?)
        }
        Expr::Percent(x) => {
            exact(x, env, b, d)?.mul(&CRat::real(BigRational::new(1.into(), 100.into())))
        }
        Expr::Pow(x, y) => {
            let base = exact(x, env, b, d)?;
            let ex = exact(y, env, b, d)?;
            if !ex.is_real() {
                return Err(EvalErr::NotExact);
            }
            pow_exact(&base, &ex.re, b, env.real)?
        }
        Expr::Func(name, args) => {
            let a0 = args.first().ok_or(EvalErr::Unsupported)?;
            let x = exact(a0, env, b, d)?;
            match (name.as_str(), args.len()) {
                ("sqrt", 1) => pow_exact(&x, &BigRational::new(1.into(), 2.into()), b, env.real)?,
                ("root", 2) => {
                    let n = exact(&args[1], env, b, d)?;
                    if !n.is_real() || n.re.is_zero() {
                        return Err(EvalErr::NotExact);
                    }
                    pow_exact(&x, &n.re.recip(), b, env.real)?
                }
                ("abs", 1) if x.is_real() => CRat::real(x.re.abs()),
                ("fact", 1) => {
                    let n = if x.is_real() { small_int(&x.re) } else { None };
                    match n {
                        Some(n) if (0..=2000).contains(&n) => {
                            b.charge(n as u64).map_err(|_| EvalErr::Budget)?;
                            let mut acc = BigInt::one();
                            for k in 2..=n {
                                acc *= k;
                            }
                            CRat::real(BigRational::from_integer(acc))
                        }
                        Some(n) if n < 0 => return Err(EvalErr::Undefined),
                        Some(_) => return Err(EvalErr::TooBig),
                        _ => return Err(EvalErr::NotExact),
                    }
                }
                ("binom", 2) => {
                    let k = exact(&args[1], env, b, d)?;
                    let (n, k) =
                        match (x.is_real() && k.is_real(), small_int(&x.re), small_int(&k.re)) {
                            (true, Some(n), Some(k)) => (n, k),
                            _ => return Err(EvalErr::NotExact),
                        };
                    if k < 0 || n < 0 || k > n {
                        CRat::real(BigRational::zero())
                    } else if n > 5000 {
                        return Err(EvalErr::TooBig);
                    } else {
                        b.charge(k as u64).map_err(|_| EvalErr::Budget)?;
                        let mut acc = BigInt::one();
                        for j in 0..k.min(n - k) {
                            acc = acc * (n - j) / (j + 1);
                        }
                        CRat::real(BigRational::from_integer(acc))
                    }
                }
                // Exact special values of transcendental functions.
                ("ln", 1) | ("log", 1) if x == CRat::real(BigRational::one()) => {
                    CRat::real(BigRational::zero())
                }
                ("exp", 1) | ("cos", 1) | ("cosh", 1) | ("sec", 1) if x.is_zero() => {
                    CRat::real(BigRational::one())
                }
                ("sin", 1)
                | ("tan", 1)
                | ("sinh", 1)
                | ("tanh", 1)
                | ("arcsin", 1)
                | ("arctan", 1)
                    if x.is_zero() =>
                {
                    x
                }
                ("log", 2) => {
                    // log_b(x) exact when x = b^k for a small integer k.
                    let base = exact(&args[1], env, b, d)?;
                    if x.is_real()
                        && base.is_real()
                        && base.re.is_positive()
                        && base.re != BigRational::one()
                    {
                        let mut p = BigRational::one();
                        for k in 0..=64i64 {
                            if p == x.re {
                                return Ok(CRat::real(BigRational::from_integer(k.into())));
                            }
                            if p.abs()
                                > x.re.abs() * BigRational::from_integer(1_000_000.into())
                                    + BigRational::one()
                            {
                                break;
                            }
                            p *= &base.re;
                        }
                    }
                    return Err(EvalErr::NotExact);
                }
                _ => return Err(EvalErr::NotExact),
            }
        }
        _ => return Err(EvalErr::Unsupported),
    };
    if v.bits() > MAX_BITS {
        return Err(EvalErr::TooBig);
    }
    Ok(v)
}

fn pow_exact(base: &CRat, ex: &BigRational, b: &Budget, real: bool) -> R<CRat> {
    if ex.is_integer() {
        let n = ex.to_integer().to_i64().ok_or(EvalErr::NotExact)?;
        if base.is_zero() {
            return match n.signum() {
                1 => Ok(base.clone()),
                0 => Ok(CRat::real(BigRational::one())),
                _ => Err(EvalErr::Undefined),
            };
        }
        let one = CRat::real(BigRational::one());
        if base == &one {
            return Ok(one);
        }
        // Bit size of the result is about |n| * bits(base): refuse before computing.
        let est = base.bits().saturating_mul(n.unsigned_abs());
        if est > MAX_BITS * 2 {
            return Err(EvalErr::TooBig);
        }
        b.charge(est / 64 + 1).map_err(|_| EvalErr::Budget)?;
        let mut acc = one;
        let mut sq = base.clone();
        let mut k = n.unsigned_abs();
        while k > 0 {
            if k & 1 == 1 {
                acc = acc.mul(&sq);
            }
            k >>= 1;
            if k > 0 {
                sq = sq.mul(&sq);
            }
        }
        return if n < 0 { acc.inv().ok_or(EvalErr::Undefined) } else { Ok(acc) };
    }
    // Rational exponent p/q: exact only for real perfect powers.
    if !base.is_real() {
        return Err(EvalErr::NotExact);
    }
    let q = ex.denom().to_u32().ok_or(EvalErr::NotExact)?;
    if q > 64 {
        return Err(EvalErr::NotExact);
    }
    let r = if base.re.is_negative() && q % 2 == 0 {
        // (-a)^(1/2) = i a^(1/2) for the principal square root.
        if real {
            return Err(EvalErr::Undefined);
        }
        if q == 2 {
            let pos = rat_root(&-base.re.clone(), 2).ok_or(EvalErr::NotExact)?;
            CRat { re: BigRational::zero(), im: pos }
        } else {
            return Err(EvalErr::NotExact);
        }
    } else {
        CRat::real(rat_root(&base.re, q).ok_or(EvalErr::NotExact)?)
    };
    pow_exact(&r, &BigRational::from_integer(ex.numer().clone()), b, real)
}
