//! C++ `ostream` default float formatting (`%g` with a given precision), so printed
//! probabilities, `test` metrics and `.vec` files match fastText's byte for byte.

/// Format like `printf("%.{prec}g", x)` / `ostream << setprecision(prec) << x`.
pub fn fmt_g(x: f64, prec: usize) -> String {
    let prec = prec.max(1);
    if x.is_nan() {
        return if x.is_sign_negative() { "-nan".into() } else { "nan".into() };
    }
    if x.is_infinite() {
        return if x < 0.0 { "-inf".into() } else { "inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0".into() } else { "0".into() };
    }
    // The exponent after rounding to `prec` significant digits decides the style.
    let sci = format!("{:.*e}", prec - 1, x);
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= prec as i32 {
        let mant = strip_zeros(mant);
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    } else {
        let decimals = (prec as i32 - 1 - exp).max(0) as usize;
        strip_zeros(&format!("{:.*}", decimals, x)).to_string()
    }
}

fn strip_zeros(s: &str) -> &str {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.')
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::fmt_g;

    #[test]
    fn matches_printf_g() {
        assert_eq!(fmt_g(1.00001, 6), "1.00001");
        assert_eq!(fmt_g(0.5, 6), "0.5");
        assert_eq!(fmt_g(1.0, 3), "1");
        assert_eq!(fmt_g(0.96666, 3), "0.967");
        assert_eq!(fmt_g(1.2e-5, 6), "1.2e-05");
        assert_eq!(fmt_g(0.0001, 6), "0.0001");
        assert_eq!(fmt_g(123456.7, 6), "123457");
        assert_eq!(fmt_g(1234567.0, 6), "1.23457e+06");
        assert_eq!(fmt_g(-0.0123456789, 5), "-0.012346");
        assert_eq!(fmt_g(0.99999999, 6), "1");
    }
}
