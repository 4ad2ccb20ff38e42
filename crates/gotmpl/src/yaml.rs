//! `toYaml`: KUDO's function, `gopkg.in/yaml.v2`'s `Marshal`, in its block style: mapping keys
//! in yaml.v2's natural order, sequences inside a mapping not indented, `{}`/`[]` when empty,
//! strings quoted only where they would read back as something else.

use std::cmp::Ordering;

use crate::number::go_float;
use crate::value::Value;

pub fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Map(m) if !m.is_empty() => mapping(v, 0, &mut out),
        Value::List(l) if !l.is_empty() => sequence(l, 0, &mut out),
        other => {
            out.push_str(&scalar(other, 0));
            out.push('\n');
        }
    }
    out
}

fn mapping(v: &Value, indent: usize, out: &mut String) {
    let Value::Map(map) = v else { return };
    let mut keys: Vec<&String> = map.keys().collect();
    keys.sort_by(|a, b| natural(a, b));
    for key in keys {
        let item = &map[key];
        out.push_str(&" ".repeat(indent));
        out.push_str(&string(key, indent));
        out.push(':');
        value_after_key(item, indent, out);
    }
}

fn value_after_key(item: &Value, indent: usize, out: &mut String) {
    match item {
        Value::Map(m) if !m.is_empty() => {
            out.push('\n');
            mapping(item, indent + 2, out);
        }
        Value::List(l) if !l.is_empty() => {
            out.push('\n');
            sequence(l, indent, out);
        }
        other => {
            out.push(' ');
            out.push_str(&scalar(other, indent + 2));
            out.push('\n');
        }
    }
}

fn sequence(items: &[Value], indent: usize, out: &mut String) {
    for item in items {
        out.push_str(&" ".repeat(indent));
        out.push('-');
        match item {
            Value::Map(m) if !m.is_empty() => {
                // The first key follows the dash; the rest align with it.
                let mut nested = String::new();
                mapping(item, indent + 2, &mut nested);
                out.push(' ');
                out.push_str(&nested[indent + 2..]);
            }
            Value::List(l) if !l.is_empty() => {
                let mut nested = String::new();
                sequence(l, indent + 2, &mut nested);
                out.push(' ');
                out.push_str(&nested[indent + 2..]);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value, indent: usize) -> String {
    match v {
        Value::Nil => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Int(i) | Value::Int64(i) => i.to_string(),
        Value::Float(f) if f.is_nan() => ".nan".into(),
        Value::Float(f) if f.is_infinite() => if *f > 0.0 { ".inf" } else { "-.inf" }.into(),
        Value::Float(f) => go_float(*f),
        Value::String(s) => string(s, indent),
        Value::List(_) => "[]".into(),
        Value::Map(_) => "{}".into(),
    }
}

/// A string scalar: plain where it reads back as the same string, a literal block when it has
/// line breaks, double quotes where plain would read as another type, single quotes where
/// plain is not allowed.
fn string(s: &str, indent: usize) -> String {
    if s.contains('\n') && s.chars().all(|c| c == '\n' || !c.is_control()) {
        return literal(s, indent);
    }
    if resolves_to_other_type(s) || s.chars().any(|c| c.is_control() && c != '\n') {
        return crate::format::go_quote(s);
    }
    if plain_allowed(s) {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn literal(s: &str, indent: usize) -> String {
    let trailing = s.len() - s.trim_end_matches('\n').len();
    let chomp = match trailing {
        0 => "-",
        1 => "",
        _ => "+",
    };
    let pad = " ".repeat(indent.max(2));
    let lead = if s.starts_with(' ') { "2" } else { "" };
    let mut out = format!("|{lead}{chomp}");
    let body = if trailing == 1 { &s[..s.len() - 1] } else { s.trim_end_matches('\n') };
    for line in body.split('\n') {
        out.push('\n');
        if !line.is_empty() {
            out.push_str(&pad);
            out.push_str(line);
        }
    }
    for _ in 1..trailing {
        out.push('\n');
    }
    out
}

/// Whether a plain scalar would read back as a bool, null, int or float under YAML 1.1, as
/// yaml.v2 resolves it.
fn resolves_to_other_type(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "y", "Y", "yes", "Yes", "YES", "n", "N", "no", "No", "NO", "true", "True",
        "TRUE", "false", "False", "FALSE", "on", "On", "ON", "off", "Off", "OFF", ".inf", ".Inf", ".INF", "+.inf",
        "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN", "<<",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let body = s.strip_prefix(['-', '+']).unwrap_or(s);
    let digits = body.replace('_', "");
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return true;
    }
    if let Some(hex) = digits.strip_prefix("0x") {
        return !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit());
    }
    if let Some(bin) = digits.strip_prefix("0b") {
        return !bin.is_empty() && bin.bytes().all(|b| b == b'0' || b == b'1');
    }
    let float = digits.parse::<f64>().is_ok()
        && digits.bytes().any(|b| b.is_ascii_digit())
        && !digits.contains("inf")
        && !digits.contains("nan");
    float || is_base60(&digits)
}

fn is_base60(s: &str) -> bool {
    let mut parts = s.split(':');
    let first = parts.next().unwrap_or_default();
    let rest: Vec<&str> = parts.collect();
    !rest.is_empty()
        && !first.is_empty()
        && first.bytes().all(|b| b.is_ascii_digit())
        && rest.iter().all(|p| {
            p.len() <= 2 && !p.is_empty() && p.split('.').next().is_some_and(|d| d.bytes().all(|b| b.is_ascii_digit()))
        })
}

/// libyaml's test for a plain scalar in block context.
fn plain_allowed(s: &str) -> bool {
    let first = s.chars().next().unwrap_or(' ');
    if s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    if "#,[]{}&*!|>'\"%@`".contains(first) {
        return false;
    }
    let second_is_space = s.chars().nth(1).is_none_or(|c| c == ' ');
    if matches!(first, '-' | '?' | ':') && second_is_space {
        return false;
    }
    if s.starts_with(' ') || s.ends_with(' ') || s.ends_with(':') {
        return false;
    }
    !(s.contains(": ") || s.contains(" #") || s.contains('\t'))
}

/// yaml.v2's key order: letters by code point, runs of digits by value, letters after
/// non-letters.
fn natural(a: &str, b: &str) -> Ordering {
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    for i in 0..ar.len().min(br.len()) {
        if ar[i] == br[i] {
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return if bl { Ordering::Less } else { Ordering::Greater };
        }
        let mut an: i64 = 0;
        let mut bn: i64 = 0;
        if ar[i] == '0' || br[i] == '0' {
            for j in (0..i).rev() {
                if !ar[j].is_ascii_digit() {
                    break;
                }
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.wrapping_mul(10).wrapping_add(i64::from(ar[ai] as u8 - b'0'));
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.wrapping_mul(10).wrapping_add(i64::from(br[bi] as u8 - b'0'));
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(entries.iter().map(|(k, v)| (k.to_string(), v.clone())).collect())
    }

    #[test]
    fn block_style_as_yaml_v2_writes_it() {
        let toleration = map(&[
            ("key", Value::from("dedicated")),
            ("operator", Value::from("Equal")),
            ("value", Value::from("true")),
            ("tolerationSeconds", Value::Float(3600.0)),
        ]);
        let doc = map(&[("list", Value::List(vec![toleration, Value::from("x")])), ("empty", Value::List(vec![]))]);
        assert_eq!(
            to_yaml(&doc),
            "empty: []\nlist:\n- key: dedicated\n  operator: Equal\n  tolerationSeconds: 3600\n  value: \"true\"\n- x\n"
        );
        assert_eq!(to_yaml(&Value::Nil), "null\n");
    }

    #[test]
    fn strings_are_quoted_only_when_needed() {
        assert_eq!(string("plain text", 0), "plain text");
        assert_eq!(string("123", 0), "\"123\"");
        assert_eq!(string("- item", 0), "'- item'");
        assert_eq!(string("a: b", 0), "'a: b'");
        assert_eq!(string("", 0), "\"\"");
    }

    #[test]
    fn keys_sort_naturally() {
        let mut keys = vec!["a10", "a2", "b", "A", "_x"];
        keys.sort_by(|a, b| natural(a, b));
        assert_eq!(keys, ["_x", "A", "a2", "a10", "b"]);
    }
}
