//! Resource quantities written back in Kubernetes' canonical form, as the API server stores
//! them: `cpu: 0.3` reads back `300m`, `memory: 1024Mi` reads back `1Gi`, `1000k` reads back
//! `1M`. Clients and asserts compare what they read, so the simulator must agree with a real
//! server (k8s.io/apimachinery `resource.Quantity`). A value that is not a quantity is left
//! as written.

use serde_json::Value;

use crate::discovery::ResourceDef;

const DECIMAL: [(&str, i32); 10] =
    [("n", -9), ("u", -6), ("m", -3), ("", 0), ("k", 3), ("M", 6), ("G", 9), ("T", 12), ("P", 15), ("E", 18)];
const BINARY: [(&str, u32); 6] = [("Ki", 1), ("Mi", 2), ("Gi", 3), ("Ti", 4), ("Pi", 5), ("Ei", 6)];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Format {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// A parsed quantity: `negative`, `mantissa` × 10^`exponent`, and the format it was written in.
#[derive(Debug)]
struct Quantity {
    negative: bool,
    mantissa: u128,
    exponent: i32,
    format: Format,
}

fn parse(text: &str) -> Option<Quantity> {
    let text = text.trim();
    let (negative, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let number_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
    let (number, suffix) = rest.split_at(number_end);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() || number.matches('.').count() > 1 {
        return None;
    }
    let digits = format!("{whole}{fraction}");
    let mut mantissa: u128 = if digits.is_empty() { 0 } else { digits.parse().ok()? };
    let mut exponent = -(fraction.len() as i32);
    let format = if let Some((_, power)) = BINARY.iter().find(|(s, _)| *s == suffix) {
        mantissa = mantissa.checked_mul(1024u128.checked_pow(*power)?)?;
        Format::BinarySi
    } else if let Some((_, shift)) = DECIMAL.iter().find(|(s, _)| *s == suffix) {
        exponent += shift;
        Format::DecimalSi
    } else if let Some(power) = suffix.strip_prefix(['e', 'E']) {
        exponent += power.parse::<i32>().ok()?;
        Format::DecimalExponent
    } else {
        return None;
    };
    Some(Quantity { negative, mantissa, exponent, format })
}

/// The whole number of units (10^0) when the quantity has one.
fn integral(q: &Quantity) -> Option<u128> {
    if q.exponent >= 0 {
        return q.mantissa.checked_mul(10u128.checked_pow(q.exponent as u32)?);
    }
    let divisor = 10u128.checked_pow(q.exponent.unsigned_abs())?;
    q.mantissa.is_multiple_of(divisor).then(|| q.mantissa / divisor)
}

/// Kubernetes' canonical text of a quantity.
pub(crate) fn canonical(text: &str) -> Option<String> {
    let mut q = parse(text)?;
    let sign = if q.negative && q.mantissa != 0 { "-" } else { "" };
    if q.format == Format::BinarySi {
        match integral(&q) {
            Some(bytes) if bytes >= 1024 => {
                let (suffix, power) =
                    BINARY.iter().rev().find(|(_, p)| bytes % 1024u128.pow(*p) == 0).copied().unwrap_or(("", 0));
                return Some(format!("{sign}{}{suffix}", bytes / 1024u128.pow(power)));
            }
            _ => q.format = Format::DecimalSi,
        }
    }
    if q.mantissa == 0 {
        return Some("0".into());
    }
    while q.mantissa % 10 == 0 {
        q.mantissa /= 10;
        q.exponent += 1;
    }
    // The exponent goes down to a multiple of three (a suffix), the mantissa up with it.
    let mut target = q.exponent.div_euclid(3) * 3;
    if target < -9 {
        // Below a nano-unit the API server rounds up to whole nano-units.
        let divisor = 10u128.checked_pow((-9 - q.exponent) as u32)?;
        q.mantissa = q.mantissa.div_ceil(divisor);
        q.exponent = -9;
        target = -9;
    }
    let target = target.min(18);
    let mantissa = q.mantissa.checked_mul(10u128.checked_pow((q.exponent - target) as u32)?)?;
    let suffix = match q.format {
        Format::DecimalExponent if target == 0 => String::new(),
        Format::DecimalExponent => format!("e{target}"),
        _ => DECIMAL.iter().find(|(_, shift)| *shift == target)?.0.to_string(),
    };
    Some(format!("{sign}{mantissa}{suffix}"))
}

fn canonicalize_map(map: Option<&mut Value>) {
    let Some(map) = map.and_then(Value::as_object_mut) else { return };
    for value in map.values_mut() {
        let text = match value {
            Value::String(text) => text.clone(),
            Value::Number(number) => number.to_string(),
            _ => continue,
        };
        if let Some(canonical) = canonical(&text) {
            *value = Value::String(canonical);
        }
    }
}

fn pod_spec(spec: Option<&mut Value>) {
    let Some(spec) = spec else { return };
    for list in ["containers", "initContainers", "ephemeralContainers"] {
        for container in spec.get_mut(list).and_then(Value::as_array_mut).into_iter().flatten() {
            canonicalize_map(container.pointer_mut("/resources/requests"));
            canonicalize_map(container.pointer_mut("/resources/limits"));
        }
    }
    canonicalize_map(spec.pointer_mut("/overhead"));
}

fn claim_spec(spec: Option<&mut Value>) {
    let Some(spec) = spec else { return };
    canonicalize_map(spec.pointer_mut("/resources/requests"));
    canonicalize_map(spec.pointer_mut("/resources/limits"));
}

/// Writes the quantities of the kinds that hold them in canonical form.
pub(crate) fn canonicalize(def: &ResourceDef, obj: &mut Value) {
    match (def.group.as_str(), def.plural.as_str()) {
        ("", "pods") => pod_spec(obj.pointer_mut("/spec")),
        ("", "podtemplates") => pod_spec(obj.pointer_mut("/template/spec")),
        ("apps", "deployments" | "replicasets" | "daemonsets") | ("batch", "jobs") | ("", "replicationcontrollers") => {
            pod_spec(obj.pointer_mut("/spec/template/spec"))
        }
        ("apps", "statefulsets") => {
            pod_spec(obj.pointer_mut("/spec/template/spec"));
            for claim in
                obj.pointer_mut("/spec/volumeClaimTemplates").and_then(Value::as_array_mut).into_iter().flatten()
            {
                claim_spec(claim.get_mut("spec"));
            }
        }
        ("batch", "cronjobs") => pod_spec(obj.pointer_mut("/spec/jobTemplate/spec/template/spec")),
        ("", "persistentvolumeclaims") => claim_spec(obj.get_mut("spec")),
        ("", "persistentvolumes") => canonicalize_map(obj.pointer_mut("/spec/capacity")),
        ("", "resourcequotas") => canonicalize_map(obj.pointer_mut("/spec/hard")),
        ("", "limitranges") => {
            for limit in obj.pointer_mut("/spec/limits").and_then(Value::as_array_mut).into_iter().flatten() {
                for field in ["max", "min", "default", "defaultRequest", "maxLimitRequestRatio"] {
                    canonicalize_map(limit.get_mut(field));
                }
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    #[test]
    fn quantities_read_back_as_a_real_api_server_writes_them() {
        let cases = [
            ("0.3", "300m"),
            ("250m", "250m"),
            ("1000m", "1"),
            ("1500m", "1500m"),
            ("1.5", "1500m"),
            ("2", "2"),
            ("1000k", "1M"),
            ("1024Mi", "1Gi"),
            ("2048Mi", "2Gi"),
            ("1536Mi", "1536Mi"),
            ("0.5Gi", "512Mi"),
            ("1.5Ki", "1536"),
            ("100", "100"),
            ("512", "512"),
            ("5Gi", "5Gi"),
            ("1e3", "1e3"),
            ("1200e0", "1200"),
            ("0.0000000001", "1n"),
            ("-0.3", "-300m"),
            ("0", "0"),
            ("0Gi", "0"),
        ];
        for (written, read) in cases {
            assert_eq!(canonical(written).as_deref(), Some(read), "{written}");
        }
        for bad in ["", "abc", "1.2.3", "5Gb", "1e", "m"] {
            assert_eq!(canonical(bad), None, "{bad:?} is not a quantity");
        }
    }
}
