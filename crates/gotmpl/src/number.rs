//! Numbers as Go writes and reads them: `%v` of a `float64` (`strconv.FormatFloat(f, 'g', -1,
//! 64)`: shortest digits, exponent form below 1e-4 and from 1e+06), and Go's number literals.

/// A number literal: what Go's `NumberNode` keeps of it.
#[derive(Debug, Clone, PartialEq)]
pub struct Number {
    pub text: String,
    pub int: Option<i64>,
    pub float: Option<f64>,
}

/// Go's number literal rules, enough for templates: decimal, `0x`/`0o`/`0b` and octal
/// integers, `_` separators, decimal floats with exponents, and signs.
pub fn parse_number(text: &str) -> Option<Number> {
    let clean = text.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, clean.strip_prefix('+').unwrap_or(&clean)),
    };
    let radix_int = |digits: &str, radix: u32| i64::from_str_radix(digits, radix).ok();
    let lower = body.to_ascii_lowercase();
    let int = if let Some(hex) = lower.strip_prefix("0x") {
        radix_int(hex, 16)
    } else if let Some(oct) = lower.strip_prefix("0o") {
        radix_int(oct, 8)
    } else if let Some(bin) = lower.strip_prefix("0b") {
        radix_int(bin, 2)
    } else if body.len() > 1 && body.starts_with('0') && body.bytes().all(|b| b.is_ascii_digit()) {
        radix_int(&body[1..], 8)
    } else if !body.is_empty() && body.bytes().all(|b| b.is_ascii_digit()) {
        body.parse().ok()
    } else {
        None
    };
    let int = int.map(|i| if neg { -i } else { i });
    let float_ok = !lower.starts_with("0x") && body.bytes().any(|b| b.is_ascii_digit());
    let float = match int {
        Some(i) => Some(i as f64),
        None if float_ok => body.parse::<f64>().ok().filter(|f| f.is_finite()).map(|f| if neg { -f } else { f }),
        None => None,
    };
    if int.is_none() && float.is_none() {
        return None;
    }
    Some(Number { text: text.to_string(), int, float })
}

/// The shortest decimal digits of `f` and its decimal exponent (`0.d1d2... × 10^dp`).
fn shortest(f: f64) -> (String, i32) {
    // Rust's `{:e}` is the shortest representation that round-trips, as Go's -1 precision.
    let text = format!("{:e}", f.abs());
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let exp: i32 = exp.parse().unwrap_or(0);
    (digits, exp + 1)
}

/// `%v` of a `float64`: `%g` with the shortest digits, exponent form below 1e-4 and from 1e+06.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let sign = if f.is_sign_negative() { "-" } else { "" };
    if f == 0.0 {
        return format!("{sign}0");
    }
    let (digits, dp) = shortest(f);
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        let (first, rest) = digits.split_at(1);
        let mantissa = if rest.is_empty() { first.to_string() } else { format!("{first}.{rest}") };
        let esign = if exp < 0 { '-' } else { '+' };
        return format!("{sign}{mantissa}e{esign}{:02}", exp.abs());
    }
    format!("{sign}{}", fixed(&digits, dp))
}

/// Digits placed around the decimal point at `dp`, without trailing zeros after it.
fn fixed(digits: &str, dp: i32) -> String {
    if dp <= 0 {
        return format!("0.{}{digits}", "0".repeat(dp.unsigned_abs() as usize));
    }
    let dp = dp as usize;
    if digits.len() <= dp {
        return format!("{digits}{}", "0".repeat(dp - digits.len()));
    }
    format!("{}.{}", &digits[..dp], &digits[dp..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_as_go_prints_them() {
        let cases = [
            (3.0, "3"),
            (0.3, "0.3"),
            (100000.0, "100000"),
            (1e6, "1e+06"),
            (1234567.0, "1.234567e+06"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
            (123.456, "123.456"),
        ];
        for (f, go) in cases {
            assert_eq!(go_float(f), go, "{f}");
        }
    }
}
