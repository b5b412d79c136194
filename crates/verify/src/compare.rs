//! Equivalence of two answers (issue #3 "Equivalence").
//!
//! Order of rules: identical text; multiple-choice letters; then both sides are normalised and
//! parsed, and compared by kind:
//! - scalars without variables: exactly in ℚ(i) when both values are there, else in arbitrary
//!   precision ([`crate::mp`]: 128 and 256 bits by default, [`Config::precision_bits`]); values
//!   whose exact form exceeds the size limit are not compared. A decimal literal is an exact rational (`0.33` is
//!   not `1/3`); the one allowance is for a reference that is itself a decimal (it states its
//!   precision, "to the nearest hundredth"): an exact answer that rounds to it is accepted;
//! - scalars with variables: identity test at [`Config::points`] random rational points, exact
//!   where the values are rational and in arbitrary precision otherwise (so `x^2-1 = (x-1)(x+1)` is decided without rounding);
//! - `x = 5` equals `5`; equations are equal when `lhs - rhs` of one is a non-zero constant
//!   multiple of the other's (`y=2x+1` vs `2x-y+1=0`), inequalities when the multiple is positive;
//! - sets and bare lists unordered, tuples ordered, intervals by endpoints and openness, unions
//!   unordered, matrices elementwise, `±` expanded to its two values;
//! - a percent reference accepts the bare number and the fraction (`50\%` vs `50` vs `0.5`);
//! - free text by normalised string.
//!
//! Everything is charged to one [`Budget`]; running out means "not equivalent".
use crate::budget::Budget;
use crate::eval::{self, CRat, Env, EvalErr};
use crate::mp;
use crate::expr::{Const, Expr, RelOp};
use crate::extract::strip_dollars;
use crate::normalize::{prepare, protected_letters};
use crate::parse::{div, parse_prepared};
use crate::Config;
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{Signed, Zero};
use std::cell::Cell;

/// A comparison verdict with the rule that decided it.
pub struct Verdict {
    pub equal: bool,
    pub reason: String,
}

fn verdict(equal: bool, reason: impl Into<String>) -> Verdict {
    Verdict { equal, reason: reason.into() }
}

/// Compare a reference answer with an extracted answer.
pub fn compare(reference: &str, answer: &str, cfg: &Config) -> Verdict {
    let squash =
        |s: &str| -> String { strip_dollars(s).chars().filter(|c| !c.is_whitespace()).collect() };
    let (sr, sa) = (squash(reference), squash(answer));
    if sa.is_empty() {
        return verdict(false, "empty answer");
    }
    if sr == sa {
        return verdict(true, "identical text");
    }
    if let Some(l) = choice_letter(reference) {
        return match answer_letter(answer) {
            Some(a) if a == l => verdict(true, "same choice letter"),
            Some(_) => verdict(false, "different choice letter"),
            None => verdict(false, "no choice letter in answer"),
        };
    }
    let budget = Budget::new(cfg.step_budget);
    let protected = protected_letters(reference);
    let rp = prepare(reference, &protected, false);
    let r = parse_prepared(&rp, &budget);
    let numeric_ref = matches!(&r, Ok(e) if is_scalar(e) && { let mut s = vec![]; e.free_symbols(&mut s); s.is_empty() });
    let ap = prepare(answer, &protected, numeric_ref);
    let a = parse_prepared(&ap, &budget);
    match (r, a) {
        (Ok(r), Ok(a)) if matches!(r, Expr::Text(_)) || matches!(a, Expr::Text(_)) => {
            // `\text{yes}` vs `Yes` (which parses as a product of letters).
            let eq = !text_key(&rp).is_empty() && text_key(&rp) == text_key(&ap);
            verdict(eq, if eq { "same text" } else { "different text" })
        }
        (Ok(r), Ok(a)) => {
            let c = Ctx { cfg, budget: &budget, rule: Cell::new("different values") };
            let eq = c.eq(&r, &a, 0);
            if budget.spent() {
                return verdict(false, "step budget exhausted");
            }
            verdict(eq, c.rule.get())
        }
        (r, a) => {
            let (tr, ta) = (text_key(&rp), text_key(&ap));
            if !tr.is_empty() && tr == ta {
                return verdict(true, "same text");
            }
            let why = match (r, a) {
                (Err(e), _) => format!("reference unparseable ({e}); texts differ"),
                (_, Err(e)) => format!("answer unparseable ({e}); texts differ"),
                _ => "texts differ".into(),
            };
            verdict(false, why)
        }
    }
}

/// A text answer reduced for comparison: lowercase, no markup, spacing or punctuation.
fn text_key(s: &str) -> String {
    let s = s.replace("\\text", "").replace("\\mbox", "").to_lowercase();
    let s = s.strip_prefix("the ").unwrap_or(&s).to_string();
    s.chars().filter(|c| c.is_alphanumeric() || matches!(c, '+' | '-' | '/' | '^' | '=')).collect()
}

/// `A`..`E` (also `(A)`, `\text{(A)}`, `A.`) as a reference's choice letter.
fn choice_letter(s: &str) -> Option<char> {
    let t = strip_dollars(s).replace("\\text", "").replace("\\textbf", "").replace("\\mathrm", "");
    let core: String =
        t.chars().filter(|c| !matches!(c, '(' | ')' | '{' | '}' | ' ' | '.' | ':')).collect();
    let mut cs = core.chars();
    match (cs.next(), cs.next()) {
        (Some(c @ 'A'..='E'), None) => Some(c),
        _ => None,
    }
}

/// The choice letter an answer commits to: the answer is the letter, or starts with `(B)`,
/// `B)`, `B.` or `B:`.
fn answer_letter(s: &str) -> Option<char> {
    if let Some(c) = choice_letter(s) {
        return Some(c);
    }
    let t = strip_dollars(s).replace("\\text{", "").replace('}', "");
    let t = t.trim();
    let b: Vec<char> = t.chars().collect();
    match b.as_slice() {
        ['(', c @ 'A'..='E', ')', ..] => Some(*c),
        [c @ 'A'..='E', ')' | '.' | ':', ..] => Some(*c),
        _ => None,
    }
}

fn is_scalar(e: &Expr) -> bool {
    matches!(
        e,
        Expr::Num(_)
            | Expr::Dec(..)
            | Expr::Sym(_)
            | Expr::Const(_)
            | Expr::Neg(_)
            | Expr::Add(_)
            | Expr::Mul(_)
            | Expr::Div(..)
            | Expr::Pow(..)
            | Expr::Func(..)
    )
}

fn has_inf(e: &Expr) -> bool {
    matches!(e, Expr::Const(Const::Inf)) || e.children().any(has_inf)
}

fn has_i(e: &Expr) -> bool {
    matches!(e, Expr::Const(Const::I)) || e.children().any(has_i)
}

fn contains_pm(e: &Expr) -> bool {
    matches!(e, Expr::PlusMinus(..)) || e.children().any(contains_pm)
}

/// All sign choices of the `±` in a scalar (at most 3 of them: 8 values).
fn expand_pm(e: &Expr, depth: usize) -> Vec<Expr> {
    if depth > 3 {
        return vec![e.clone()];
    }
    fn first_pm(e: &Expr) -> Option<(Expr, Expr)> {
        // Replace the first ± by + and by -.
        match e {
            Expr::PlusMinus(a, b) => {
                let plus = Expr::Add(vec![(**a).clone(), (**b).clone()]);
                let minus = Expr::Add(vec![(**a).clone(), Expr::Neg(b.clone())]);
                Some((plus, minus))
            }
            Expr::Neg(a) => {
                first_pm(a).map(|(p, m)| (Expr::Neg(Box::new(p)), Expr::Neg(Box::new(m))))
            }
            Expr::Add(v) | Expr::Mul(v) => {
                for (k, x) in v.iter().enumerate() {
                    if let Some((p, m)) = first_pm(x) {
                        let mut vp = v.clone();
                        let mut vm = v.clone();
                        vp[k] = p;
                        vm[k] = m;
                        return Some(match e {
                            Expr::Add(_) => (Expr::Add(vp), Expr::Add(vm)),
                            _ => (Expr::Mul(vp), Expr::Mul(vm)),
                        });
                    }
                }
                None
            }
            Expr::Div(a, b) => {
                if let Some((p, m)) = first_pm(a) {
                    return Some((
                        Expr::Div(Box::new(p), b.clone()),
                        Expr::Div(Box::new(m), b.clone()),
                    ));
                }
                first_pm(b).map(|(p, m)| {
                    (Expr::Div(a.clone(), Box::new(p)), Expr::Div(a.clone(), Box::new(m)))
                })
            }
            _ => None,
        }
    }
    match first_pm(e) {
        Some((p, m)) => {
            let mut out = expand_pm(&p, depth + 1);
            out.extend(expand_pm(&m, depth + 1));
            out
        }
        None => vec![e.clone()],
    }
}

/// `x = v` or `v = x` (x a variable not occurring in v): the value v.
fn assigned_value(e: &Expr) -> Option<&Expr> {
    let Expr::Rel(v, ops) = e else { return None };
    if ops.as_slice() != [RelOp::Eq] {
        return None;
    }
    for (s, val) in [(&v[0], &v[1]), (&v[1], &v[0])] {
        if let Expr::Sym(name) = s {
            let mut syms = vec![];
            val.free_symbols(&mut syms);
            if !syms.contains(name) {
                return Some(val);
            }
        }
    }
    None
}

fn inf(neg: bool) -> Expr {
    let i = Expr::Const(Const::Inf);
    if neg {
        Expr::Neg(Box::new(i))
    } else {
        i
    }
}

fn is_const(e: &Expr) -> bool {
    let mut s = vec![];
    e.free_symbols(&mut s);
    s.is_empty()
}

/// A one-variable inequality as an interval (`x > 2` → `(2, ∞)`, `1 \le x < 3` → `[1, 3)`).
fn rel_as_interval(e: &Expr) -> Option<Expr> {
    let Expr::Rel(v, ops) = e else { return None };
    let iv = |lo: Expr, hi: Expr, lo_open: bool, hi_open: bool| {
        Some(Expr::Interval(Box::new(lo), Box::new(hi), lo_open, hi_open))
    };
    match (v.as_slice(), ops.as_slice()) {
        ([Expr::Sym(_), c], [op]) if is_const(c) => match op {
            RelOp::Lt => iv(inf(true), c.clone(), true, true),
            RelOp::Le => iv(inf(true), c.clone(), true, false),
            RelOp::Gt => iv(c.clone(), inf(false), true, true),
            RelOp::Ge => iv(c.clone(), inf(false), false, true),
            _ => None,
        },
        ([c, Expr::Sym(_)], [op]) if is_const(c) => match op {
            RelOp::Gt => iv(inf(true), c.clone(), true, true),
            RelOp::Ge => iv(inf(true), c.clone(), true, false),
            RelOp::Lt => iv(c.clone(), inf(false), true, true),
            RelOp::Le => iv(c.clone(), inf(false), false, true),
            _ => None,
        },
        ([a, Expr::Sym(_), b], [o1, o2]) if is_const(a) && is_const(b) => {
            let lo_open = match o1 {
                RelOp::Lt => true,
                RelOp::Le => false,
                _ => return None,
            };
            let hi_open = match o2 {
                RelOp::Lt => true,
                RelOp::Le => false,
                _ => return None,
            };
            iv(a.clone(), b.clone(), lo_open, hi_open)
        }
        _ => None,
    }
}

/// Inequalities (or lists of them, "x<2 or x>5") as a set of intervals.
fn as_set(e: &Expr) -> Option<Expr> {
    match e {
        Expr::Rel(..) => rel_as_interval(e),
        Expr::List(v) => {
            let parts: Option<Vec<Expr>> = v.iter().map(rel_as_interval).collect();
            parts.map(Expr::Union)
        }
        _ => None,
    }
}

struct Ctx<'a> {
    cfg: &'a Config,
    budget: &'a Budget,
    rule: Cell<&'static str>,
}

impl Ctx<'_> {
    fn say(&self, rule: &'static str, v: bool) -> bool {
        self.rule.set(rule);
        v
    }

    fn eq(&self, r: &Expr, a: &Expr, depth: usize) -> bool {
        if depth > 40 || self.budget.charge(1).is_err() {
            return self.say("step budget exhausted", false);
        }
        let d = depth + 1;
        // `x = 5` against a value is the value (also `x = \pm 2`).
        if !matches!(r, Expr::Rel(..)) {
            if let Some(v) = assigned_value(a) {
                return self.eq(r, v, d);
            }
        }
        if !matches!(a, Expr::Rel(..)) {
            if let Some(v) = assigned_value(r) {
                return self.eq(v, a, d);
            }
        }
        // ± is a pair of values.
        if contains_pm(r) || contains_pm(a) {
            let ex = |e: &Expr| -> Expr {
                match e {
                    Expr::List(v) | Expr::Set(v) => {
                        Expr::List(v.iter().flat_map(|x| expand_pm(x, 0)).collect())
                    }
                    x if is_scalar(x) || matches!(x, Expr::PlusMinus(..)) => {
                        let v = expand_pm(x, 0);
                        if v.len() == 1 {
                            x.clone()
                        } else {
                            Expr::List(v)
                        }
                    }
                    x => x.clone(),
                }
            };
            let (r2, a2) = (ex(r), ex(a));
            if contains_pm(&r2) || contains_pm(&a2) {
                return self.say("± in an unsupported position", false);
            }
            return self.eq(&r2, &a2, d);
        }
        match (r, a) {
            (Expr::Text(x), Expr::Text(y)) => {
                self.say("same text", text_key(x) == text_key(y) && !x.is_empty())
            }
            (Expr::Text(_), _) | (_, Expr::Text(_)) => self.say("text vs mathematics", false),
            (Expr::Rel(..), Expr::Rel(..)) => self.rel_eq(r, a, d),
            (Expr::Rel(..), _) => {
                if let Some(v) = assigned_value(r) {
                    return self.eq(v, a, d);
                }
                match as_set(r) {
                    Some(s) if matches!(a, Expr::Interval(..) | Expr::Union(_)) => {
                        self.eq(&s, a, d)
                    }
                    Some(s) if matches!(a, Expr::Tuple(v) if v.len() == 2) => self.eq(&s, a, d),
                    _ => self.say("relation vs value", false),
                }
            }
            (_, Expr::Rel(..)) => {
                if let Some(v) = assigned_value(a) {
                    return self.eq(r, v, d);
                }
                match as_set(a) {
                    Some(s) if matches!(r, Expr::Interval(..) | Expr::Union(_)) => {
                        self.eq(r, &s, d)
                    }
                    Some(s) if matches!(r, Expr::Tuple(v) if v.len() == 2) => self.eq(r, &s, d),
                    _ => self.say("value vs relation", false),
                }
            }
            (Expr::Percent(x), Expr::Percent(y)) => self.eq(x, y, d),
            (Expr::Percent(x), _) => {
                let frac = div((**x).clone(), Expr::int(100));
                if self.eq(x, a, d) {
                    return self.say("percent reference, bare number", true);
                }
                self.eq(&frac, a, d) && self.say("percent as a fraction", true)
            }
            (_, Expr::Percent(y)) => {
                let frac = div((**y).clone(), Expr::int(100));
                if self.eq(r, &frac, d) {
                    return self.say("percent as a fraction", true);
                }
                self.eq(r, y, d) && self.say("percent answer, bare reference", true)
            }
            (Expr::Set(x), Expr::Set(y))
            | (Expr::Set(x), Expr::List(y))
            | (Expr::List(x), Expr::Set(y)) => {
                let ok = x.iter().all(|p| y.iter().any(|q| self.eq(p, q, d)))
                    && y.iter().all(|q| x.iter().any(|p| self.eq(p, q, d)));
                self.say("sets (unordered)", ok)
            }
            (Expr::List(x), Expr::List(y))
            | (Expr::List(x), Expr::Tuple(y))
            | (Expr::Union(x), Expr::Union(y)) => self.unordered(x, y, d),
            (Expr::Tuple(x), Expr::Tuple(y)) | (Expr::Tuple(x), Expr::List(y)) => {
                let ok = x.len() == y.len() && x.iter().zip(y).all(|(p, q)| self.eq(p, q, d));
                self.say("tuples (ordered)", ok)
            }
            (Expr::Interval(a1, b1, l1, h1), Expr::Interval(a2, b2, l2, h2)) => {
                let inf_end = |e: &Expr| {
                    matches!(e, Expr::Const(Const::Inf))
                        || matches!(e, Expr::Neg(x) if matches!(**x, Expr::Const(Const::Inf)))
                };
                let lo_ok = l1 == l2 || inf_end(a1);
                let hi_ok = h1 == h2 || inf_end(b1);
                let ok = lo_ok && hi_ok && self.eq(a1, a2, d) && self.eq(b1, b2, d);
                self.say("intervals", ok)
            }
            (Expr::Tuple(x), Expr::Interval(..)) if x.len() == 2 => self.eq(
                &Expr::Interval(Box::new(x[0].clone()), Box::new(x[1].clone()), true, true),
                a,
                d,
            ),
            (Expr::Interval(..), Expr::Tuple(y)) if y.len() == 2 => self.eq(
                r,
                &Expr::Interval(Box::new(y[0].clone()), Box::new(y[1].clone()), true, true),
                d,
            ),
            (Expr::Union(_) | Expr::Interval(..), Expr::List(_)) if as_set(a).is_some() => {
                as_set(a).is_some_and(|s| self.eq(r, &s, d))
            }
            (Expr::List(_), Expr::Union(_) | Expr::Interval(..)) if as_set(r).is_some() => {
                as_set(r).is_some_and(|s| self.eq(&s, a, d))
            }
            (Expr::Union(x), y) | (y, Expr::Union(x)) if x.len() == 1 => self.eq(&x[0], y, d),
            (Expr::Union(_), Expr::Interval(..)) | (Expr::Interval(..), Expr::Union(_)) => {
                self.say("union vs interval", false)
            }
            (Expr::Matrix(x), Expr::Matrix(y)) => {
                let ok = x.len() == y.len()
                    && x.iter().zip(y).all(|(p, q)| {
                        p.len() == q.len() && p.iter().zip(q).all(|(u, v)| self.eq(u, v, d))
                    });
                self.say("matrices", ok)
            }
            (Expr::Matrix(m), Expr::Tuple(t)) | (Expr::Tuple(t), Expr::Matrix(m)) => {
                let flat: Vec<&Expr> = m.iter().flatten().collect();
                let vector = m.len() == 1 || m.iter().all(|row| row.len() == 1);
                let ok = vector
                    && flat.len() == t.len()
                    && flat.iter().zip(t).all(|(p, q)| self.eq(p, q, d));
                self.say("vector as matrix", ok)
            }
            (Expr::Set(x) | Expr::List(x), y) if x.len() == 1 && is_scalar(y) => {
                self.eq(&x[0], y, d)
            }
            (y, Expr::Set(x)) if x.len() == 1 && is_scalar(y) => self.eq(y, &x[0], d),
            (x, y) if is_scalar(x) && is_scalar(y) => self.scalar_eq(x, y),
            _ => self.say("different kinds of answer", false),
        }
    }

    fn unordered(&self, x: &[Expr], y: &[Expr], d: usize) -> bool {
        if x.len() != y.len() {
            return self.say("different number of elements", false);
        }
        let mut used = vec![false; y.len()];
        for p in x {
            let hit = (0..y.len()).find(|&k| !used[k] && self.eq(p, &y[k], d));
            match hit {
                Some(k) => used[k] = true,
                None => return self.say("elements differ (unordered)", false),
            }
        }
        self.say("same elements (unordered)", true)
    }

    fn rel_eq(&self, r: &Expr, a: &Expr, d: usize) -> bool {
        let (Expr::Rel(v1, o1), Expr::Rel(v2, o2)) = (r, a) else { return false };
        let orient = |v: &[Expr], o: &[RelOp]| -> (Vec<Expr>, Vec<RelOp>) {
            if o.iter().all(|x| matches!(x, RelOp::Gt | RelOp::Ge)) {
                let mut v = v.to_vec();
                v.reverse();
                let o = o
                    .iter()
                    .rev()
                    .map(|x| if *x == RelOp::Gt { RelOp::Lt } else { RelOp::Le })
                    .collect();
                (v, o)
            } else {
                (v.to_vec(), o.to_vec())
            }
        };
        let (v1, o1) = orient(v1, o1);
        let (v2, o2) = orient(v2, o2);
        if o1 != o2 || v1.len() != v2.len() {
            return self.say("different relations", false);
        }
        if v1.iter().zip(&v2).all(|(p, q)| self.eq(p, q, d)) {
            return self.say("same relation, same sides", true);
        }
        // Equations may also have their sides swapped.
        if o1.as_slice() == [RelOp::Eq] && self.eq(&v1[0], &v2[1], d) && self.eq(&v1[1], &v2[0], d)
        {
            return self.say("same equation, sides swapped", true);
        }
        if v1.len() != 2 || !v1.iter().chain(&v2).all(is_scalar) {
            return self.say("relations differ", false);
        }
        let diff = |v: &[Expr]| Expr::Add(vec![v[0].clone(), Expr::Neg(Box::new(v[1].clone()))]);
        let positive = !matches!(o1[0], RelOp::Eq | RelOp::Ne);
        let ok = self.ratio_const(&diff(&v1), &diff(&v2), positive);
        self.say(
            if ok { "relations equal up to a constant factor" } else { "relations differ" },
            ok,
        )
    }

    /// Whether p = k·q for one constant k ≠ 0 (k > 0 if `positive`) at the test points.
    fn ratio_const(&self, p: &Expr, q: &Expr, positive: bool) -> bool {
        let lv = mp::Levels::new(self.cfg.precision_bits);
        let mut syms = vec![];
        p.free_symbols(&mut syms);
        q.free_symbols(&mut syms);
        if syms.is_empty() {
            return false;
        }
        let real = !(has_i(p) || has_i(q));
        // The first point's constant, exactly when it was rational there, and the point itself
        // (to recompute k at another precision).
        let mut first: Option<(Option<CRat>, Vec<(String, CRat)>)> = None;
        let mut good = 0;
        for pt in 0..self.cfg.points * 3 {
            if good >= self.cfg.points {
                break;
            }
            let ev = point(&syms, pt);
            let env = Env { vars: &ev, real };
            let k_exact = match (
                eval::exact(p, &env, self.budget, 0),
                eval::exact(q, &env, self.budget, 0),
            ) {
                (Ok(x), Ok(y)) => {
                    let Some(inv) = inv_c(&y) else { continue };
                    let k = mul_c(&x, &inv);
                    if positive && !(k.im.is_zero() && k.re.is_positive()) {
                        return false;
                    }
                    if k.re.is_zero() && k.im.is_zero() {
                        return false;
                    }
                    Some(k)
                }
                (Err(e), _) | (_, Err(e)) if !matches!(e, EvalErr::NotExact | EvalErr::Undefined) => {
                    return false
                }
                _ => {
                    // k in high precision: q must not vanish here, k must not vanish, and be
                    // real and positive for inequalities.
                    let qv = |pr| mp::eval(q, &env, pr, self.budget, 0);
                    match mp::is_zero_at(lv, qv) {
                        Ok(false) => {}
                        Err(EvalErr::Budget) => return false,
                        _ => continue,
                    }
                    let kv = |pr| {
                        let x = mp::eval(p, &env, pr, self.budget, 0)?;
                        x.quotient(&mp::eval(q, &env, pr, self.budget, 0)?, pr)
                    };
                    match mp::is_zero_at(lv, kv) {
                        Ok(false) => {}
                        Ok(true) => return false,
                        Err(EvalErr::Budget) => return false,
                        Err(_) => continue,
                    }
                    if positive {
                        let im = |pr| kv(pr).map(|k| k.im_part(pr));
                        let pos = mp::is_zero_at(lv, im).unwrap_or(false)
                            && kv(lv.hi_prec()).is_ok_and(|k| k.re_positive());
                        if !pos {
                            return false;
                        }
                    }
                    None
                }
            };
            good += 1;
            let Some((k0, pt0)) = &first else {
                first = Some((k_exact, ev));
                continue;
            };
            if let (Some(a), Some(b)) = (k0, &k_exact) {
                if a != b {
                    return false;
                }
                continue;
            }
            // Compare this point's k with the first one's in high precision.
            let env0 = Env { vars: pt0, real };
            let k_at = |k: &Option<CRat>, env: &Env<CRat>, pr: mp::Prec| match k {
                Some(k) => Ok(mp::MpC::from_crat(k, pr)),
                None => mp::eval(p, env, pr, self.budget, 0)?
                    .quotient(&mp::eval(q, env, pr, self.budget, 0)?, pr),
            };
            match mp::decide(lv, |pr| Ok((k_at(k0, &env0, pr)?, k_at(&k_exact, &env, pr)?))) {
                Ok(mp::Same::Equal) => {}
                _ => return false,
            }
        }
        good >= 2
    }

    fn scalar_eq(&self, r: &Expr, a: &Expr) -> bool {
        let lv = mp::Levels::new(self.cfg.precision_bits);
        let mut syms = vec![];
        r.free_symbols(&mut syms);
        a.free_symbols(&mut syms);
        if syms.is_empty() {
            return self.const_eq(r, a);
        }
        let real = !(has_i(r) || has_i(a));
        let mut good = 0;
        for pt in 0..self.cfg.points * 3 {
            if good >= self.cfg.points {
                break;
            }
            let ev = point(&syms, pt);
            let env = Env { vars: &ev, real };
            let x = eval::exact(r, &env, self.budget, 0);
            let y = eval::exact(a, &env, self.budget, 0);
            match (x, y) {
                (Ok(x), Ok(y)) => {
                    if x != y {
                        return self.say("differ at a random rational point", false);
                    }
                    good += 1;
                }
                (Err(EvalErr::Budget), _) | (_, Err(EvalErr::Budget)) => {
                    return self.say("step budget exhausted", false)
                }
                (Err(EvalErr::Unsupported), _) | (_, Err(EvalErr::Unsupported)) => {
                    return self.say("cannot evaluate", false)
                }
                (Err(EvalErr::TooBig), _) | (_, Err(EvalErr::TooBig)) => {
                    return self.say("values too large to compare exactly", false)
                }
                (Err(EvalErr::Undefined), _) | (_, Err(EvalErr::Undefined)) => continue,
                _ => {
                    let both = |pr| {
                        Ok((
                            mp::eval(r, &env, pr, self.budget, 0)?,
                            mp::eval(a, &env, pr, self.budget, 0)?,
                        ))
                    };
                    match mp::decide(lv, both) {
                        Ok(mp::Same::Equal) => good += 1,
                        Ok(mp::Same::Different) => {
                            return self.say("differ at a random point (high precision)", false)
                        }
                        // An overflow at one point says nothing about the identity.
                        Ok(mp::Same::Infinite) | Err(EvalErr::Undefined) => continue,
                        Err(EvalErr::Budget) => return self.say("step budget exhausted", false),
                        Err(_) => return self.say("cannot evaluate", false),
                    }
                }
            }
        }
        self.say(
            if good >= 2 {
                "identical at random points"
            } else {
                "too few points where both are defined"
            },
            good >= 2,
        )
    }

    fn const_eq(&self, r: &Expr, a: &Expr) -> bool {
        let lv = mp::Levels::new(self.cfg.precision_bits);
        let none = Env { vars: &[], real: false };
        let x = eval::exact(r, &none, self.budget, 0);
        let y = eval::exact(a, &none, self.budget, 0);
        let ref_places = match r {
            Expr::Dec(_, p) if !matches!(a, Expr::Dec(..)) => Some(*p),
            _ => None,
        };
        // |y - x| <= 5 * 10^-(p+1): an answer that rounds to the reference's stated precision.
        let half = |p: u32| {
            BigRational::new(BigInt::from(5), num_traits::pow(BigInt::from(10), p as usize + 1))
        };
        match (x, y) {
            (Ok(x), Ok(y)) => {
                if x == y {
                    return self.say("equal exact values", true);
                }
                if let (Some(p), true, true) = (ref_places, x.im.is_zero(), y.im.is_zero()) {
                    if (&y.re - &x.re).abs() <= half(p) {
                        return self.say("rounds to the reference's stated precision", true);
                    }
                }
                self.say("different exact values", false)
            }
            (Err(EvalErr::Budget), _) | (_, Err(EvalErr::Budget)) => {
                self.say("step budget exhausted", false)
            }
            (Err(EvalErr::Undefined), _) | (_, Err(EvalErr::Undefined)) => {
                self.say("undefined value", false)
            }
            (Err(EvalErr::Unsupported), _) | (_, Err(EvalErr::Unsupported)) => {
                self.say("cannot evaluate", false)
            }
            (Err(EvalErr::TooBig), _) | (_, Err(EvalErr::TooBig)) => {
                // `2^{10^6}` vs `2^{10^6}+1`: rounding cannot separate them.
                self.say("values too large to compare exactly", false)
            }
            _ => {
                // At least one value is outside ℚ(i): compare in high precision (src/mp.rs).
                let both = |pr| {
                    Ok((
                        mp::eval(r, &none, pr, self.budget, 0)?,
                        mp::eval(a, &none, pr, self.budget, 0)?,
                    ))
                };
                if let Some(p) = ref_places {
                    let hi = lv.hi_prec();
                    if let Ok((x, y)) = both(hi) {
                        if x.is_real() && mp::within(&x, &y, &half(p), lv) {
                            return self.say("rounds to the reference's stated precision", true);
                        }
                    }
                }
                match mp::decide(lv, both) {
                    Ok(mp::Same::Equal) => self.say("equal in high precision", true),
                    Ok(mp::Same::Different) => self.say("different values (high precision)", false),
                    Ok(mp::Same::Infinite) => {
                        if has_inf(r) && has_inf(a) {
                            let hi = lv.hi_prec();
                            let eq = both(hi).is_ok_and(|(x, y)| mp::same_infinity(&x, &y));
                            self.say(if eq { "both infinite" } else { "different infinities" }, eq)
                        } else {
                            // `2^{10^{10}}` overflows: an infinity says nothing about equality.
                            self.say("value too large to compare", false)
                        }
                    }
                    Err(EvalErr::Budget) => self.say("step budget exhausted", false),
                    Err(EvalErr::Undefined) => self.say("undefined value", false),
                    Err(_) => self.say("cannot evaluate", false),
                }
            }
        }
    }
}

fn inv_c(y: &CRat) -> Option<CRat> {
    let d = &y.re * &y.re + &y.im * &y.im;
    if d.is_zero() {
        return None;
    }
    Some(CRat { re: &y.re / &d, im: -&y.im / &d })
}

fn mul_c(x: &CRat, y: &CRat) -> CRat {
    CRat { re: &x.re * &y.re - &x.im * &y.im, im: &x.re * &y.im + &x.im * &y.re }
}

/// The `pt`-th test point: each variable gets a non-integer rational between -10 and 10 drawn
/// from a fixed sequence, so verdicts are reproducible.
fn point(syms: &[String], pt: usize) -> Vec<(String, CRat)> {
    let mut ev = Vec::with_capacity(syms.len());
    for (j, s) in syms.iter().enumerate() {
        let mut h = (pt as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15)
            ^ (j as u64 + 7).wrapping_mul(0xD1B5_4A32_D192_ED03);
        h ^= h >> 29;
        h = h.wrapping_mul(0xBF58_476D_1CE4_E5B9);
        h ^= h >> 32;
        let den = [3i64, 7, 11, 13, 17, 19][(h % 6) as usize];
        let mut num = ((h >> 8) % 89) as i64 + 2;
        if num % den == 0 {
            num += 1;
        }
        if (h >> 20) & 1 == 1 {
            num = -num;
        }
        let r = BigRational::new(BigInt::from(num), BigInt::from(den));
        ev.push((s.clone(), CRat { re: r, im: BigRational::zero() }));
    }
    ev
}
