//! Evaluation of expression trees in arbitrary-precision complex floating point, for values
//! outside ℚ(i) (`\sqrt 2`, `\pi`, `e^{\pi\sqrt{163}}`, `\sin 1`).
//!
//! Issue #3 asks that expressions which cannot be compared exactly be compared "at several random
//! points in high precision". Double precision is not enough: `e^{\pi\sqrt{163}}` and the integer
//! 262537412640768744 agree to 12 significant digits, `\pi` and `355/113` to 7, and a relative
//! tolerance loose enough to absorb `f64` cancellation calls such pairs equal. Here a value is
//! computed twice, at a low and a high precision, and [`decide`] says whether they are equal:
//! rounding noise shrinks by about `2^-(hi-lo)` between the two runs, a true difference does
//! not. (Precisions: [`Levels`]; defaults 128 and 256 bits, and 192 when needed.) That needs no error analysis of the expression (cancellation, `\sin` of a large argument,
//! `\sqrt{}` near zero all just show up as noise that shrinks), and it gives the tolerance in terms
//! of the working precision: two values are equal when they agree to `hi - GUARD` bits relative
//! to their size, or when their difference shrank like rounding noise when the precision doubled.
//!
//! Arithmetic is the pure-Rust `astro-float-num` crate (the number core of `astro-float`,
//! without its `expr!` macro, so no `syn` 1.x in the build). It was chosen over `dashu-float`
//! because it has the whole set of elementary functions the answers use (exp, ln, sin, cos, tan,
//! asin, acos, atan, sinh, cosh, tanh, pow, sqrt) with argument reduction for large arguments,
//! whereas `dashu-float` has exp/ln/powf but no trigonometric functions; and C libraries (MPFR via
//! `rug`) are ruled out by the project. `RoundingMode::None` is used throughout: results are
//! faithful to about one unit in the last place, which is all [`decide`] needs, and it skips the
//! correct-rounding retry loop (Ziv's strategy), whose length depends on the input.
//!
//! Complex values are pairs of real big floats; the imaginary part stays exactly zero through
//! real arithmetic, so real answers take the real code paths of the library. Semantics follow
//! the usual complex functions (principal branches; with real-variable semantics a square root or
//! logarithm of a negative number is undefined), except that a negative base to a rational power
//! with an odd denominator is real, as in [`crate::eval::exact`] (`(-2)^{1/3} = -\sqrt[3]2`).
//!
//! Every operation is charged to the [`Budget`] in proportion to the precision, transcendental
//! functions more; arguments whose size would make argument reduction expensive (`\sin 10^{30}`)
//! are refused ([`EvalErr::Unsupported`]), so evaluation time stays bounded by the budget.
use crate::budget::{Budget, MAX_DEPTH};
use crate::eval::{self, CRat, Env, EvalErr};
use crate::expr::{Const, Expr};
use astro_float_num::{BigFloat, Consts, RoundingMode, Sign, Word};
use num_bigint::{BigInt, Sign as BigSign};
use num_rational::BigRational;
use num_traits::{ToPrimitive, Zero};
use std::cell::RefCell;

/// Bits of the highest precision not trusted when two values are compared directly.
pub const GUARD: usize = 32;

/// The working precisions of one comparison, from [`Config::precision_bits`](crate::Config):
/// `hi` (default 256 bits), `lo` = `hi`/2 and `mid` halfway, each a whole number of 64-bit words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Levels {
    /// The lower precision (bits).
    pub lo: usize,
    /// The middle precision, used only when the low one cannot tell (see [`decide`]).
    pub mid: usize,
    /// The higher precision.
    pub hi: usize,
}

impl Levels {
    /// Levels for a highest precision of `bits` (clamped to 256..=4096).
    pub fn new(bits: usize) -> Self {
        let words = |b: usize| b.div_ceil(64) * 64;
        let hi = words(bits.clamp(256, 4096));
        let lo = words(hi / 2);
        Self { lo, mid: words((lo + hi) / 2), hi }
    }
    /// The highest precision as a [`Prec`].
    pub fn hi_prec(&self) -> Prec {
        Prec::new(self.hi)
    }
}

/// Largest binary exponent of a trigonometric argument (|x| < 2^64): reducing a larger argument
/// modulo π needs π to more bits than the argument has, which the budget should not pay for.
const MAX_TRIG_EXP: i32 = 64;
/// Largest binary exponent of an `exp`/`sinh`/`cosh` argument (|x| < 2^40): beyond it the value
/// is outside every representable range anyway.
const MAX_EXP_EXP: i32 = 40;
/// Largest integer power computed by repeated squaring; larger ones go through exp/ln.
const MAX_POWI: u64 = 1 << 20;

const RM: RoundingMode = RoundingMode::None;

type R<T> = std::result::Result<T, EvalErr>;

thread_local! {
    // π, e and ln 2 are cached per thread by the library's constant cache; a value computed at a
    // given precision is always the same, so sharing the cache across comparisons changes no
    // verdict (and no state is shared between threads).
    static CONSTS: RefCell<Option<Consts>> = const { RefCell::new(None) };
}

/// Run `f` with this thread's constant cache.
fn with_cc<T>(f: impl FnOnce(&mut Consts) -> T) -> R<T> {
    CONSTS.with(|c| {
        let mut c = c.try_borrow_mut().map_err(|_| EvalErr::Unsupported)?;
        if c.is_none() {
            *c = Some(Consts::new().map_err(|_| EvalErr::Unsupported)?);
        }
        match c.as_mut() {
            Some(cc) => Ok(f(cc)),
            None => Err(EvalErr::Unsupported),
        }
    })
}

/// A complex big float.
#[derive(Debug, Clone)]
pub struct MpC {
    /// Real part.
    pub re: BigFloat,
    /// Imaginary part (exactly zero for real values).
    pub im: BigFloat,
}

/// The precision of one evaluation and its cost per operation.
#[derive(Debug, Clone, Copy)]
pub struct Prec {
    p: usize,
}

impl Prec {
    /// Evaluation at `bits` bits (rounded up to whole 64-bit words by the library).
    pub fn new(bits: usize) -> Self {
        Self { p: bits.max(64) }
    }
    fn words(&self) -> u64 {
        (self.p as u64).div_ceil(64)
    }
    /// Charge an arithmetic operation.
    fn op(&self, b: &Budget) -> R<()> {
        b.charge(1 + self.words()).map_err(|_| EvalErr::Budget)
    }
    /// Charge a transcendental function (series evaluation: tens of multiplications).
    fn func(&self, b: &Budget) -> R<()> {
        b.charge(20 * self.words() * self.words()).map_err(|_| EvalErr::Budget)
    }
    fn zero(&self) -> BigFloat {
        BigFloat::new(self.p)
    }
    fn int(&self, n: i64) -> BigFloat {
        BigFloat::from_i64(n, self.p)
    }
}

fn is_zero(x: &BigFloat) -> bool {
    x.is_zero()
}

fn is_neg(x: &BigFloat) -> bool {
    x.is_negative() && !x.is_zero()
}

/// Whether a computed value is a number we can use (NaN means the library hit an invalid case).
fn check(x: BigFloat) -> R<BigFloat> {
    if x.is_nan() {
        Err(EvalErr::Undefined)
    } else {
        Ok(x)
    }
}

fn exp2(x: &BigFloat) -> i32 {
    x.exponent().unwrap_or(i32::MAX)
}

/// A big integer as a big float, keeping its top `p + 64` bits (relative error below 2^-(p+64)).
fn int_to_bf(n: &BigInt, pr: Prec) -> BigFloat {
    let (sign, mag) = n.clone().into_parts();
    if mag.is_zero() {
        return pr.zero();
    }
    let bits = mag.bits();
    let keep = pr.p as u64 + 64;
    let (m, shift) = if bits > keep { (mag >> (bits - keep), bits - keep) } else { (mag, 0) };
    let words: Vec<Word> = m.to_u64_digits();
    let e = (words.len() as u64 * 64).saturating_add(shift);
    let s = if sign == BigSign::Minus { Sign::Neg } else { Sign::Pos };
    let Ok(e) = i32::try_from(e) else {
        return if s == Sign::Neg { astro_float_num::INF_NEG } else { astro_float_num::INF_POS };
    };
    BigFloat::from_words(&words, s, e)
}

/// A rational as a big float at precision `pr`.
pub fn rat_to_bf(r: &BigRational, pr: Prec) -> BigFloat {
    let n = int_to_bf(r.numer(), pr);
    if r.denom() == &BigInt::from(1) {
        return n;
    }
    n.div(&int_to_bf(r.denom(), pr), pr.p, RM)
}

impl MpC {
    fn real(re: BigFloat, pr: Prec) -> Self {
        Self { re, im: pr.zero() }
    }
    /// The imaginary part alone, as a (real) complex value.
    pub fn im_part(&self, pr: Prec) -> Self {
        Self::real(self.im.clone(), pr)
    }
    /// Whether the real part is > 0.
    pub fn re_positive(&self) -> bool {
        self.re.is_positive() && !self.re.is_zero()
    }
    /// x / y (`Undefined` for y = 0).
    pub fn quotient(&self, y: &MpC, pr: Prec) -> R<MpC> {
        self.div(y, pr)
    }
    /// A Gaussian rational at precision `pr`.
    pub fn from_crat(c: &CRat, pr: Prec) -> Self {
        Self { re: rat_to_bf(&c.re, pr), im: rat_to_bf(&c.im, pr) }
    }
    /// Whether the imaginary part is exactly zero.
    pub fn is_real(&self) -> bool {
        is_zero(&self.im)
    }
    fn is_zero(&self) -> bool {
        is_zero(&self.re) && is_zero(&self.im)
    }
    /// Whether either part is infinite.
    pub fn is_inf(&self) -> bool {
        self.re.is_inf() || self.im.is_inf()
    }
    fn add(&self, o: &MpC, pr: Prec) -> MpC {
        MpC { re: self.re.add(&o.re, pr.p, RM), im: self.im.add(&o.im, pr.p, RM) }
    }
    fn sub(&self, o: &MpC, pr: Prec) -> MpC {
        MpC { re: self.re.sub(&o.re, pr.p, RM), im: self.im.sub(&o.im, pr.p, RM) }
    }
    fn neg(&self) -> MpC {
        MpC { re: self.re.neg(), im: self.im.neg() }
    }
    fn mul(&self, o: &MpC, pr: Prec) -> MpC {
        if self.is_real() && o.is_real() {
            return MpC::real(self.re.mul(&o.re, pr.p, RM), pr);
        }
        let p = pr.p;
        let re = self.re.mul(&o.re, p, RM).sub(&self.im.mul(&o.im, p, RM), p, RM);
        let im = self.re.mul(&o.im, p, RM).add(&self.im.mul(&o.re, p, RM), p, RM);
        MpC { re, im }
    }
    fn scale(&self, k: &BigFloat, pr: Prec) -> MpC {
        MpC { re: self.re.mul(k, pr.p, RM), im: self.im.mul(k, pr.p, RM) }
    }
    fn div(&self, o: &MpC, pr: Prec) -> R<MpC> {
        if o.is_zero() {
            return Err(EvalErr::Undefined);
        }
        let p = pr.p;
        if o.is_real() {
            return Ok(MpC { re: self.re.div(&o.re, p, RM), im: self.im.div(&o.re, p, RM) });
        }
        let d = o.re.mul(&o.re, p, RM).add(&o.im.mul(&o.im, p, RM), p, RM);
        let conj = MpC { re: o.re.clone(), im: o.im.neg() };
        let n = self.mul(&conj, pr);
        Ok(MpC { re: n.re.div(&d, p, RM), im: n.im.div(&d, p, RM) })
    }
    /// |z|.
    fn norm(&self, pr: Prec) -> BigFloat {
        if self.is_real() {
            return self.re.abs();
        }
        if is_zero(&self.re) {
            return self.im.abs();
        }
        let p = pr.p;
        self.re.mul(&self.re, p, RM).add(&self.im.mul(&self.im, p, RM), p, RM).sqrt(p, RM)
    }
    /// max(|re|, |im|): a cheap size for tolerances.
    pub fn size(&self) -> BigFloat {
        let (a, b) = (self.re.abs(), self.im.abs());
        if a.cmp(&b).is_some_and(|c| c >= 0) {
            a
        } else {
            b
        }
    }
}

fn i_unit(pr: Prec) -> MpC {
    MpC { re: pr.zero(), im: pr.int(1) }
}

/// Principal square root.
fn csqrt(z: &MpC, pr: Prec) -> R<MpC> {
    let p = pr.p;
    if z.is_real() {
        return Ok(if is_neg(&z.re) {
            MpC { re: pr.zero(), im: check(z.re.neg().sqrt(p, RM))? }
        } else {
            MpC::real(check(z.re.sqrt(p, RM))?, pr)
        });
    }
    // sqrt(a+bi): t = sqrt((|z|+|a|)/2) computed without cancellation, the other part b/(2t).
    let r = z.norm(pr);
    let two = pr.int(2);
    let t = check(r.add(&z.re.abs(), p, RM).div(&two, p, RM).sqrt(p, RM))?;
    if is_zero(&t) {
        return Ok(MpC::real(pr.zero(), pr));
    }
    let other = z.im.div(&t.mul(&two, p, RM), p, RM);
    Ok(if is_neg(&z.re) {
        let im = if is_neg(&z.im) { t.neg() } else { t };
        MpC { re: other.abs(), im }
    } else {
        MpC { re: t, im: other }
    })
}

/// atan2(y, x) in (-π, π].
fn atan2(y: &BigFloat, x: &BigFloat, pr: Prec) -> R<BigFloat> {
    let p = pr.p;
    let pi = with_cc(|cc| cc.pi(p, RM))?;
    if is_zero(x) {
        if is_zero(y) {
            return Ok(pr.zero());
        }
        let half = pi.div(&pr.int(2), p, RM);
        return Ok(if is_neg(y) { half.neg() } else { half });
    }
    let a = with_cc(|cc| y.div(x, p, RM).atan(p, RM, cc))?;
    Ok(if is_neg(x) {
        if is_neg(y) {
            a.sub(&pi, p, RM)
        } else {
            a.add(&pi, p, RM)
        }
    } else {
        a
    })
}

/// Principal natural logarithm.
fn cln(z: &MpC, pr: Prec) -> R<MpC> {
    if z.is_zero() {
        return Err(EvalErr::Undefined);
    }
    let p = pr.p;
    if z.is_real() && !is_neg(&z.re) {
        return Ok(MpC::real(check(with_cc(|cc| z.re.ln(p, RM, cc))?)?, pr));
    }
    let r = z.norm(pr);
    let re = check(with_cc(|cc| r.ln(p, RM, cc))?)?;
    Ok(MpC { re, im: atan2(&z.im, &z.re, pr)? })
}

fn guard_exp(x: &BigFloat, max: i32) -> R<()> {
    if x.is_inf() || (!x.is_zero() && exp2(x) > max) {
        Err(EvalErr::Unsupported)
    } else {
        Ok(())
    }
}

fn rexp(x: &BigFloat, pr: Prec) -> R<BigFloat> {
    guard_exp(x, MAX_EXP_EXP)?;
    check(with_cc(|cc| x.exp(pr.p, RM, cc))?)
}

fn rsin(x: &BigFloat, pr: Prec) -> R<BigFloat> {
    guard_exp(x, MAX_TRIG_EXP)?;
    check(with_cc(|cc| x.sin(pr.p, RM, cc))?)
}

fn rcos(x: &BigFloat, pr: Prec) -> R<BigFloat> {
    guard_exp(x, MAX_TRIG_EXP)?;
    check(with_cc(|cc| x.cos(pr.p, RM, cc))?)
}

fn rsinh(x: &BigFloat, pr: Prec) -> R<BigFloat> {
    guard_exp(x, MAX_EXP_EXP)?;
    check(with_cc(|cc| x.sinh(pr.p, RM, cc))?)
}

fn rcosh(x: &BigFloat, pr: Prec) -> R<BigFloat> {
    guard_exp(x, MAX_EXP_EXP)?;
    check(with_cc(|cc| x.cosh(pr.p, RM, cc))?)
}

fn cexp(z: &MpC, pr: Prec) -> R<MpC> {
    let m = rexp(&z.re, pr)?;
    if z.is_real() {
        return Ok(MpC::real(m, pr));
    }
    let p = pr.p;
    Ok(MpC { re: m.mul(&rcos(&z.im, pr)?, p, RM), im: m.mul(&rsin(&z.im, pr)?, p, RM) })
}

fn csin(z: &MpC, pr: Prec) -> R<MpC> {
    if z.is_real() {
        return Ok(MpC::real(rsin(&z.re, pr)?, pr));
    }
    let p = pr.p;
    let re = rsin(&z.re, pr)?.mul(&rcosh(&z.im, pr)?, p, RM);
    let im = rcos(&z.re, pr)?.mul(&rsinh(&z.im, pr)?, p, RM);
    Ok(MpC { re, im })
}

fn ccos(z: &MpC, pr: Prec) -> R<MpC> {
    if z.is_real() {
        return Ok(MpC::real(rcos(&z.re, pr)?, pr));
    }
    let p = pr.p;
    let re = rcos(&z.re, pr)?.mul(&rcosh(&z.im, pr)?, p, RM);
    let im = rsin(&z.re, pr)?.mul(&rsinh(&z.im, pr)?, p, RM).neg();
    Ok(MpC { re, im })
}

fn csinh(z: &MpC, pr: Prec) -> R<MpC> {
    if z.is_real() {
        return Ok(MpC::real(rsinh(&z.re, pr)?, pr));
    }
    // sinh z = -i sin(iz)
    let iz = i_unit(pr).mul(z, pr);
    Ok(i_unit(pr).mul(&csin(&iz, pr)?, pr).neg())
}

fn ccosh(z: &MpC, pr: Prec) -> R<MpC> {
    if z.is_real() {
        return Ok(MpC::real(rcosh(&z.re, pr)?, pr));
    }
    // cosh z = cos(iz)
    ccos(&i_unit(pr).mul(z, pr), pr)
}

/// Principal arcsine: -i ln(iz + sqrt(1 - z²)).
fn casin(z: &MpC, pr: Prec) -> R<MpC> {
    let one = MpC::real(pr.int(1), pr);
    if z.is_real() && z.re.abs().cmp(&one.re).is_some_and(|c| c <= 0) {
        return Ok(MpC::real(check(with_cc(|cc| z.re.asin(pr.p, RM, cc))?)?, pr));
    }
    let w = i_unit(pr).mul(z, pr).add(&csqrt(&one.sub(&z.mul(z, pr), pr), pr)?, pr);
    Ok(i_unit(pr).mul(&cln(&w, pr)?, pr).neg())
}

/// Principal arctangent: (i/2)(ln(1 - iz) - ln(1 + iz)).
fn catan(z: &MpC, pr: Prec) -> R<MpC> {
    if z.is_real() {
        return Ok(MpC::real(check(with_cc(|cc| z.re.atan(pr.p, RM, cc))?)?, pr));
    }
    let one = MpC::real(pr.int(1), pr);
    let iz = i_unit(pr).mul(z, pr);
    let d = cln(&one.sub(&iz, pr), pr)?.sub(&cln(&one.add(&iz, pr), pr)?, pr);
    let half = pr.int(1).div(&pr.int(2), pr.p, RM);
    Ok(i_unit(pr).mul(&d, pr).scale(&half, pr))
}

/// z^n for an integer n by repeated squaring.
fn cpowi(z: &MpC, n: i64, pr: Prec, b: &Budget) -> R<MpC> {
    if z.is_zero() {
        return match n.signum() {
            1 => Ok(z.clone()),
            0 => Ok(MpC::real(pr.int(1), pr)),
            _ => Err(EvalErr::Undefined),
        };
    }
    if z.is_real() {
        let r = z.re.powi(n.unsigned_abs() as usize, pr.p, RM);
        let r = if n < 0 { pr.int(1).div(&r, pr.p, RM) } else { r };
        return Ok(MpC::real(check(r)?, pr));
    }
    let mut acc = MpC::real(pr.int(1), pr);
    let mut sq = z.clone();
    let mut k = n.unsigned_abs();
    while k > 0 {
        pr.op(b)?;
        if k & 1 == 1 {
            acc = acc.mul(&sq, pr);
        }
        k >>= 1;
        if k > 0 {
            sq = sq.mul(&sq, pr);
        }
    }
    if n < 0 {
        MpC::real(pr.int(1), pr).div(&acc, pr)
    } else {
        Ok(acc)
    }
}

/// base^ex. `ex_exact` is the exponent's exact rational value when it has one.
fn cpow(base: &MpC, ex: &MpC, ex_exact: Option<&BigRational>, pr: Prec, b: &Budget, real: bool) -> R<MpC> {
    if let Some(q) = ex_exact {
        if q.is_integer() {
            if let Some(n) = q.to_integer().to_i64().filter(|n| n.unsigned_abs() <= MAX_POWI) {
                return cpowi(base, n, pr, b);
            }
        } else if base.is_real() && is_neg(&base.re) {
            // A negative base to p/q: real for odd q (as exact evaluation does), undefined
            // for even q over the reals, principal value otherwise.
            let odd = q.denom().bits() <= 64 && (q.denom() % 2u32) == BigInt::from(1);
            if odd {
                let mag = MpC::real(base.re.abs(), pr);
                let v = cpow(&mag, ex, None, pr, b, real)?;
                let numer_odd = (q.numer() % 2u32) != BigInt::from(0);
                return Ok(if numer_odd { v.neg() } else { v });
            }
            if real {
                return Err(EvalErr::Undefined);
            }
        }
    }
    if base.is_zero() {
        return if ex.is_real() && is_neg(&ex.re) { Err(EvalErr::Undefined) } else { Ok(base.clone()) };
    }
    if real && base.is_real() && is_neg(&base.re) {
        return Err(EvalErr::Undefined);
    }
    if base.is_real() && !is_neg(&base.re) && ex.is_real() {
        // x^y = exp(y ln x); the library's pow does this with the right extra precision.
        let guard = with_cc(|cc| base.re.ln(64, RM, cc))?.mul(&ex.re, 64, RM);
        guard_exp(&guard, MAX_EXP_EXP)?;
        return Ok(MpC::real(check(with_cc(|cc| base.re.pow(&ex.re, pr.p, RM, cc))?)?, pr));
    }
    cexp(&cln(base, pr)?.mul(ex, pr), pr)
}

/// Evaluate `e` at precision `pr`; variables take the (exact) values in `env`.
pub fn eval(e: &Expr, env: &Env<CRat>, pr: Prec, b: &Budget, depth: usize) -> R<MpC> {
    if depth > MAX_DEPTH {
        return Err(EvalErr::Unsupported);
    }
    pr.op(b)?;
    let d = depth + 1;
    let v = match e {
        Expr::Num(r) | Expr::Dec(r, _) => MpC::real(rat_to_bf(r, pr), pr),
        Expr::Sym(s) => env
            .vars
            .iter()
            .find(|(n, _)| n == s)
            .map(|(_, v)| MpC::from_crat(v, pr))
            .ok_or(EvalErr::Unsupported)?,
        Expr::Const(c) => match c {
            Const::Pi => MpC::real(with_cc(|cc| cc.pi(pr.p, RM))?, pr),
            Const::E => MpC::real(with_cc(|cc| cc.e(pr.p, RM))?, pr),
            Const::I => i_unit(pr),
            Const::Inf => MpC::real(astro_float_num::INF_POS, pr),
        },
        Expr::Neg(a) => eval(a, env, pr, b, d)?.neg(),
        Expr::Add(v) => {
            let mut acc = MpC::real(pr.zero(), pr);
            for x in v {
                acc = acc.add(&eval(x, env, pr, b, d)?, pr);
                pr.op(b)?;
            }
            acc
        }
        Expr::Mul(v) => {
            let mut acc = MpC::real(pr.int(1), pr);
            for x in v {
                acc = acc.mul(&eval(x, env, pr, b, d)?, pr);
                pr.op(b)?;
            }
            acc
        }
        Expr::Div(x, y) => {
            let den = eval(y, env, pr, b, d)?;
            eval(x, env, pr, b, d)?.div(&den, pr)?
        }
        Expr::Percent(x) => eval(x, env, pr, b, d)?.div(&MpC::real(pr.int(100), pr), pr)?,
        Expr::Pow(x, y) => {
            let base = eval(x, env, pr, b, d)?;
            let ex = eval(y, env, pr, b, d)?;
            let ex_exact = exact_real(y, env, b);
            pr.func(b)?;
            if env.real
                && base.is_real()
                && is_neg(&base.re)
                && !ex_exact.as_ref().is_some_and(|q| q.is_integer() || odd_denominator(q))
            {
                return Err(EvalErr::Undefined);
            }
            cpow(&base, &ex, ex_exact.as_ref(), pr, b, env.real)?
        }
        Expr::Func(name, args) => func(name, args, env, pr, b, d)?,
        _ => return Err(EvalErr::Unsupported),
    };
    if v.re.is_nan() || v.im.is_nan() {
        return Err(EvalErr::Undefined);
    }
    Ok(v)
}

fn odd_denominator(q: &BigRational) -> bool {
    (q.denom() % 2u32) == BigInt::from(1)
}

/// The exact real value of a subexpression, if it has one (exponents and root degrees decide
/// branches, which a rounded value cannot).
fn exact_real(e: &Expr, env: &Env<CRat>, b: &Budget) -> Option<BigRational> {
    match eval::exact(e, env, b, 0) {
        Ok(c) if c.im.is_zero() => Some(c.re),
        _ => None,
    }
}

fn func(name: &str, args: &[Expr], env: &Env<CRat>, pr: Prec, b: &Budget, d: usize) -> R<MpC> {
    let a0 = args.first().ok_or(EvalErr::Unsupported)?;
    let x = eval(a0, env, pr, b, d)?;
    pr.func(b)?;
    let neg = x.is_real() && is_neg(&x.re);
    if env.real {
        let one = pr.int(1);
        let bad = match name {
            "sqrt" => neg,
            "ln" | "log" => neg || x.is_zero(),
            "arcsin" | "arccos" => x.is_real() && x.re.abs().cmp(&one).is_some_and(|c| c > 0),
            _ => false,
        };
        if bad {
            return Err(EvalErr::Undefined);
        }
    }
    let one = MpC::real(pr.int(1), pr);
    Ok(match (name, args.len()) {
        ("sqrt", 1) => csqrt(&x, pr)?,
        ("root", 2) => {
            let n = exact_real(&args[1], env, b).ok_or(EvalErr::Unsupported)?;
            if n.is_zero() {
                return Err(EvalErr::Undefined);
            }
            let ex = n.recip();
            let exm = MpC::real(rat_to_bf(&ex, pr), pr);
            if neg && env.real && !odd_denominator(&ex) {
                return Err(EvalErr::Undefined);
            }
            cpow(&x, &exm, Some(&ex), pr, b, env.real)?
        }
        ("abs", 1) => MpC::real(x.norm(pr), pr),
        ("fact", 1) | ("binom", 2) => {
            // Integer arguments were handled exactly; a non-integer (or complex) one has no
            // value here, as in floating point.
            return Err(EvalErr::Undefined);
        }
        ("ln", 1) | ("log", 1) => cln(&x, pr)?,
        ("log", 2) => {
            let base = eval(&args[1], env, pr, b, d)?;
            let lb = cln(&base, pr)?;
            if lb.is_zero() {
                return Err(EvalErr::Undefined);
            }
            cln(&x, pr)?.div(&lb, pr)?
        }
        ("exp", 1) => cexp(&x, pr)?,
        ("sin", 1) => csin(&x, pr)?,
        ("cos", 1) => ccos(&x, pr)?,
        ("tan", 1) => csin(&x, pr)?.div(&ccos(&x, pr)?, pr)?,
        ("sec", 1) => one.div(&ccos(&x, pr)?, pr)?,
        ("csc", 1) => one.div(&csin(&x, pr)?, pr)?,
        ("cot", 1) => ccos(&x, pr)?.div(&csin(&x, pr)?, pr)?,
        ("arcsin", 1) => casin(&x, pr)?,
        ("arccos", 1) => {
            if x.is_real() && x.re.abs().cmp(&one.re).is_some_and(|c| c <= 0) {
                MpC::real(check(with_cc(|cc| x.re.acos(pr.p, RM, cc))?)?, pr)
            } else {
                // acos z = π/2 - asin z
                let half_pi = with_cc(|cc| cc.pi(pr.p, RM))?.div(&pr.int(2), pr.p, RM);
                MpC::real(half_pi, pr).sub(&casin(&x, pr)?, pr)
            }
        }
        ("arctan", 1) => catan(&x, pr)?,
        ("sinh", 1) => csinh(&x, pr)?,
        ("cosh", 1) => ccosh(&x, pr)?,
        ("tanh", 1) => csinh(&x, pr)?.div(&ccosh(&x, pr)?, pr)?,
        _ => return Err(EvalErr::Unsupported),
    })
}

/// The outcome of a high-precision comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Same {
    /// Equal to the working precision.
    Equal,
    /// Different.
    Different,
    /// A value overflowed (or is `\infty`): the caller decides.
    Infinite,
}

fn larger(a: BigFloat, b: BigFloat) -> BigFloat {
    if a.cmp(&b).is_some_and(|c| c >= 0) {
        a
    } else {
        b
    }
}

/// max(|re|, |im|) of x - y, computed with extra bits so that the subtraction itself is exact
/// for operands of similar size.
fn diff(x: &MpC, y: &MpC) -> BigFloat {
    let p = x.re.precision().unwrap_or(64).max(y.re.precision().unwrap_or(64)) + 64;
    x.sub(y, Prec::new(p)).size()
}

/// Decide whether two values are equal, from `at(precision)`, which computes both of them at
/// the given precision.
///
/// Equal when at `hi` bits they agree to `hi - GUARD` bits of their size, or when their
/// difference shrank by at least `2^((hi-lo)/2)` from `lo` to `hi` bits: that is rounding
/// noise, whatever cancellation or ill-conditioning produced it, while a true difference stays
/// put. So a difference larger than about `2^-(lo + (hi-lo)/2)` (`2^-192` at the default
/// 256 bits) times the size of the intermediate values is always seen, and `\sqrt2 + \sqrt3` vs
/// `\sqrt{5+2\sqrt6}` is equal however the roundings fall. When the two values are identical at
/// `lo` bits (no noise to watch shrink, as in `\ln 8 - 3\ln 2` vs `0` when the low-precision
/// roundings happen to cancel), a third evaluation at `mid` bits takes the low one's place.
pub fn decide(lv: Levels, mut at: impl FnMut(Prec) -> R<(MpC, MpC)>) -> R<Same> {
    let (xl, yl) = at(Prec::new(lv.lo))?;
    let (xh, yh) = at(Prec::new(lv.hi))?;
    if [&xl, &yl, &xh, &yh].iter().any(|v| v.is_inf()) {
        return Ok(Same::Infinite);
    }
    let d_hi = diff(&xh, &yh);
    if d_hi.is_zero() {
        return Ok(Same::Equal);
    }
    let mag = larger(xh.size(), yh.size());
    if !mag.is_zero() && exp2(&d_hi) as i64 - exp2(&mag) as i64 <= -((lv.hi - GUARD) as i64) {
        return Ok(Same::Equal);
    }
    let d_lo = diff(&xl, &yl);
    let (d_ref, dp) = if d_lo.is_zero() {
        let (xm, ym) = at(Prec::new(lv.mid))?;
        if xm.is_inf() || ym.is_inf() {
            return Ok(Same::Infinite);
        }
        let d_mid = diff(&xm, &ym);
        if d_mid.is_zero() {
            return Ok(Same::Equal);
        }
        (d_mid, lv.hi - lv.mid)
    } else {
        (d_lo, lv.hi - lv.lo)
    };
    Ok(if exp2(&d_hi) as i64 - exp2(&d_ref) as i64 <= -((dp / 2) as i64) {
        Same::Equal
    } else {
        Same::Different
    })
}

/// Whether `e` is zero (in the sense of [`decide`]) at `env`.
pub fn is_zero_at(lv: Levels, v: impl FnMut(Prec) -> R<MpC>) -> R<bool> {
    let mut v = v;
    Ok(decide(lv, |pr| Ok((v(pr)?, MpC::real(pr.zero(), pr))))? == Same::Equal)
}

/// Both infinite in the same direction (`\infty` vs `2\infty`).
pub fn same_infinity(x: &MpC, y: &MpC) -> bool {
    x.is_inf()
        && y.is_inf()
        && x.re.is_inf_pos() == y.re.is_inf_pos()
        && x.re.is_inf_neg() == y.re.is_inf_neg()
        && x.im.is_inf_pos() == y.im.is_inf_pos()
        && x.im.is_inf_neg() == y.im.is_inf_neg()
}

/// |x - y| <= tol for real x and y (imaginary parts negligible), both computed at `lv.hi` bits.
/// The tolerance is widened by the working precision (`2^-(hi-GUARD)` of the values' size) so
/// that a value exactly on the boundary (`0.125` to two places) is not decided by rounding.
pub fn within(x: &MpC, y: &MpC, tol: &BigRational, lv: Levels) -> bool {
    let pr = lv.hi_prec();
    let d = x.sub(y, pr);
    let (sx, sy) = (x.size(), y.size());
    let mag = if sx.cmp(&sy).is_some_and(|c| c >= 0) { sx } else { sy };
    let scale = pow2(-((lv.hi - GUARD) as i32), pr);
    let noise = mag.add(&pr.int(1), pr.p, RM).mul(&scale, pr.p, RM);
    let lim = rat_to_bf(tol, pr).add(&noise, pr.p, RM);
    le(&d.im.abs(), &noise) && le(&d.re.abs(), &lim)
}

fn le(a: &BigFloat, b: &BigFloat) -> bool {
    a.cmp(b).is_some_and(|c| c <= 0)
}

fn pow2(e: i32, pr: Prec) -> BigFloat {
    let mut one = pr.int(1);
    if let Some(x) = one.exponent() {
        one.set_exponent(x.saturating_add(e));
    }
    one
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::parse_answer;

    fn val(s: &str, bits: usize) -> MpC {
        let e = parse_answer(s).expect("parse");
        let b = Budget::new(1_000_000);
        eval(&e, &Env { vars: &[], real: false }, Prec::new(bits), &b, 0).expect("eval")
    }

    fn eq(a: &str, c: &str) -> Same {
        decide(Levels::new(256), |pr| Ok((val(a, pr.p), val(c, pr.p)))).expect("decide")
    }

    #[test]
    fn integers_convert_exactly() {
        let pr = Prec::new(128);
        for n in ["0", "1", "-7", "18446744073709551616", "262537412640768744"] {
            let v = int_to_bf(&n.parse::<BigInt>().unwrap(), pr);
            let back = v.int();
            assert_eq!(format!("{back}"), format!("{}", BigFloat::parse(n, astro_float_num::Radix::Dec, 128, RM, &mut Consts::new().unwrap())), "{n}");
        }
    }

    #[test]
    fn decides_in_high_precision() {
        assert_eq!(eq("\\sqrt{2}+\\sqrt{3}", "\\sqrt{5+2\\sqrt{6}}"), Same::Equal);
        assert_eq!(eq("\\pi", "355/113"), Same::Different);
        assert_eq!(eq("e^{\\pi\\sqrt{163}}", "262537412640768744"), Same::Different);
        assert_eq!(eq("\\sin(\\pi/6)", "1/2"), Same::Equal);
        assert_eq!(eq("\\sin(\\pi)", "0"), Same::Equal);
        assert_eq!(eq("(-8)^{1/3}", "-2"), Same::Equal);
        assert_eq!(eq("e^{i\\pi}", "-1"), Same::Equal);
        assert_eq!(eq("\\sqrt{-4}", "2i"), Same::Equal);
        assert_eq!(eq("\\arctan(1)", "\\pi/4"), Same::Equal);
        assert_eq!(eq("\\arcsin(2)", "\\pi/2 - i\\ln(2+\\sqrt3)"), Same::Equal);
        assert_eq!(eq("\\ln 8 - 3\\ln 2", "0"), Same::Equal);
        assert_eq!(eq("\\sqrt{10^{40}+1}-10^{20}", "1/(\\sqrt{10^{40}+1}+10^{20})"), Same::Equal);
        // A cancellation of 130 bits swallows the difference at 128 bits but not at 192.
        assert_eq!(eq("(2^{130}\\sqrt2+1)-2^{130}\\sqrt2", "0"), Same::Different);
        assert_eq!(eq("1.41421356237", "\\sqrt2"), Same::Different);
        assert_eq!(eq("\\infty", "2\\infty"), Same::Infinite);
    }
}
