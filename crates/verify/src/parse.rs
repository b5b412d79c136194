//! Lexer and Pratt parser from LaTeX or plain-text answers to [`Expr`].
//!
//! Covers what final answers of MATH/GSM8K-style benchmarks contain (issue #3 "Parsing"): integers
//! with separators (`1,000`, `10{,}000`, `12\,345`), decimals, scientific notation (`1e-7`,
//! `3\times 10^{5}`), repeating decimals (`0.\overline{3}`), mixed numbers (`2\frac14`,
//! `7 3/4`), percent, fractions, roots, powers, `\cdot \times`, `\pi`, `e`, `i`, trig/log/exp,
//! unicode `√ π ∞ ≤ ≥ ±`, `\pm`, `\infty`, sets, tuples, intervals (`\cup`), matrices
//! (`pmatrix`, `bmatrix`), relations, `\text{}`. Implicit multiplication binds like `*`
//! (`2x`, `3\sqrt{2}`, `2(x+1)`).
//!
//! The parser charges a [`Budget`] per token and per nesting level, and refuses nesting deeper
//! than [`MAX_DEPTH`](crate::budget::MAX_DEPTH): no input can make it loop or overflow the stack.
use crate::budget::{Budget, MAX_DEPTH};
use crate::expr::{Const, Expr, RelOp};
use crate::normalize;
use crate::{Error, Result};
use num_bigint::BigInt;
use num_rational::BigRational;
use num_traits::{One, Signed, Zero};

#[derive(Debug, Clone, PartialEq)]
enum Tk {
    /// Integer digits, fraction digits (None: no point), decimal exponent.
    Num(String, Option<String>, i64),
    Letter(char),
    Cmd(String),
    P(char),
    Text(String),
    Begin(String),
    End(String),
}

#[derive(Debug, Clone)]
struct Tok {
    t: Tk,
    space: bool,
}

const FUNCS: &[&str] = &[
    "sin", "cos", "tan", "sec", "csc", "cot", "arcsin", "arccos", "arctan", "sinh", "cosh", "tanh",
    "ln", "log", "exp", "sqrt",
];

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
    "kappa",
    "lambda",
    "mu",
    "nu",
    "xi",
    "rho",
    "sigma",
    "tau",
    "phi",
    "varphi",
    "chi",
    "psi",
    "omega",
    "Gamma",
    "Delta",
    "Theta",
    "Lambda",
    "Sigma",
    "Phi",
    "Psi",
    "Omega",
];

fn err(pos: usize, msg: impl Into<String>) -> Error {
    Error::Parse { pos, msg: msg.into() }
}

fn lex(s: &str, budget: &Budget) -> Result<Vec<Tok>> {
    let cs: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut depth = 0i32;
    let mut space = false;
    while i < cs.len() {
        budget.charge(1).map_err(|_| err(i, "step budget exhausted while lexing"))?;
        let c = cs[i];
        if c.is_whitespace() {
            space = true;
            i += 1;
            continue;
        }
        let mut push = |t: Tk, space: &mut bool| {
            out.push(Tok { t, space: *space });
            *space = false;
        };
        if c.is_ascii_digit() || (c == '.' && cs.get(i + 1).is_some_and(|d| d.is_ascii_digit())) {
            let mut int = String::new();
            while i < cs.len() && cs[i].is_ascii_digit() {
                int.push(cs[i]);
                i += 1;
                // Thousands separators: `1,000,000`, only outside brackets where a comma would
                // otherwise separate elements.
                if depth == 0
                    && i + 3 < cs.len() + 1
                    && cs.get(i) == Some(&',')
                    && cs.get(i + 1..i + 4).is_some_and(|g| g.iter().all(|d| d.is_ascii_digit()))
                    && !cs.get(i + 4).is_some_and(|d| d.is_ascii_digit())
                    && int.len() <= 3
                    && !int.starts_with('0')
                {
                    let mut j = i;
                    while cs.get(j) == Some(&',')
                        && cs
                            .get(j + 1..j + 4)
                            .is_some_and(|g| g.iter().all(|d| d.is_ascii_digit()))
                        && !cs.get(j + 4).is_some_and(|d| d.is_ascii_digit())
                    {
                        int.extend(&cs[j + 1..j + 4]);
                        j += 4;
                    }
                    i = j;
                    break;
                }
            }
            if int.is_empty() {
                int.push('0');
            }
            let mut frac = None;
            if cs.get(i) == Some(&'.') {
                let mut f = String::new();
                let mut j = i + 1;
                while j < cs.len() && cs[j].is_ascii_digit() {
                    f.push(cs[j]);
                    j += 1;
                }
                // "5." at the end of a sentence is not a decimal; "0.\overline{3}" is.
                let overline = cs[j..].starts_with(&['\\', 'o', 'v', 'e', 'r', 'l', 'i', 'n', 'e']);
                if !f.is_empty() || overline {
                    frac = Some(f);
                    i = j;
                }
            }
            let mut exp = 0i64;
            if matches!(cs.get(i), Some('e') | Some('E')) {
                let mut j = i + 1;
                let neg = cs.get(j) == Some(&'-');
                if matches!(cs.get(j), Some('-') | Some('+')) {
                    j += 1;
                }
                let st = j;
                while j < cs.len() && cs[j].is_ascii_digit() && j - st < 6 {
                    j += 1;
                }
                if j > st && !cs.get(j).is_some_and(|c| c.is_alphanumeric()) {
                    let v: i64 = cs[st..j].iter().collect::<String>().parse().unwrap_or(0);
                    exp = if neg { -v } else { v };
                    i = j;
                }
            }
            push(Tk::Num(int, frac, exp), &mut space);
            continue;
        }
        if c == '\\' {
            let mut j = i + 1;
            while j < cs.len() && cs[j].is_ascii_alphabetic() {
                j += 1;
            }
            if j == i + 1 {
                // Escaped symbol.
                match cs.get(j) {
                    Some('{') => push(Tk::Cmd("{".into()), &mut space),
                    Some('}') => push(Tk::Cmd("}".into()), &mut space),
                    Some('\\') => push(Tk::Cmd("\\".into()), &mut space),
                    Some('%') => push(Tk::P('%'), &mut space),
                    Some(' ') | Some(',') | Some(';') | Some('!') | Some(':') => {}
                    Some('|') => push(Tk::P('|'), &mut space),
                    _ => return Err(err(i, "unknown escape")),
                }
                i = (j + 1).min(cs.len());
                continue;
            }
            let name: String = cs[i + 1..j].iter().collect();
            i = j;
            match name.as_str() {
                "text" | "textrm" | "mbox" | "textnormal" | "textit" => {
                    let rest: String = cs[i..].iter().collect();
                    let open = rest.len() - rest.trim_start().len();
                    match crate::extract::brace_group(&rest, open) {
                        Some((inner, end)) => {
                            let inner = inner.trim().to_string();
                            i += rest[..end].chars().count();
                            push(Tk::Text(inner), &mut space);
                        }
                        None => return Err(err(i, "\\text without a brace group")),
                    }
                }
                "begin" | "end" => {
                    let rest: String = cs[i..].iter().collect();
                    match crate::extract::brace_group(&rest, 0) {
                        Some((inner, end)) => {
                            i += rest[..end].chars().count();
                            let env = inner.trim().to_string();
                            push(
                                if name == "begin" { Tk::Begin(env) } else { Tk::End(env) },
                                &mut space,
                            );
                        }
                        None => return Err(err(i, "\\begin/\\end without environment")),
                    }
                }
                "cr" => push(Tk::Cmd("\\".into()), &mut space),
                _ => push(Tk::Cmd(name), &mut space),
            }
            continue;
        }
        if c.is_ascii_alphabetic() {
            let st = i;
            while i < cs.len() && cs[i].is_ascii_alphabetic() {
                i += 1;
            }
            let word: String = cs[st..i].iter().collect();
            let lw = word.to_ascii_lowercase();
            if FUNCS.contains(&lw.as_str())
                || matches!(lw.as_str(), "pi" | "infty" | "inf" | "infinity" | "oo")
            {
                push(
                    Tk::Cmd(if lw == "infinity" || lw == "oo" || lw == "inf" {
                        "infty".into()
                    } else {
                        lw
                    }),
                    &mut space,
                );
            } else if word.len() >= 4 {
                return Err(err(st, format!("word `{word}` is text, not mathematics")));
            } else {
                for ch in word.chars() {
                    push(Tk::Letter(ch), &mut space);
                }
            }
            continue;
        }
        if c == '*' && cs.get(i + 1) == Some(&'*') {
            // Python/plain-text power.
            push(Tk::P('^'), &mut space);
            i += 2;
            continue;
        }
        let t = match c {
            '√' => Tk::Cmd("sqrt".into()),
            'π' => Tk::Cmd("pi".into()),
            '∞' => Tk::Cmd("infty".into()),
            '≤' => Tk::Cmd("le".into()),
            '≥' => Tk::Cmd("ge".into()),
            '≠' => Tk::Cmd("ne".into()),
            '±' => Tk::Cmd("pm".into()),
            '∓' => Tk::Cmd("mp".into()),
            '×' | '·' | '⋅' | '∙' => Tk::Cmd("cdot".into()),
            '÷' => Tk::P('/'),
            '−' | '–' | '—' => Tk::P('-'),
            '∪' => Tk::Cmd("cup".into()),
            '∅' => Tk::Cmd("emptyset".into()),
            '，' => Tk::P(','),
            '（' => Tk::P('('),
            '）' => Tk::P(')'),
            '²' | '³' => {
                push(Tk::P('^'), &mut space);
                Tk::Num(if c == '²' { "2".into() } else { "3".into() }, None, 0)
            }
            '+' | '-' | '*' | '/' | '^' | '_' | '(' | ')' | '[' | ']' | '{' | '}' | ',' | '='
            | '<' | '>' | '!' | '|' | '&' | ';' | '%' | '\'' => {
                match c {
                    '(' | '[' | '{' => depth += 1,
                    ')' | ']' | '}' => depth -= 1,
                    _ => {}
                }
                Tk::P(c)
            }
            _ => return Err(err(i, format!("unexpected character `{c}`"))),
        };
        push(t, &mut space);
        i += 1;
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    budget: &'a Budget,
    /// Nesting so far: recursion levels plus operator nodes stacked on one operand by the
    /// Pratt loop (`0!!!`, `1/2/3`), so that the depth of the tree, not only of the recursion,
    /// stays bounded (printing, comparing and dropping a tree recurse over it).
    depth: usize,
    max_depth: usize,
    /// Parsing an unparenthesised function argument: explicit `*`, `/` and a following function
    /// end it (`\sin x / 2` is `(\sin x)/2`, `\sin 2x` is `\sin(2x)`).
    arg_mode: bool,
}

fn rat_pow10(e: i64) -> BigRational {
    let p = num_traits::pow(BigInt::from(10), e.unsigned_abs() as usize);
    if e >= 0 {
        BigRational::from_integer(p)
    } else {
        BigRational::new(BigInt::one(), p)
    }
}

/// The value of a numeric literal, and the decimal places it states (None: an integer).
fn literal(int: &str, frac: &Option<String>, exp: i64) -> (BigRational, Option<u32>) {
    let f = frac.clone().unwrap_or_default();
    let digits: BigInt = format!("{int}{f}").parse().unwrap_or_default();
    let scale = f.len() as i64;
    let v = BigRational::from_integer(digits) * rat_pow10(exp - scale);
    let places = scale - exp;
    if frac.is_none() && exp >= 0 || places <= 0 {
        (v, None)
    } else {
        (v, Some(places as u32))
    }
}

/// Build `a/b`, folding two exact numbers.
pub fn div(a: Expr, b: Expr) -> Expr {
    if let (Expr::Num(x), Expr::Num(y)) = (&a, &b) {
        if !y.is_zero() {
            return Expr::Num(x / y);
        }
    }
    Expr::Div(Box::new(a), Box::new(b))
}

fn neg(a: Expr) -> Expr {
    match a {
        Expr::Num(r) => Expr::Num(-r),
        Expr::Dec(r, p) => Expr::Dec(-r, p),
        other => Expr::Neg(Box::new(other)),
    }
}

fn add(a: Expr, b: Expr) -> Expr {
    let mut v = match a {
        Expr::Add(v) => v,
        x => vec![x],
    };
    match b {
        Expr::Add(w) => v.extend(w),
        x => v.push(x),
    }
    Expr::Add(v)
}

fn mul(a: Expr, b: Expr) -> Expr {
    let mut v = match a {
        Expr::Mul(v) => v,
        x => vec![x],
    };
    match b {
        Expr::Mul(w) => v.extend(w),
        x => v.push(x),
    }
    Expr::Mul(v)
}

fn relop(t: &Tk) -> Option<RelOp> {
    Some(match t {
        Tk::P('=') => RelOp::Eq,
        Tk::P('<') => RelOp::Lt,
        Tk::P('>') => RelOp::Gt,
        Tk::Cmd(c) => match c.as_str() {
            "le" | "leq" => RelOp::Le,
            "ge" | "geq" => RelOp::Ge,
            "ne" | "neq" => RelOp::Ne,
            _ => return None,
        },
        _ => return None,
    })
}

impl<'a> Parser<'a> {
    fn peek(&self) -> Option<&Tk> {
        self.toks.get(self.pos).map(|t| &t.t)
    }
    fn peek_at(&self, k: usize) -> Option<&Tk> {
        self.toks.get(self.pos + k).map(|t| &t.t)
    }
    fn space_at(&self, k: usize) -> bool {
        self.toks.get(self.pos + k).is_some_and(|t| t.space)
    }
    fn next(&mut self) -> Option<Tk> {
        let t = self.toks.get(self.pos).map(|t| t.t.clone());
        self.pos += 1;
        t
    }
    fn eat(&mut self, t: &Tk) -> bool {
        if self.peek() == Some(t) {
            self.pos += 1;
            true
        } else {
            false
        }
    }
    fn expect(&mut self, t: Tk) -> Result<()> {
        if self.eat(&t) {
            Ok(())
        } else {
            Err(err(self.pos, format!("expected {t:?}, found {:?}", self.peek())))
        }
    }
    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth > self.max_depth {
            return Err(err(self.pos, "nesting too deep"));
        }
        self.budget.charge(1).map_err(|_| err(self.pos, "step budget exhausted while parsing"))
    }

    /// list := union (',' union)*
    fn list(&mut self, closers: &[Tk]) -> Result<Vec<Expr>> {
        let saved = std::mem::replace(&mut self.arg_mode, false);
        let r = self.list_inner(closers);
        self.arg_mode = saved;
        r
    }

    fn list_inner(&mut self, closers: &[Tk]) -> Result<Vec<Expr>> {
        let mut v = Vec::new();
        if self.peek().is_some_and(|t| closers.contains(t)) {
            return Ok(v);
        }
        loop {
            v.push(self.union()?);
            if !(self.eat(&Tk::P(',')) || self.eat(&Tk::P(';'))) {
                break;
            }
        }
        Ok(v)
    }

    fn union(&mut self) -> Result<Expr> {
        let first = self.relation()?;
        if self.peek() != Some(&Tk::Cmd("cup".into())) {
            return Ok(first);
        }
        let mut v = vec![first];
        while self.eat(&Tk::Cmd("cup".into())) {
            v.push(self.relation()?);
        }
        Ok(Expr::Union(v))
    }

    fn relation(&mut self) -> Result<Expr> {
        let first = self.expr(0)?;
        let mut v = vec![first];
        let mut ops = Vec::new();
        while let Some(op) = self.peek().and_then(relop) {
            self.pos += 1;
            ops.push(op);
            v.push(self.expr(0)?);
        }
        if ops.is_empty() {
            Ok(v.pop().unwrap_or_else(|| Expr::int(0)))
        } else {
            Ok(Expr::Rel(v, ops))
        }
    }

    /// Whether the next token can start an operand (for implicit multiplication).
    fn starts_operand(&self) -> bool {
        match self.peek() {
            Some(Tk::Num(..)) | Some(Tk::Letter(_)) | Some(Tk::Begin(_)) => true,
            Some(Tk::P('(')) | Some(Tk::P('{')) => true,
            Some(Tk::Cmd(c)) => {
                FUNCS.contains(&c.as_str())
                    || GREEK.contains(&c.as_str())
                    || matches!(c.as_str(), "frac" | "pi" | "infty" | "binom" | "overline" | "{")
            }
            _ => false,
        }
    }

    /// Pratt loop: operators with binding power above `min_bp`.
    fn expr(&mut self, min_bp: u8) -> Result<Expr> {
        self.enter()?;
        let r = self.expr_inner(min_bp);
        self.depth -= 1;
        r
    }

    fn expr_inner(&mut self, min_bp: u8) -> Result<Expr> {
        let base = self.depth;
        let mut lhs = self.prefix()?;
        loop {
            self.budget
                .charge(1)
                .map_err(|_| err(self.pos, "step budget exhausted while parsing"))?;
            let Some(t) = self.peek().cloned() else { break };
            let (bp, op): (u8, &str) = match &t {
                Tk::P('+') => (10, "+"),
                Tk::P('-') => (10, "-"),
                Tk::Cmd(c) if c == "pm" || c == "mp" => (10, "pm"),
                Tk::P('*') => (20, "*"),
                Tk::Cmd(c) if c == "cdot" || c == "times" || c == "ast" => (20, "*"),
                Tk::P('/') => (20, "/"),
                Tk::Cmd(c) if c == "div" => (20, "/"),
                Tk::P('^') => (30, "^"),
                Tk::P('!') => (40, "!"),
                Tk::P('%') => (40, "%"),
                _ if self.starts_operand() => (20, "implicit"),
                _ => break,
            };
            if bp <= min_bp {
                break;
            }
            if !matches!(op, "+" | "-" | "*" | "implicit") {
                // This operator wraps `lhs` in one more node (sums and products stay flat).
                self.depth += 1;
                if self.depth > self.max_depth {
                    return Err(err(self.pos, "nesting too deep"));
                }
            }
            match op {
                "!" => {
                    self.pos += 1;
                    lhs = Expr::Func("fact".into(), vec![lhs]);
                }
                "%" => {
                    self.pos += 1;
                    lhs = Expr::Percent(Box::new(lhs));
                }
                "^" => {
                    self.pos += 1;
                    // Right associative: parse the exponent at one less.
                    let rhs = self.expr(bp - 1)?;
                    lhs = Expr::Pow(Box::new(lhs), Box::new(rhs));
                }
                "implicit" => {
                    // In a function argument (`\sin 2x \cos x`) a new function ends the argument.
                    if self.arg_mode
                        && matches!(self.peek(), Some(Tk::Cmd(c)) if FUNCS.contains(&c.as_str()))
                    {
                        break;
                    }
                    let rhs = self.expr(bp)?;
                    lhs = mul(lhs, rhs);
                }
                "*" | "/" if self.arg_mode => break,
                _ => {
                    self.pos += 1;
                    let rhs = self.expr(bp)?;
                    lhs = match op {
                        "+" => add(lhs, rhs),
                        "-" => add(lhs, neg(rhs)),
                        "pm" => Expr::PlusMinus(Box::new(lhs), Box::new(rhs)),
                        "*" => mul(lhs, rhs),
                        _ => div(lhs, rhs),
                    };
                }
            }
        }
        self.depth = base;
        Ok(lhs)
    }

    /// `2\frac14` and `7 3/4` right after an integer literal.
    fn mixed_number(&mut self, lhs: &Expr) -> Result<Option<Expr>> {
        let Expr::Num(whole) = lhs else { return Ok(None) };
        if !whole.is_integer() || whole.is_negative() {
            return Ok(None);
        }
        let prev_is_literal =
            self.pos > 0 && matches!(self.toks[self.pos - 1].t, Tk::Num(_, None, 0));
        if !prev_is_literal {
            return Ok(None);
        }
        if self.peek() == Some(&Tk::Cmd("frac".into())) {
            let save = self.pos;
            self.pos += 1;
            let a = self.group()?;
            let b = self.group()?;
            if let (Expr::Num(x), Expr::Num(y)) = (&a, &b) {
                if x.is_integer() && y.is_integer() && !y.is_zero() && x.is_positive() && x < y {
                    return Ok(Some(Expr::Num(whole + x / y)));
                }
            }
            self.pos = save;
            return Ok(None);
        }
        if let (Some(Tk::Num(a, None, 0)), Some(Tk::P('/')), Some(Tk::Num(b, None, 0))) =
            (self.peek(), self.peek_at(1), self.peek_at(2))
        {
            if self.space_at(0) {
                let (x, y): (BigInt, BigInt) =
                    (a.parse().unwrap_or_default(), b.parse().unwrap_or_default());
                if !y.is_zero() && x < y && x.is_positive() {
                    self.pos += 3;
                    return Ok(Some(Expr::Num(whole + BigRational::new(x, y))));
                }
            }
        }
        Ok(None)
    }

    /// A `{...}` group (LaTeX argument) or a single operand.
    fn group(&mut self) -> Result<Expr> {
        if self.eat(&Tk::P('{')) {
            let v = self.list(&[Tk::P('}')])?;
            self.expect(Tk::P('}'))?;
            // An argument (`\frac{..}{..}`, `\sqrt{..}`) is one value: `\frac{1}{x,1}` has no
            // meaning, and a list there could not be printed back (`{x, 1}` reads as a set).
            return match v.len() {
                1 => Ok(v.into_iter().next().unwrap_or_else(|| Expr::int(0))),
                0 => Err(err(self.pos, "empty group")),
                _ => Err(err(self.pos, "a list where one value is expected")),
            };
        }
        self.expr(25)
    }

    fn prefix(&mut self) -> Result<Expr> {
        self.enter()?;
        let r = self.prefix_inner();
        self.depth -= 1;
        r
    }

    fn prefix_inner(&mut self) -> Result<Expr> {
        let pos = self.pos;
        let Some(t) = self.next() else { return Err(err(pos, "unexpected end of answer")) };
        match t {
            Tk::P('-') => Ok(neg(self.expr(25)?)),
            Tk::P('+') => self.expr(25),
            Tk::Cmd(c) if c == "pm" || c == "mp" => {
                Ok(Expr::PlusMinus(Box::new(Expr::int(0)), Box::new(self.expr(25)?)))
            }
            Tk::Num(int, frac, exp) => {
                // `1e-70004` would be a 232,000-bit rational, and its reduction (a binary gcd)
                // quadratic in that: such literals are refused, as the exact evaluator refuses
                // values past MAX_BITS (10^6000 is about 20,000 bits). Regression: fuzz timeout.
                let scale = frac.as_ref().map_or(0, |f| f.len() as i64);
                if (exp - scale).unsigned_abs() > 6000 {
                    return Err(err(pos, "number literal too large"));
                }
                self.budget
                    .charge((int.len() as u64 + scale as u64 + exp.unsigned_abs()) / 16)
                    .map_err(|_| err(pos, "step budget exhausted while parsing"))?;
                let (v, places) = literal(&int, &frac, exp);
                if frac.is_some()
                    && self.peek() == Some(&Tk::Cmd("overline".into()))
                    && !self.space_at(0)
                {
                    self.pos += 1;
                    return self.repeating(&int, frac.as_deref().unwrap_or(""));
                }
                let lit = match places {
                    Some(p) => Expr::Dec(v, p),
                    None => Expr::Num(v),
                };
                if frac.is_none() && exp == 0 {
                    if let Some(m) = self.mixed_number(&lit)? {
                        return Ok(m);
                    }
                }
                Ok(lit)
            }
            Tk::Letter(c) => {
                let mut name = c.to_string();
                if self.eat(&Tk::P('_')) {
                    name.push('_');
                    name.push_str(&self.subscript()?);
                } else {
                    match c {
                        'e' => return Ok(Expr::Const(Const::E)),
                        'i' => return Ok(Expr::Const(Const::I)),
                        _ => {}
                    }
                }
                // Primes (`f'`) are part of the name.
                while self.eat(&Tk::P('\'')) {
                    name.push('\'');
                }
                Ok(Expr::Sym(name))
            }
            Tk::P(open @ ('(' | '[')) => {
                let v = self.list(&[Tk::P(')'), Tk::P(']')])?;
                let close = match self.next() {
                    Some(Tk::P(c @ (')' | ']'))) => c,
                    other => {
                        return Err(err(self.pos, format!("unclosed `{open}`, found {other:?}")))
                    }
                };
                Ok(self.bracketed(open, close, v)?)
            }
            Tk::P('{') => {
                let v = self.list(&[Tk::P('}')])?;
                self.expect(Tk::P('}'))?;
                Ok(match v.len() {
                    0 => Expr::Set(vec![]),
                    1 => v.into_iter().next().unwrap_or_else(|| Expr::int(0)),
                    _ => Expr::Set(v),
                })
            }
            Tk::Cmd(c) if c == "{" => {
                let v = self.list(&[Tk::Cmd("}".into())])?;
                self.expect(Tk::Cmd("}".into()))?;
                Ok(Expr::Set(v))
            }
            Tk::P('|') => {
                let e = self.expr(0)?;
                self.expect(Tk::P('|'))?;
                Ok(Expr::Func("abs".into(), vec![e]))
            }
            Tk::Text(t) => Ok(Expr::Text(t)),
            Tk::Begin(env) => self.matrix(&env),
            Tk::Cmd(c) => self.command(&c),
            other => Err(err(pos, format!("unexpected {other:?}"))),
        }
    }

    fn subscript(&mut self) -> Result<String> {
        let t = self.next();
        let s = match t {
            Some(Tk::Num(i, None, 0)) => i,
            Some(Tk::Letter(c)) => c.to_string(),
            Some(Tk::P('{')) => {
                let mut s = String::new();
                loop {
                    match self.next() {
                        Some(Tk::P('}')) => break,
                        Some(Tk::Num(i, None, 0)) => s.push_str(&i),
                        Some(Tk::Letter(c)) => s.push(c),
                        other => {
                            return Err(err(self.pos, format!("unsupported subscript {other:?}")))
                        }
                    }
                }
                s
            }
            other => return Err(err(self.pos, format!("unsupported subscript {other:?}"))),
        };
        if s.is_empty() {
            return Err(err(self.pos, "empty subscript"));
        }
        Ok(s)
    }

    fn repeating(&mut self, int: &str, fixed: &str) -> Result<Expr> {
        // 0.1\overline{6} = (016 - 01) / 90
        let digits = match self.next() {
            Some(Tk::P('{')) => {
                let mut d = String::new();
                loop {
                    match self.next() {
                        Some(Tk::P('}')) => break,
                        Some(Tk::Num(n, None, 0)) => d.push_str(&n),
                        other => {
                            return Err(err(self.pos, format!("bad repeating digits {other:?}")))
                        }
                    }
                }
                d
            }
            Some(Tk::Num(n, None, 0)) => n,
            other => return Err(err(self.pos, format!("bad repeating digits {other:?}"))),
        };
        if digits.is_empty() || digits.len() > 50 || fixed.len() > 50 {
            return Err(err(self.pos, "bad repeating decimal"));
        }
        let all: BigInt = format!("{int}{fixed}{digits}").parse().unwrap_or_default();
        let head: BigInt = format!("{int}{fixed}").parse().unwrap_or_default();
        let den = (num_traits::pow(BigInt::from(10), digits.len()) - BigInt::one())
            * num_traits::pow(BigInt::from(10), fixed.len());
        Ok(Expr::Num(BigRational::new(all - head, den)))
    }

    fn bracketed(&mut self, open: char, close: char, v: Vec<Expr>) -> Result<Expr> {
        match (v.len(), open, close) {
            (0, _, _) => Err(err(self.pos, "empty brackets")),
            (1, _, _) if open == '(' && close == ')' || open == '[' && close == ']' => {
                Ok(v.into_iter().next().unwrap_or_else(|| Expr::int(0)))
            }
            (2, '(', ')') => Ok(Expr::Tuple(v)),
            (2, _, _) => {
                let mut it = v.into_iter();
                let (a, b) = (
                    it.next().unwrap_or_else(|| Expr::int(0)),
                    it.next().unwrap_or_else(|| Expr::int(0)),
                );
                Ok(Expr::Interval(Box::new(a), Box::new(b), open == '(', close == ')'))
            }
            (_, '(', ')') | (_, '[', ']') => Ok(Expr::Tuple(v)),
            _ => Err(err(self.pos, "mismatched brackets")),
        }
    }

    fn matrix(&mut self, env: &str) -> Result<Expr> {
        if !matches!(
            env,
            "pmatrix" | "bmatrix" | "matrix" | "vmatrix" | "Bmatrix" | "array" | "smallmatrix"
        ) {
            return Err(err(self.pos, format!("unsupported environment {env}")));
        }
        if env == "array" {
            // Column spec `{cc}`.
            if self.eat(&Tk::P('{')) {
                while !self.eat(&Tk::P('}')) {
                    if self.next().is_none() {
                        return Err(err(self.pos, "unterminated array spec"));
                    }
                }
            }
        }
        let mut rows = vec![vec![]];
        loop {
            if let Some(Tk::End(_)) = self.peek() {
                self.pos += 1;
                break;
            }
            if self.peek().is_none() {
                return Err(err(self.pos, "unterminated matrix"));
            }
            let e = self.union()?;
            if let Some(r) = rows.last_mut() {
                r.push(e);
            }
            if self.eat(&Tk::P('&')) {
                continue;
            }
            if self.eat(&Tk::Cmd("\\".into())) {
                if let Some(Tk::End(_)) = self.peek() {
                    continue;
                }
                rows.push(vec![]);
            }
        }
        rows.retain(|r| !r.is_empty());
        let w = rows.first().map_or(0, Vec::len);
        if w == 0 || rows.iter().any(|r| r.len() != w) {
            return Err(err(self.pos, "ragged or empty matrix"));
        }
        Ok(Expr::Matrix(rows))
    }

    fn command(&mut self, c: &str) -> Result<Expr> {
        match c {
            "frac" => {
                let a = self.group()?;
                let b = self.group()?;
                Ok(div(a, b))
            }
            "binom" => {
                let a = self.group()?;
                let b = self.group()?;
                Ok(Expr::Func("binom".into(), vec![a, b]))
            }
            "sqrt" => {
                let index = if self.eat(&Tk::P('[')) {
                    let n = self.expr(0)?;
                    self.expect(Tk::P(']'))?;
                    Some(n)
                } else {
                    None
                };
                let a =
                    if self.peek() == Some(&Tk::P('(')) { self.expr(25)? } else { self.group()? };
                Ok(match index {
                    Some(n) => Expr::Func("root".into(), vec![a, n]),
                    None => Expr::Func("sqrt".into(), vec![a]),
                })
            }
            "pi" => Ok(Expr::Const(Const::Pi)),
            "infty" | "infin" => Ok(Expr::Const(Const::Inf)),
            "emptyset" | "varnothing" => Ok(Expr::Set(vec![])),
            "overline" => Err(err(self.pos, "overline without a decimal")),
            "operatorname" => Err(err(self.pos, "operatorname")),
            _ if GREEK.contains(&c) => {
                let mut name = format!("\\{c}");
                if self.eat(&Tk::P('_')) {
                    name.push('_');
                    name.push_str(&self.subscript()?);
                }
                Ok(Expr::Sym(name))
            }
            _ if FUNCS.contains(&c) => self.function(c),
            _ => Err(err(self.pos, format!("unsupported command \\{c}"))),
        }
    }

    fn function(&mut self, name: &str) -> Result<Expr> {
        let mut base = None;
        let mut power = None;
        for _ in 0..2 {
            if name == "log" && self.eat(&Tk::P('_')) {
                base = Some(self.group()?);
            } else if self.eat(&Tk::P('^')) {
                power = Some(self.group()?);
            }
        }
        let arg = match self.peek() {
            Some(Tk::P('(')) => {
                self.pos += 1;
                let v = self.list(&[Tk::P(')')])?;
                self.expect(Tk::P(')'))?;
                if v.len() != 1 {
                    return Err(err(self.pos, format!("{name} takes one argument")));
                }
                v.into_iter().next().unwrap_or_else(|| Expr::int(0))
            }
            Some(Tk::P('{')) => self.group()?,
            _ => {
                let saved = std::mem::replace(&mut self.arg_mode, true);
                let a = self.expr(19);
                self.arg_mode = saved;
                a?
            }
        };
        let mut args = vec![arg];
        if let Some(b) = base {
            args.push(b);
        }
        let f = Expr::Func(name.into(), args);
        Ok(match power {
            // `\sin^{-1}` is the inverse function.
            Some(Expr::Num(r))
                if r == -BigRational::one() && !name.starts_with("arc") && name.len() == 3 =>
            {
                match f {
                    Expr::Func(n, a) => Expr::Func(format!("arc{n}"), a),
                    other => other,
                }
            }
            Some(p) => Expr::Pow(Box::new(f), Box::new(p)),
            None => f,
        })
    }
}

/// Parse an already-normalised answer with a budget.
pub(crate) fn parse_prepared(s: &str, budget: &Budget) -> Result<Expr> {
    parse_nested(s, budget, MAX_DEPTH)
}

fn parse_nested(s: &str, budget: &Budget, max_depth: usize) -> Result<Expr> {
    let toks = lex(s, budget)?;
    if toks.is_empty() {
        return Err(err(0, "empty answer"));
    }
    let mut p = Parser { toks, pos: 0, budget, depth: 0, max_depth, arg_mode: false };
    let v = p.list(&[])?;
    if p.pos < p.toks.len() {
        return Err(err(p.pos, format!("unexpected {:?}", p.toks[p.pos].t)));
    }
    Ok(match v.len() {
        1 => v.into_iter().next().unwrap_or_else(|| Expr::int(0)),
        _ => Expr::List(v),
    })
}

/// Parse an answer (LaTeX or plain text) into an expression tree, with the default step budget.
///
/// ```
/// use mathforge_verify::parse_answer;
/// let e = parse_answer("\\frac{1}{2} + x").unwrap();
/// assert_eq!(e.to_string(), "{{{\\frac{1}{2}}} + {x}}");
/// assert_eq!(parse_answer(&e.to_string()).unwrap(), e);
/// ```
pub fn parse_answer(s: &str) -> Result<Expr> {
    let budget = Budget::new(crate::Config::default().step_budget);
    parse_prepared(&normalize::prepare(s, &[], false), &budget)
}

/// Parse text printed by [`Expr`]'s `Display`. That text is already in normal form, so the
/// normalisation of human input (unit words, `\text{}` wrappers) is skipped: it is a heuristic
/// on how people write answers and may read a printed variable `{s}` as "seconds". With it,
/// print → parse is the identity on trees (the fuzz target checks this). Printing brackets every
/// node, which nests up to about three groups per tree level, so the nesting limit here is
/// 4 × [`MAX_DEPTH`] (every tree [`parse_answer`] returns is at most [`MAX_DEPTH`] deep).
pub fn parse_canonical(s: &str) -> Result<Expr> {
    let budget = Budget::new(crate::Config::default().step_budget * 4);
    parse_nested(s, &budget, 4 * MAX_DEPTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Expr {
        parse_answer(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }
    fn num(a: i64, b: i64) -> Expr {
        Expr::Num(BigRational::new(a.into(), b.into()))
    }

    #[test]
    fn numbers() {
        assert_eq!(p("1,000"), Expr::int(1000));
        assert_eq!(p("10{,}000"), Expr::int(10000));
        assert_eq!(p("12\\,345"), Expr::int(12345));
        assert_eq!(p("0.\\overline{3}"), num(1, 3));
        assert_eq!(p("0.1\\overline{6}"), num(1, 6));
        assert_eq!(p("2\\frac14"), num(9, 4));
        assert_eq!(p("7 3/4"), num(31, 4));
        assert_eq!(p("-\\frac{3}{6}"), num(-1, 2));
        assert_eq!(p("1e-7"), Expr::Dec(BigRational::new(1.into(), 10_000_000.into()), 7));
        assert_eq!(p("2.50"), Expr::Dec(num_rational::Ratio::new(5.into(), 2.into()), 2));
    }

    #[test]
    fn structures() {
        assert!(matches!(p("(1, 2]"), Expr::Interval(_, _, true, false)));
        assert!(matches!(p("(1, 2)"), Expr::Tuple(_)));
        assert!(matches!(p("\\{1, 2\\}"), Expr::Set(_)));
        assert!(matches!(p("(-\\infty, 1) \\cup (2, \\infty)"), Expr::Union(_)));
        assert!(matches!(p("\\begin{pmatrix} 1 & 2 \\\\ 3 & 4 \\end{pmatrix}"), Expr::Matrix(_)));
        assert!(matches!(p("y = 2x + 1"), Expr::Rel(..)));
        assert!(matches!(p("1 \\pm \\sqrt{2}"), Expr::PlusMinus(..)));
        assert!(matches!(p("√2 + π"), Expr::Add(_)));
        assert!(matches!(p("\\sin^2 x"), Expr::Pow(..)));
    }

    #[test]
    fn operator_chains_are_bounded_and_round_trip() {
        // Regression (fuzz): `0!!!…!` built a tree deeper than the parser's recursion, which
        // printed to text too deeply nested to parse back. Chains now count as nesting.
        for n in [10, 60, 119, 200, 3000] {
            let inputs = [
                format!("0{}", "!".repeat(n)),
                format!("1{}", "/2".repeat(n)),
                format!("2{}", "\\%".repeat(n)),
                format!("1{}", " \\pm 1".repeat(n)),
                format!("{}1", "-".repeat(n)),
                format!("{}2{}", "\\sqrt{".repeat(n), "}".repeat(n)),
                format!("{}3{}", "(".repeat(n), ")^2".repeat(n)),
            ];
            for s in inputs {
                match parse_answer(&s) {
                    Ok(e) => {
                        let printed = e.to_string();
                        assert_eq!(parse_canonical(&printed).ok(), Some(e), "{s} via {printed}");
                    }
                    Err(e) => assert!(n > 10, "{s}: {e}"),
                }
            }
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_crash() {
        let s = "(".repeat(10_000) + "1" + &")".repeat(10_000);
        assert!(parse_answer(&s).is_err());
    }
}
