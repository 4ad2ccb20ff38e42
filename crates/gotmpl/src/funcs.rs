//! The functions a KUDO template may call: Go's builtins and sprig v2.22's text functions as
//! KUDO configures them (without `env expandenv base dir clean ext isAbs`), plus `toYaml`.
//!
//! Each function declares Go's parameter types, because Go checks them: `until` takes an
//! `int`, so `until .Params.N` (a string) is an error, and `until (int .Params.N)` is how
//! packages write it. Numbers convert as sprig's `cast` does (`"08"` is not a number: 0).

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use base64::Engine as _;

use crate::format;
use crate::value::{Kind, Value};
use crate::yaml;

/// A parameter's Go type, as far as argument checking needs it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    /// `interface{}` (and builtins' `reflect.Value`).
    Any,
    Str,
    Int,
    Bool,
    Map,
}

pub type Call = fn(&[Value]) -> Result<Value, String>;

#[derive(Clone, Copy)]
pub struct Func {
    pub params: &'static [Param],
    /// The type of the `...` parameter, if the function has one.
    pub variadic: Option<Param>,
    pub call: Call,
}

/// The longest list `until`/`untilStep` make: a template must not exhaust the host.
pub const MAX_RANGE: i64 = 1_000_000;

use Param::{Any, Bool as PBool, Int as PInt, Map as PMap, Str};

const fn f(params: &'static [Param], call: Call) -> Func {
    Func { params, variadic: None, call }
}

const fn v(params: &'static [Param], rest: Param, call: Call) -> Func {
    Func { params, variadic: Some(rest), call }
}

/// KUDO's function map (names `and`/`or` are evaluated lazily by the executor, as Go does).
pub fn kudo() -> &'static HashMap<&'static str, Func> {
    static MAP: OnceLock<HashMap<&'static str, Func>> = OnceLock::new();
    MAP.get_or_init(|| {
        HashMap::from([
            // Go's builtins.
            ("and", v(&[Any], Any, |a| Ok(a[0].clone()))),
            ("or", v(&[Any], Any, |a| Ok(a[0].clone()))),
            ("not", f(&[Any], |a| Ok(Value::Bool(!a[0].truth())))),
            ("len", f(&[Any], len)),
            ("index", v(&[Any], Any, index)),
            ("print", v(&[], Any, |a| Ok(Value::String(format::sprint(a))))),
            ("println", v(&[], Any, |a| Ok(Value::String(format::sprintln(a))))),
            ("printf", v(&[Str], Any, |a| Ok(Value::String(format::sprintf(str_of(&a[0]), &a[1..]))))),
            ("eq", v(&[Any], Any, eq)),
            ("ne", f(&[Any, Any], |a| eq(a).map(|b| Value::Bool(!b.truth())))),
            ("lt", f(&[Any, Any], |a| less(&a[0], &a[1]).map(Value::Bool))),
            ("le", f(&[Any, Any], |a| Ok(Value::Bool(less(&a[0], &a[1])? || eq(a)?.truth())))),
            ("gt", f(&[Any, Any], |a| Ok(Value::Bool(!(less(&a[0], &a[1])? || eq(a)?.truth()))))),
            ("ge", f(&[Any, Any], |a| less(&a[0], &a[1]).map(|b| Value::Bool(!b)))),
            // sprig: numbers.
            ("int", f(&[Any], |a| Ok(Value::Int(to_int64(&a[0]))))),
            ("int64", f(&[Any], |a| Ok(Value::Int64(to_int64(&a[0]))))),
            ("float64", f(&[Any], |a| Ok(Value::Float(to_float64(&a[0]))))),
            ("add", v(&[], Any, |a| Ok(Value::Int64(a.iter().map(to_int64).fold(0, i64::wrapping_add))))),
            ("add1", f(&[Any], |a| Ok(Value::Int64(to_int64(&a[0]).wrapping_add(1))))),
            ("sub", f(&[Any, Any], |a| Ok(Value::Int64(to_int64(&a[0]).wrapping_sub(to_int64(&a[1])))))),
            ("mul", v(&[Any], Any, |a| Ok(Value::Int64(a.iter().map(to_int64).fold(1, i64::wrapping_mul))))),
            ("div", f(&[Any, Any], |a| divide(a, i64::checked_div))),
            ("mod", f(&[Any, Any], |a| divide(a, i64::checked_rem))),
            ("min", v(&[Any], Any, |a| Ok(Value::Int64(a.iter().map(to_int64).min().unwrap_or(0))))),
            ("max", v(&[Any], Any, |a| Ok(Value::Int64(a.iter().map(to_int64).max().unwrap_or(0))))),
            ("until", f(&[PInt], |a| until_step(0, int_of(&a[0]), if int_of(&a[0]) < 0 { -1 } else { 1 }))),
            ("untilStep", f(&[PInt, PInt, PInt], |a| until_step(int_of(&a[0]), int_of(&a[1]), int_of(&a[2])))),
            // sprig: strings.
            ("trim", f(&[Str], |a| Ok(str_of(&a[0]).trim_matches([' ', '\t', '\n', '\r', '\u{b}', '\u{c}']).into()))),
            ("trimAll", f(&[Str, Str], |a| Ok(str_of(&a[1]).trim_matches(|c| str_of(&a[0]).contains(c)).into()))),
            (
                "trimSuffix",
                f(&[Str, Str], |a| Ok(str_of(&a[1]).strip_suffix(str_of(&a[0])).unwrap_or(str_of(&a[1])).into())),
            ),
            (
                "trimPrefix",
                f(&[Str, Str], |a| Ok(str_of(&a[1]).strip_prefix(str_of(&a[0])).unwrap_or(str_of(&a[1])).into())),
            ),
            ("upper", f(&[Str], |a| Ok(str_of(&a[0]).to_uppercase().into()))),
            ("lower", f(&[Str], |a| Ok(str_of(&a[0]).to_lowercase().into()))),
            ("replace", f(&[Str, Str, Str], |a| Ok(str_of(&a[2]).replace(str_of(&a[0]), str_of(&a[1])).into()))),
            ("repeat", f(&[PInt, Str], repeat)),
            ("contains", f(&[Str, Str], |a| Ok(Value::Bool(str_of(&a[1]).contains(str_of(&a[0])))))),
            ("hasPrefix", f(&[Str, Str], |a| Ok(Value::Bool(str_of(&a[1]).starts_with(str_of(&a[0])))))),
            ("hasSuffix", f(&[Str, Str], |a| Ok(Value::Bool(str_of(&a[1]).ends_with(str_of(&a[0])))))),
            ("indent", f(&[PInt, Str], |a| Ok(indent(int_of(&a[0]), str_of(&a[1])).into()))),
            ("nindent", f(&[PInt, Str], |a| Ok(format!("\n{}", indent(int_of(&a[0]), str_of(&a[1]))).into()))),
            ("quote", v(&[], Any, |a| Ok(quoted(a, |s| format::go_quote(&s)).into()))),
            ("squote", v(&[], Any, |a| Ok(quoted(a, |s| format!("'{s}'")).into()))),
            ("toString", f(&[Any], |a| Ok(strval(&a[0]).into()))),
            ("join", f(&[Str, Any], |a| Ok(strslice(&a[1]).join(str_of(&a[0])).into()))),
            (
                "splitList",
                f(&[Str, Str], |a| Ok(Value::List(str_of(&a[1]).split(str_of(&a[0])).map(Value::from).collect()))),
            ),
            ("b64enc", f(&[Str], |a| Ok(base64::engine::general_purpose::STANDARD.encode(str_of(&a[0])).into()))),
            ("b64dec", f(&[Str], |a| Ok(b64dec(str_of(&a[0])).into()))),
            // sprig: defaults, lists, dicts, encodings.
            ("default", v(&[Any], Any, |a| Ok(if a.len() < 2 || empty(&a[1]) { a[0].clone() } else { a[1].clone() }))),
            ("empty", f(&[Any], |a| Ok(Value::Bool(empty(&a[0]))))),
            ("coalesce", v(&[], Any, |a| Ok(a.iter().find(|v| !empty(v)).cloned().unwrap_or(Value::Nil)))),
            ("ternary", f(&[Any, Any, PBool], |a| Ok(if a[2].truth() { a[0].clone() } else { a[1].clone() }))),
            ("list", v(&[], Any, |a| Ok(Value::List(a.to_vec())))),
            ("first", f(&[Any], |a| Ok(list_of(&a[0])?.first().cloned().unwrap_or(Value::Nil)))),
            ("last", f(&[Any], |a| Ok(list_of(&a[0])?.last().cloned().unwrap_or(Value::Nil)))),
            ("dict", v(&[], Any, dict)),
            (
                "hasKey",
                f(&[PMap, Str], |a| Ok(Value::Bool(matches!(&a[0], Value::Map(m) if m.contains_key(str_of(&a[1])))))),
            ),
            ("toJson", f(&[Any], |a| Ok(to_json(&a[0]).into()))),
            ("toYaml", f(&[Any], |a| Ok(yaml::to_yaml(&a[0]).into()))),
        ])
    })
}

fn str_of(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn int_of(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        _ => 0,
    }
}

/// `cast.ToInt64` as sprig calls it, errors ignored: strings parse with Go's base prefixes
/// after dropping a zero decimal part (`"3.0"` is 3), anything else that is not a number is 0.
pub fn to_int64(v: &Value) -> i64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i,
        Value::Float(f) => *f as i64,
        Value::Bool(b) => i64::from(*b),
        Value::String(s) => crate::number::parse_number(trim_zero_decimal(s)).and_then(|n| n.int).unwrap_or(0),
        _ => 0,
    }
}

fn trim_zero_decimal(s: &str) -> &str {
    let mut found_zero = false;
    for (i, b) in s.bytes().enumerate().rev() {
        match b {
            b'.' if found_zero => return &s[..i],
            b'0' => found_zero = true,
            _ => return s,
        }
    }
    s
}

/// `cast.ToFloat64`, errors ignored.
fn to_float64(v: &Value) -> f64 {
    match v {
        Value::Int(i) | Value::Int64(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Bool(b) => f64::from(u8::from(*b)),
        Value::String(s) => s.parse().unwrap_or(0.0),
        _ => 0.0,
    }
}

fn divide(a: &[Value], op: fn(i64, i64) -> Option<i64>) -> Result<Value, String> {
    let (x, y) = (to_int64(&a[0]), to_int64(&a[1]));
    if y == 0 {
        return Err("runtime error: integer divide by zero".into());
    }
    Ok(Value::Int64(op(x, y).unwrap_or(x)))
}

fn until_step(start: i64, stop: i64, step: i64) -> Result<Value, String> {
    let count = if step == 0 || (stop > start) != (step > 0) {
        0
    } else {
        {
            let (span, step) = ((stop - start).abs(), step.abs());
            (span + step - 1) / step
        }
    };
    if count > MAX_RANGE {
        return Err(format!("a list of {count} numbers is over the limit of {MAX_RANGE}"));
    }
    let items = (0..count).map(|n| Value::Int(start + n * step)).collect();
    Ok(Value::List(items))
}

fn repeat(a: &[Value]) -> Result<Value, String> {
    let (count, text) = (int_of(&a[0]).max(0), str_of(&a[1]));
    if (count as u128) * (text.len() as u128) > 16 << 20 {
        return Err("repeat would make more than 16 MiB".into());
    }
    Ok(text.repeat(count as usize).into())
}

fn indent(spaces: i64, text: &str) -> String {
    let pad = " ".repeat(spaces.clamp(0, 1 << 16) as usize);
    format!("{pad}{}", text.replace('\n', &format!("\n{pad}")))
}

/// sprig's `strval`: strings as they are, everything else as `%v`.
fn strval(v: &Value) -> String {
    v.to_go_string()
}

fn quoted(args: &[Value], quote: impl Fn(String) -> String) -> String {
    args.iter().filter(|a| !matches!(a, Value::Nil)).map(|a| quote(strval(a))).collect::<Vec<_>>().join(" ")
}

fn strslice(v: &Value) -> Vec<String> {
    match v {
        Value::List(items) => items.iter().filter(|i| !matches!(i, Value::Nil)).map(strval).collect(),
        Value::Nil => vec![],
        other => vec![strval(other)],
    }
}

fn b64dec(s: &str) -> String {
    match base64::engine::general_purpose::STANDARD.decode(s) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(base64::DecodeError::InvalidByte(at, _) | base64::DecodeError::InvalidLastSymbol(at, _)) => {
            format!("illegal base64 data at input byte {at}")
        }
        Err(_) => format!("illegal base64 data at input byte {}", s.len() / 4 * 4),
    }
}

/// sprig's `empty`.
pub fn empty(v: &Value) -> bool {
    !v.truth()
}

fn list_of(v: &Value) -> Result<&[Value], String> {
    match v {
        Value::List(items) => Ok(items),
        Value::Nil => Ok(&[]),
        other => Err(format!("Cannot find first on type {}", other.type_name())),
    }
}

fn dict(a: &[Value]) -> Result<Value, String> {
    let mut map = BTreeMap::new();
    for pair in a.chunks(2) {
        let value = pair.get(1).cloned().unwrap_or_else(|| Value::String(String::new()));
        map.insert(strval(&pair[0]), value);
    }
    Ok(Value::Map(map))
}

fn len(a: &[Value]) -> Result<Value, String> {
    Ok(Value::Int(match &a[0] {
        Value::String(s) => s.len(),
        Value::List(l) => l.len(),
        Value::Map(m) => m.len(),
        Value::Nil => return Err("len of nil pointer".into()),
        other => return Err(format!("len of type {}", other.type_name())),
    } as i64))
}

fn index(a: &[Value]) -> Result<Value, String> {
    let mut item = a[0].clone();
    for key in &a[1..] {
        item = match (&item, key) {
            (Value::Nil, _) => return Err("index of untyped nil".into()),
            (Value::List(items), Value::Int(i) | Value::Int64(i)) => {
                let at = usize::try_from(*i).ok().filter(|i| *i < items.len());
                at.map(|i| items[i].clone()).ok_or_else(|| format!("index out of range: {i}"))?
            }
            (Value::List(_), Value::Nil) => return Err("cannot index slice/array with nil".into()),
            (Value::List(_), other) => return Err(format!("cannot index slice/array with type {}", other.type_name())),
            (Value::Map(map), Value::String(k)) => map.get(k).cloned().unwrap_or(Value::Nil),
            (Value::Map(_), other) => {
                return Err(format!("value has type {}; should be string", other.type_name()));
            }
            (other, _) => return Err(format!("can't index item of type {}", other.type_name())),
        };
    }
    Ok(item)
}

/// Go's `eq arg1 arg2...`: true if arg1 equals any of the others; basic kinds only compare
/// within a kind (ints of any size together).
fn eq(a: &[Value]) -> Result<Value, String> {
    if a.len() < 2 {
        return Err("missing argument for comparison".into());
    }
    let first = &a[0];
    for other in &a[1..] {
        let equal = match (first.kind(), other.kind()) {
            (k1, k2) if k1 != k2 => {
                if matches!(first, Value::Nil) || matches!(other, Value::Nil) {
                    false
                } else {
                    return Err("incompatible types for comparison".into());
                }
            }
            (Kind::Int, _) => to_int64(first) == to_int64(other),
            (Kind::Other, _) => match (first, other) {
                (Value::Nil, Value::Nil) => true,
                (Value::Nil, _) | (_, Value::Nil) => false,
                _ => return Err(format!("non-comparable type {}: {}", other.to_go_string(), other.type_name())),
            },
            _ => first == other,
        };
        if equal {
            return Ok(Value::Bool(true));
        }
    }
    Ok(Value::Bool(false))
}

fn less(a: &Value, b: &Value) -> Result<bool, String> {
    match (a, b) {
        (Value::Int(x) | Value::Int64(x), Value::Int(y) | Value::Int64(y)) => Ok(x < y),
        (Value::Float(x), Value::Float(y)) => Ok(x < y),
        (Value::String(x), Value::String(y)) => Ok(x < y),
        _ if matches!(a.kind(), Kind::Other | Kind::Bool) || matches!(b.kind(), Kind::Other | Kind::Bool) => {
            Err("invalid type for comparison".into())
        }
        _ => Err("incompatible types for comparison".into()),
    }
}

/// `json.Marshal` as sprig's `toJson` calls it: sorted keys, HTML characters escaped.
fn to_json(v: &Value) -> String {
    let mut out = String::new();
    write_json(v, &mut out);
    out
}

fn write_json(v: &Value, out: &mut String) {
    match v {
        Value::Nil => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) | Value::Int64(i) => out.push_str(&i.to_string()),
        Value::Float(f) => out.push_str(&json_float(*f)),
        Value::String(s) => json_string(s, out),
        Value::List(items) => {
            out.push('[');
            for (n, item) in items.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Value::Map(map) => {
            out.push('{');
            for (n, (key, item)) in map.iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                json_string(key, out);
                out.push(':');
                write_json(item, out);
            }
            out.push('}');
        }
    }
}

/// `encoding/json`'s float: shortest digits, exponent form below 1e-6 and from 1e21.
fn json_float(f: f64) -> String {
    let abs = f.abs();
    if abs != 0.0 && !(1e-6..1e21).contains(&abs) {
        let text = format!("{f:e}");
        let (mantissa, exp) = text.split_once('e').unwrap_or((&text, "0"));
        let exp: i32 = exp.parse().unwrap_or(0);
        return format!("{mantissa}e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs());
    }
    let text = format!("{f}");
    text.strip_suffix(".0").map(str::to_string).unwrap_or(text)
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, args: &[Value]) -> Result<Value, String> {
        (kudo()[name].call)(args)
    }

    #[test]
    fn numbers_convert_as_cast_does() {
        for (text, n) in [("3", 3), ("3.0", 3), ("0x10", 16), ("010", 8), ("08", 0), ("0.3", 0), ("x", 0), ("-2", -2)] {
            assert_eq!(to_int64(&Value::from(text)), n, "{text}");
        }
        assert_eq!(to_int64(&Value::Float(2.9)), 2);
    }

    #[test]
    fn arithmetic_returns_int64_and_division_by_zero_is_an_error() {
        assert_eq!(call("add", &[Value::from("2"), Value::Float(3.0)]), Ok(Value::Int64(5)));
        assert_eq!(call("div", &[Value::Int(7), Value::Int(2)]), Ok(Value::Int64(3)));
        assert_eq!(call("div", &[Value::Int(7), Value::Int(0)]), Err("runtime error: integer divide by zero".into()));
    }

    #[test]
    fn ranges_are_sprigs() {
        let ints = |v: Value| match v {
            Value::List(items) => items.iter().map(int_of).collect::<Vec<_>>(),
            _ => vec![],
        };
        assert_eq!(ints(until_step(0, 3, 1).unwrap()), [0, 1, 2]);
        assert_eq!(ints(until_step(3, 0, -1).unwrap()), [3, 2, 1]);
        assert_eq!(ints(until_step(1, 6, 2).unwrap()), [1, 3, 5]);
        assert!(ints(until_step(0, 3, -1).unwrap()).is_empty());
        assert!(until_step(0, MAX_RANGE + 1, 1).is_err());
    }

    #[test]
    fn eq_compares_within_a_kind() {
        assert_eq!(eq(&[Value::Int(1), Value::Int64(1)]), Ok(Value::Bool(true)));
        assert_eq!(eq(&[Value::from("a"), Value::from("b"), Value::from("a")]), Ok(Value::Bool(true)));
        assert_eq!(eq(&[Value::from("1"), Value::Int(1)]), Err("incompatible types for comparison".into()));
        assert_eq!(eq(&[Value::Nil, Value::from("a")]), Ok(Value::Bool(false)));
    }

    #[test]
    fn to_json_is_go_json() {
        let map = Value::Map([("b".to_string(), Value::Float(1e21)), ("a".to_string(), Value::from("<x>"))].into());
        assert_eq!(to_json(&map), r#"{"a":"\u003cx\u003e","b":1e+21}"#);
        assert_eq!(json_float(3.0), "3");
        assert_eq!(json_float(0.5), "0.5");
    }
}
