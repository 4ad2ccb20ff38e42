//! Go's string formatting, where templates show it: `%q` (`strconv.Quote`), `fmt.Sprint`,
//! and the verbs of `printf` that templates use (`%v` of a float is `number::go_float`).

use crate::number::go_float;
use crate::value::Value;

/// `strconv.Quote`: a double-quoted Go string literal.
pub fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if is_printable(c) => out.push(c),
            c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push_str(&format!("\\U{:08x}", c as u32)),
        }
    }
    out.push('"');
    out
}

/// Close to Go's `strconv.IsPrint` for what YAML and JSON carry: controls and unassigned
/// code points are escaped.
fn is_printable(c: char) -> bool {
    !c.is_control() && !matches!(c as u32, 0xfffe | 0xffff | 0xd800..=0xdfff | 0x2028 | 0x2029 | 0xa0 | 0xad)
}

/// `fmt.Sprint(args...)`: a space between operands when neither is a string.
pub fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (n, arg) in args.iter().enumerate() {
        if n > 0 && !matches!(arg, Value::String(_)) && !matches!(args[n - 1], Value::String(_)) {
            out.push(' ');
        }
        arg.write_go(&mut out);
    }
    out
}

/// `fmt.Sprintln(args...)`: spaces between all operands, a newline at the end.
pub fn sprintln(args: &[Value]) -> String {
    let parts: Vec<String> = args.iter().map(Value::to_go_string).collect();
    format!("{}\n", parts.join(" "))
}

/// `fmt.Sprintf` for the verbs templates use: `%v %s %d %q %f %t %x %%`, with width and
/// precision; a wrong verb for a value prints as Go does (`%!d(string=x)`).
pub fn sprintf(format: &str, args: &[Value]) -> String {
    let mut out = String::new();
    let mut args = args.iter();
    let mut chars = format.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut spec = String::new();
        while let Some(&next) = chars.peek() {
            if next.is_ascii_digit() || matches!(next, '-' | '+' | '.' | ' ' | '#' | '0') {
                spec.push(next);
                chars.next();
            } else {
                break;
            }
        }
        let Some(verb) = chars.next() else {
            out.push_str("%!(NOVERB)");
            break;
        };
        if verb == '%' {
            out.push('%');
            continue;
        }
        match args.next() {
            Some(arg) => out.push_str(&verb_of(verb, &spec, arg)),
            None => out.push_str(&format!("%!{verb}(MISSING)")),
        }
    }
    let extra: Vec<String> = args.map(|a| format!("{}={}", a.type_name(), a.to_go_string())).collect();
    if !extra.is_empty() {
        out.push_str(&format!("%!(EXTRA {})", extra.join(", ")));
    }
    out
}

fn verb_of(verb: char, spec: &str, arg: &Value) -> String {
    let left = spec.contains('-');
    let zero = spec.starts_with('0') && !left;
    let (width, precision) = width_precision(spec);
    let text = match (verb, arg) {
        ('v', _) | ('s', Value::String(_)) => arg.to_go_string(),
        ('s', Value::List(_) | Value::Map(_)) => arg.to_go_string(),
        ('d', Value::Int(i) | Value::Int64(i)) => i.to_string(),
        ('x', Value::Int(i) | Value::Int64(i)) => format!("{i:x}"),
        ('X', Value::Int(i) | Value::Int64(i)) => format!("{i:X}"),
        ('x', Value::String(s)) => s.bytes().map(|b| format!("{b:02x}")).collect(),
        ('q', Value::String(s)) => go_quote(s),
        ('t', Value::Bool(b)) => b.to_string(),
        ('f' | 'F', Value::Float(f)) => format!("{:.*}", precision.unwrap_or(6), f),
        ('e', Value::Float(f)) => go_exp(*f, precision.unwrap_or(6)),
        ('g', Value::Float(f)) => go_float(*f),
        (_, Value::Nil) => format!("%!{verb}(<nil>)"),
        _ => format!("%!{verb}({}={})", arg.type_name(), arg.to_go_string()),
    };
    let text = match (verb, precision) {
        ('s' | 'v', Some(p)) if matches!(arg, Value::String(_)) => text.chars().take(p).collect(),
        _ => text,
    };
    pad(text, width, left, zero)
}

fn width_precision(spec: &str) -> (usize, Option<usize>) {
    let digits = spec.trim_start_matches(['-', '+', ' ', '#']);
    let (w, p) = match digits.split_once('.') {
        Some((w, p)) => (w, Some(p.parse().unwrap_or(0))),
        None => (digits, None),
    };
    (w.parse().unwrap_or(0), p)
}

fn pad(text: String, width: usize, left: bool, zero: bool) -> String {
    let len = text.chars().count();
    if len >= width {
        return text;
    }
    let fill = width - len;
    if left {
        format!("{text}{}", " ".repeat(fill))
    } else if zero {
        match text.strip_prefix('-') {
            Some(rest) => format!("-{}{rest}", "0".repeat(fill)),
            None => format!("{}{text}", "0".repeat(fill)),
        }
    } else {
        format!("{}{text}", " ".repeat(fill))
    }
}

/// `%e` with a precision: `1.500000e+06`.
fn go_exp(f: f64, precision: usize) -> String {
    let text = format!("{f:.precision$e}");
    let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_is_strconv_quote() {
        assert_eq!(go_quote("a \"b\"\n\t\\"), r#""a \"b\"\n\t\\""#);
        assert_eq!(go_quote("\u{1}é"), r#""\x01é""#);
    }

    #[test]
    fn sprint_spaces_only_between_non_strings() {
        let args = [Value::Int(1), Value::Int(2), Value::from("a"), Value::Int(3)];
        assert_eq!(sprint(&args), "1 2a3");
    }

    #[test]
    fn printf_verbs() {
        let args = [Value::from("x"), Value::Int(7), Value::Float(1.5)];
        assert_eq!(sprintf("%s-%03d-%.2f %q", &args[..]), "x-007-1.50 %!q(MISSING)");
        assert_eq!(sprintf("%d", &[Value::from("x")]), "%!d(string=x)");
    }
}
