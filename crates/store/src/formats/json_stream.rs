//! Streams the elements of one array member of a top-level JSON object (`features` of a GeoJSON
//! FeatureCollection, `elements` of an Overpass answer) to a callback, one `Value` at a time, so
//! a large file is never held in memory as a whole.

use std::cell::RefCell;
use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{Flow, FormatError, Position};

/// What the top-level object held besides the streamed array.
#[derive(Debug, Default)]
pub(crate) struct TopLevel {
    /// The string members (`type`, `remark`, …), other members skipped.
    pub strings: Vec<(String, String)>,
    /// Whether the array member was present.
    pub found_array: bool,
    /// How many elements were streamed.
    pub count: usize,
}

impl TopLevel {
    pub fn get(&self, key: &str) -> Option<&str> {
        self.strings
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

type Callback<'a> = dyn FnMut(usize, Value) -> Result<Flow, FormatError> + 'a;

struct State<'a, 'c> {
    field: &'static str,
    callback: &'c mut Callback<'a>,
    top: TopLevel,
    /// An error raised by the callback (the deserializer is then stopped with a marker error).
    failure: Option<FormatError>,
    stopped: bool,
}

struct TopVisitor<'s, 'a, 'c>(&'s RefCell<State<'a, 'c>>);
struct ArraySeed<'s, 'a, 'c>(&'s RefCell<State<'a, 'c>>);

const STOP: &str = "\u{0}sadomap-stop";

impl<'de> Visitor<'de> for TopVisitor<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            let field = self.0.borrow().field;
            if key == field {
                self.0.borrow_mut().top.found_array = true;
                map.next_value_seed(ArraySeed(self.0))?;
            } else {
                // Only top-level strings are kept (`type`, `remark`); nested values are skipped.
                if let Value::String(s) = map.next_value::<Value>()? {
                    self.0.borrow_mut().top.strings.push((key, s));
                }
            }
        }
        Ok(())
    }
}

impl<'de> DeserializeSeed<'de> for ArraySeed<'_, '_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ArraySeed<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<Value>()? {
            let mut st = self.0.borrow_mut();
            let i = st.top.count;
            st.top.count += 1;
            match (st.callback)(i, v) {
                Ok(Flow::Continue(())) => {}
                Ok(Flow::Break(())) => {
                    // Stop parsing at once; `stream_array` turns this marker into success.
                    st.stopped = true;
                    return Err(de::Error::custom(STOP));
                }
                Err(e) => {
                    st.failure = Some(e);
                    return Err(de::Error::custom(STOP));
                }
            }
        }
        Ok(())
    }
}

/// Streams `field`'s elements to `callback(index, value)`; returns the other top-level strings.
/// A callback error stops the stream and is returned as is; JSON syntax errors name the line
/// and column.
pub(crate) fn stream_array<R: Read>(
    r: R,
    file: &str,
    field: &'static str,
    callback: &mut Callback<'_>,
) -> Result<TopLevel, FormatError> {
    let state = RefCell::new(State {
        field,
        callback,
        top: TopLevel::default(),
        failure: None,
        stopped: false,
    });
    let mut de = serde_json::Deserializer::from_reader(r);
    let result =
        de::Deserializer::deserialize_map(&mut de, TopVisitor(&state)).and_then(|()| de.end());
    let st = state.into_inner();
    if let Some(e) = st.failure {
        return Err(e);
    }
    if st.stopped {
        return Ok(st.top);
    }
    match result {
        Ok(()) => Ok(st.top),
        Err(e) if e.is_eof() && e.line() <= 1 && e.column() == 0 => Err(FormatError::Empty {
            file: file.to_owned(),
            expected: "a JSON object",
        }),
        Err(e) if e.is_io() => Err(FormatError::io(file, std::io::Error::other(e.to_string()))),
        Err(e) => {
            let what = if e.is_eof() {
                "the JSON ends early (the file is truncated)".to_owned()
            } else {
                format!("invalid JSON: {e}")
            };
            Err(FormatError::Syntax {
                file: file.to_owned(),
                at: Position::Line(e.line() as u64),
                message: format!("{what}; expected an object with a \"{field}\" array"),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_elements_and_keeps_top_strings() {
        let mut seen = Vec::new();
        let top = stream_array(
            &br#"{"type":"FeatureCollection","x":{"a":1},"features":[{"a":1},{"a":2}]}"#[..],
            "f.json",
            "features",
            &mut |i, v| {
                seen.push((i, v["a"].as_i64()));
                Ok(Flow::Continue(()))
            },
        )
        .unwrap();
        assert_eq!(seen, vec![(0, Some(1)), (1, Some(2))]);
        assert_eq!(top.get("type"), Some("FeatureCollection"));
        assert!(top.found_array);
    }

    #[test]
    fn callback_errors_and_syntax_errors_surface() {
        let e = stream_array(
            &b"{\"features\":[1,2]}"[..],
            "f",
            "features",
            &mut |i, _| {
                Err(FormatError::Syntax {
                    file: "f".into(),
                    at: Position::Feature(i),
                    message: "no".into(),
                })
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("feature #0"), "{e}");
        let e = stream_array(&b"{\"features\":[1,\n"[..], "f", "features", &mut |_, _| {
            Ok(Flow::Continue(()))
        })
        .unwrap_err();
        assert!(e.to_string().contains("truncated"), "{e}");
        let e = stream_array(&b""[..], "f", "features", &mut |_, _| {
            Ok(Flow::Continue(()))
        })
        .unwrap_err();
        assert!(matches!(e, FormatError::Empty { .. }), "{e}");
    }
}
