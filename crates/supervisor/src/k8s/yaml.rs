//! A block-style YAML writer for JSON values that double-quotes every string.
//!
//! Why not a YAML library's serialiser: serde_yaml and its forks write YAML 1.2 and leave
//! `yes`, `no`, `on`, `off`, `y`, `n`, `1:20` or `2001-12-14` unquoted, but Kubernetes reads
//! manifests with a YAML 1.1 parser, to which those are booleans, numbers or timestamps: Redis's
//! `--appendonly yes` argument would arrive as `true` and the apply would fail. A JSON string is
//! a valid double-quoted scalar in both YAML versions, so quoting every string (and every key
//! that is not plainly an identifier) leaves nothing to interpretation.

use serde_json::{Map, Value};

/// Words YAML 1.1 reads as booleans or null even without quotes (compared case-insensitively).
const YAML11_WORDS: &[&str] = &[
    "y", "n", "yes", "no", "on", "off", "true", "false", "null", "~",
];

fn key(k: &str) -> String {
    let plain = k.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | '/'))
        && !YAML11_WORDS.iter().any(|w| w.eq_ignore_ascii_case(k));
    if plain {
        k.to_string()
    } else {
        scalar(&Value::String(k.to_string()))
    }
}

/// A scalar, or an empty or nested collection in JSON's flow form (also valid YAML).
fn scalar(v: &Value) -> String {
    // Serialising a `Value` cannot fail (its keys are strings).
    serde_json::to_string(v).unwrap_or_default()
}

fn is_block(v: &Value) -> bool {
    match v {
        Value::Object(m) => !m.is_empty(),
        Value::Array(a) => !a.is_empty(),
        _ => false,
    }
}

fn map(out: &mut String, m: &Map<String, Value>, indent: usize) {
    let pad = " ".repeat(indent);
    for (k, v) in m {
        out.push_str(&pad);
        out.push_str(&key(k));
        out.push(':');
        match v {
            Value::Object(inner) if !inner.is_empty() => {
                out.push('\n');
                map(out, inner, indent + 2);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                seq(out, items, indent);
            }
            _ => {
                out.push(' ');
                out.push_str(&scalar(v));
                out.push('\n');
            }
        }
    }
}

fn seq(out: &mut String, items: &[Value], indent: usize) {
    let pad = " ".repeat(indent);
    for item in items {
        match item {
            Value::Object(m) if is_block(item) => {
                // The map's first line, indented two deeper, starts with "- " instead.
                let mut block = String::new();
                map(&mut block, m, indent + 2);
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(&block[indent + 2..]);
            }
            _ => {
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(&scalar(item));
                out.push('\n');
            }
        }
    }
}

/// One YAML document (without the `---` line) for `value`, which should be an object.
pub(super) fn document(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(m) if !m.is_empty() => map(&mut out, m, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strings_are_quoted_and_structure_is_block_style() {
        // Keys in sorted order, so the text is the same whichever order serde_json keeps.
        let v = json!({
            "app.kubernetes.io/name": "sadomap",
            "args": ["redis-server", "--appendonly", "yes"],
            "empty": {},
            "flag": true,
            "none": [],
            "on": 1,
            "spec": {"containers": [{"name": "a\"b", "ports": [{"containerPort": 80}]}]},
        });
        let text = document(&v);
        assert_eq!(
            text,
            "app.kubernetes.io/name: \"sadomap\"\n\
             args:\n\
             - \"redis-server\"\n\
             - \"--appendonly\"\n\
             - \"yes\"\n\
             empty: {}\n\
             flag: true\n\
             none: []\n\
             \"on\": 1\n\
             spec:\n  \
               containers:\n  \
               - name: \"a\\\"b\"\n    \
                 ports:\n    \
                 - containerPort: 80\n"
        );
        // A YAML reader gives the same value back.
        let back: Value = serde_norway::from_str(&text).expect("valid YAML");
        assert_eq!(back, v);
    }
}
