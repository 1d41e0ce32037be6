//! Canonical JSON: one byte string per JSON value, whatever the key order it
//! was written in and whichever backend stored it. The audit chain hashes
//! event details in it, and tool-call receipts digest arguments in it, so a
//! value read back from PostgreSQL's `jsonb` (which reorders keys and drops
//! the difference between `3.0` and `3`) digests as it did when written.
//!
//! Compact, object keys sorted by their UTF-8 bytes at every level, strings
//! escaped as `serde_json` escapes them, numbers written as integers whenever
//! their value is integral and in `serde_json`'s shortest round-trip form
//! otherwise.

use serde_json::Value;

/// `v` in canonical form.
pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

/// Appends `v` in canonical form to `out`.
pub fn write(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&number(n)),
        Value::String(s) => write_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            out.push('{');
            for (i, (k, item)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(k, out);
                out.push(':');
                write(item, out);
            }
            out.push('}');
        }
    }
}

fn write_str(s: &str, out: &mut String) {
    // serde_json's escaping; writing a `&str` cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

fn number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    match n.as_f64() {
        // `as` is exact here: the value is integral and inside the range
        Some(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => (f as i64).to_string(),
        Some(f) if f.fract() == 0.0 && f > 0.0 && f < 1.8e19 => (f as u64).to_string(),
        _ => n.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn key_order_and_integral_floats_do_not_matter() {
        let a: Value = serde_json::from_str(r#"{"b":[1.0,{"y":2,"x":"q\""}],"a":null}"#).unwrap();
        let b = json!({"a": null, "b": [1, {"x": "q\"", "y": 2}]});
        assert_eq!(to_string(&a), to_string(&b));
        assert_eq!(to_string(&a), r#"{"a":null,"b":[1,{"x":"q\"","y":2}]}"#);
        assert_eq!(to_string(&json!(0.5)), "0.5");
        assert_ne!(to_string(&json!({"a": 1})), to_string(&json!({"a": "1"})));
    }
}
