//! Google Maps CIDs from Maps URLs and from place IDs.
//!
//! A CID (customer ID) is the unsigned 64-bit number Maps uses for a business listing. It shows
//! up in URLs as `cid=<decimal>`, or in hexadecimal as the second half of a feature ID
//! `0x<hex>:0x<cid hex>` (in `ftid=` parameters and in `!1s…` segments of `/maps/place/` URLs).
//! A business place ID (`ChIJ…`) is URL-safe base64, without padding, of a small protobuf
//! message whose field 1 is a message holding two `fixed64` fields; the second is the CID.

use thiserror::Error;

use crate::ids::{Cid, GooglePlaceId};

/// Why a URL or place ID gave no CID.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// Nothing was given.
    #[error("no CID can be read from an empty string")]
    Empty,
    /// A decimal CID with characters other than digits.
    #[error("{text:?} is not a decimal CID: only the digits 0-9 are allowed")]
    BadDecimal {
        /// The offending text.
        text: String,
    },
    /// A hexadecimal CID with characters other than hex digits, or without its `0x`.
    #[error("{text:?} is not a hexadecimal CID: expected 0x followed by 1 to 16 hex digits")]
    BadHex {
        /// The offending text.
        text: String,
    },
    /// A CID larger than 64 bits.
    #[error("CID {text:?} is too large: a CID fits in 64 bits (at most 18446744073709551615)")]
    Overflow {
        /// The offending text.
        text: String,
    },
    /// A URL with no recognisable CID.
    #[error(
        "no CID found in {url:?}: expected cid=<decimal>, ftid=0x…:0x…, a /maps/place/ URL \
         with !1s0x…:0x…, or a bare decimal CID"
    )]
    NoCid {
        /// The URL.
        url: String,
    },
    /// A URL naming a place ID rather than a CID.
    #[error("{url:?} names a place ID, not a CID: decode the place ID instead")]
    PlaceIdUrl {
        /// The URL.
        url: String,
    },
    /// A place ID that is not base64url.
    #[error("place ID {id:?} is not URL-safe base64: {reason}")]
    BadBase64 {
        /// The place ID.
        id: String,
        /// What is wrong, with the position.
        reason: String,
    },
    /// A place ID of another kind (addresses `EiI…`, plus-code/area IDs `GhIJ…`).
    #[error(
        "place ID {id:?} is not a business place ID (its top-level protobuf fields are {fields:?}, \
         a business ID starts with field 1, as in ChIJ…): it has no CID"
    )]
    NotBusiness {
        /// The place ID.
        id: String,
        /// The top-level field numbers found.
        fields: Vec<u64>,
    },
    /// A business place ID whose protobuf is cut short or malformed.
    #[error("place ID {id:?} holds a malformed protobuf message: {reason} (at byte {offset})")]
    Protobuf {
        /// The place ID.
        id: String,
        /// What is wrong.
        reason: String,
        /// Byte offset in the decoded message.
        offset: usize,
    },
}

/// The CID in a Google Maps URL, or in a bare decimal CID.
///
/// Accepted: `…?cid=<decimal>` on any Maps host and path, `…ftid=0x…:0x<hex>`,
/// `/maps/place/…/data=…!1s0x…:0x<hex>…` (the CID is the hex after the colon), and a bare
/// decimal number. `%3A` is accepted for the colon. Values that overflow 64 bits, are empty or
/// contain stray characters are errors, never truncated or guessed.
///
/// ```
/// use sadomap_core::{cid_from_url, Cid};
/// let url = "https://maps.google.com/place?cid=9867684745575651684";
/// assert_eq!(cid_from_url(url), Ok(Cid(9867684745575651684)));
/// ```
pub fn cid_from_url(url: &str) -> Result<Cid, CodecError> {
    let text = url.trim();
    if text.is_empty() {
        return Err(CodecError::Empty);
    }
    if text.bytes().all(|b| b.is_ascii_digit()) {
        return parse_decimal(text);
    }
    if !text.contains("://") && !text.contains('/') && !text.contains('?') && !text.contains('=') {
        // A single token that is neither a URL nor all digits: say what is wrong with it.
        return parse_decimal(text);
    }
    let no_fragment = text.split('#').next().unwrap_or(text);
    if let Some((_, query)) = no_fragment.split_once('?') {
        for pair in query.split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "cid" => return parse_decimal(value),
                "ftid" => return parse_feature_id(value),
                _ => {}
            }
        }
    }
    if let Some(at) = text.find("!1s0x") {
        let rest = &text[at + 3..];
        let end = rest.find(['!', '?', '&', '/', '#']).unwrap_or(rest.len());
        return parse_feature_id(&rest[..end]);
    }
    if text.contains("place_id:") || text.contains("place_id=") {
        return Err(CodecError::PlaceIdUrl { url: text.into() });
    }
    Err(CodecError::NoCid { url: text.into() })
}

/// The CID encoded in a business place ID (`ChIJ…`).
///
/// The ID is decoded as URL-safe base64 without padding; the protobuf is walked tag by tag:
/// the top-level message must hold field 1 (length-delimited), and that message a second
/// `fixed64` field (field 2, tag `0x11`), which is the CID. Other fields are skipped. Place IDs
/// of other kinds (addresses, areas) give [`CodecError::NotBusiness`].
///
/// ```
/// use sadomap_core::{place_id_cid, Cid, GooglePlaceId};
/// let id = GooglePlaceId::new("ChIJGSRiibZd818RZNmTr_4O8Yg").unwrap();
/// assert_eq!(place_id_cid(&id), Ok(Cid(9867684745575651684)));
/// ```
pub fn place_id_cid(id: &GooglePlaceId) -> Result<Cid, CodecError> {
    let text = id.as_str();
    let bytes = decode_base64url(text).map_err(|reason| CodecError::BadBase64 {
        id: text.into(),
        reason,
    })?;
    let perr = |reason: String, offset: usize| CodecError::Protobuf {
        id: text.into(),
        reason,
        offset,
    };
    let top = read_fields(&bytes).map_err(|(r, o)| perr(r, o))?;
    let Some(inner) = top.iter().find_map(|f| match f {
        (1, Value::Bytes(start, end)) => Some((*start, *end)),
        _ => None,
    }) else {
        return Err(CodecError::NotBusiness {
            id: text.into(),
            fields: top.iter().map(|(n, _)| *n).collect(),
        });
    };
    let fields = read_fields(&bytes[inner.0..inner.1])
        .map_err(|(r, o)| perr(format!("in field 1, {r}"), inner.0 + o))?;
    fields
        .iter()
        .find_map(|f| match f {
            (2, Value::Fixed64(v)) => Some(Cid(*v)),
            _ => None,
        })
        .ok_or_else(|| {
            perr(
                "field 1 holds no second fixed64 field (field 2), where the CID belongs".into(),
                inner.0,
            )
        })
}

fn parse_decimal(text: &str) -> Result<Cid, CodecError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CodecError::BadDecimal { text: text.into() });
    }
    text.parse::<u64>()
        .map(Cid)
        .map_err(|_| CodecError::Overflow { text: text.into() })
}

/// `0x<hex>:0x<hex>` (or `%3A` for the colon): the second number.
fn parse_feature_id(text: &str) -> Result<Cid, CodecError> {
    let colon = text
        .find(':')
        .map(|i| (i, 1))
        .or_else(|| text.to_ascii_lowercase().find("%3a").map(|i| (i, 3)));
    let Some((at, len)) = colon else {
        return Err(CodecError::BadHex { text: text.into() });
    };
    parse_hex(&text[..at]).map_err(|_| CodecError::BadHex { text: text.into() })?;
    parse_hex(&text[at + len..])
}

fn parse_hex(text: &str) -> Result<Cid, CodecError> {
    let digits = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .ok_or_else(|| CodecError::BadHex { text: text.into() })?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(CodecError::BadHex { text: text.into() });
    }
    u64::from_str_radix(digits, 16)
        .map(Cid)
        .map_err(|_| CodecError::Overflow { text: text.into() })
}

/// Decodes URL-safe base64 without padding (`=` at the end is tolerated).
fn decode_base64url(text: &str) -> Result<Vec<u8>, String> {
    let body = text.trim_end_matches('=');
    if body.len() % 4 == 1 {
        return Err(format!(
            "{} characters cannot be base64 (a length of 4n+1 is impossible)",
            body.len()
        ));
    }
    let mut out = Vec::with_capacity(body.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for (pos, ch) in body.char_indices() {
        let v = match ch {
            'A'..='Z' => ch as u32 - 'A' as u32,
            'a'..='z' => ch as u32 - 'a' as u32 + 26,
            '0'..='9' => ch as u32 - '0' as u32 + 52,
            '-' => 62,
            '_' => 63,
            _ => {
                return Err(format!(
                    "character {ch:?} at position {pos} is not in the alphabet"
                ))
            }
        };
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Ok(out)
}

/// A protobuf field's value; length-delimited values as a byte range of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(usize, usize),
}

/// All fields of one protobuf message as (field number, value); errors carry the byte offset.
fn read_fields(buf: &[u8]) -> Result<Vec<(u64, Value)>, (String, usize)> {
    let mut fields = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let start = pos;
        let tag = read_varint(buf, &mut pos)?;
        let field = tag >> 3;
        if field == 0 {
            return Err(("field number 0 is not allowed".into(), start));
        }
        let take = |pos: &mut usize, n: usize| -> Result<&[u8], (String, usize)> {
            let end = pos.checked_add(n).filter(|&e| e <= buf.len()).ok_or((
                format!("field {field} needs {n} bytes but the message ends first"),
                *pos,
            ))?;
            let s = &buf[*pos..end];
            *pos = end;
            Ok(s)
        };
        let value = match tag & 7 {
            0 => Value::Varint(read_varint(buf, &mut pos)?),
            1 => {
                let b = take(&mut pos, 8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Fixed64(u64::from_le_bytes(a))
            }
            2 => {
                let len = read_varint(buf, &mut pos)?;
                let len =
                    usize::try_from(len).map_err(|_| ("length too large".to_string(), pos))?;
                let s = pos;
                take(&mut pos, len)?;
                Value::Bytes(s, pos)
            }
            5 => {
                let b = take(&mut pos, 4)?;
                let mut a = [0u8; 4];
                a.copy_from_slice(b);
                Value::Fixed32(u32::from_le_bytes(a))
            }
            wt => {
                return Err((
                    format!("wire type {wt} of field {field} is not supported"),
                    start,
                ))
            }
        };
        fields.push((field, value));
    }
    Ok(fields)
}

fn read_varint(buf: &[u8], pos: &mut usize) -> Result<u64, (String, usize)> {
    let start = *pos;
    let mut v: u64 = 0;
    for shift in 0..10 {
        let Some(&b) = buf.get(*pos) else {
            return Err(("a varint runs past the end of the message".into(), start));
        };
        *pos += 1;
        v |= u64::from(b & 0x7f) << (7 * shift);
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(("a varint is longer than 10 bytes".into(), start))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Test-only encoder: base64url without padding.
    pub(crate) fn encode_base64url(bytes: &[u8]) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let n = chunk.len();
            let v = (u32::from(chunk[0]) << 16)
                | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
                | u32::from(*chunk.get(2).unwrap_or(&0));
            for k in 0..=n {
                out.push(ALPHABET[((v >> (18 - 6 * k)) & 63) as usize] as char);
            }
        }
        out
    }

    /// A synthetic business place ID: field 1 { fixed64 1: a, fixed64 2: cid }.
    pub(crate) fn synthetic_place_id(a: u64, cid: u64) -> String {
        let mut msg = vec![0x0a, 18, 0x09];
        msg.extend_from_slice(&a.to_le_bytes());
        msg.push(0x11);
        msg.extend_from_slice(&cid.to_le_bytes());
        encode_base64url(&msg)
    }

    fn pid(s: &str) -> GooglePlaceId {
        GooglePlaceId::new(s).unwrap()
    }

    #[test]
    fn url_forms() {
        let c = Ok(Cid(9867684745575651684));
        assert_eq!(
            cid_from_url("https://maps.google.com/place?cid=9867684745575651684"),
            c
        );
        assert_eq!(
            cid_from_url("https://maps.google.com/maps?cid=9867684745575651684"),
            c
        );
        assert_eq!(
            cid_from_url("https://www.google.com/maps?cid=9867684745575651684&hl=ja&gl=jp"),
            c
        );
        assert_eq!(cid_from_url("  9867684745575651684 "), c);
        assert_eq!(
            cid_from_url(
                "https://www.google.com/maps/place/ma_ma/@38.1,138.4,17z/data=!3m1!4b1!4m6!3m5\
                 !1s0x5ff5a3d8b0b0b0b0:0x88f10efeaf93d964!8m2!3d38.08!4d138.43"
            ),
            c
        );
        assert_eq!(
            cid_from_url("https://www.google.com/maps?ftid=0x5ff5a3d8b0b0b0b0:0x88f10efeaf93d964"),
            c
        );
        assert_eq!(
            cid_from_url("https://maps.google.com/?ftid=0x5ff5a3d8b0b0b0b0%3A0x88F10EFEAF93D964"),
            c
        );
    }

    #[test]
    fn url_errors() {
        assert_eq!(cid_from_url("  "), Err(CodecError::Empty));
        assert!(matches!(
            cid_from_url("https://maps.google.com/place?cid=18446744073709551616"),
            Err(CodecError::Overflow { .. })
        ));
        assert!(matches!(
            cid_from_url("https://maps.google.com/place?cid="),
            Err(CodecError::BadDecimal { .. })
        ));
        assert!(matches!(
            cid_from_url("https://maps.google.com/place?cid=12x4"),
            Err(CodecError::BadDecimal { .. })
        ));
        assert!(matches!(
            cid_from_url("https://maps.google.com/place?cid=-12"),
            Err(CodecError::BadDecimal { .. })
        ));
        assert!(matches!(
            cid_from_url("https://www.google.com/maps?ftid=0x1:0x10000000000000000"),
            Err(CodecError::Overflow { .. })
        ));
        assert!(matches!(
            cid_from_url("https://www.google.com/maps?ftid=0x1:0xZZ"),
            Err(CodecError::BadHex { .. })
        ));
        assert!(matches!(
            cid_from_url("https://www.google.com/maps/place/Foo/@38.1,138.4,17z"),
            Err(CodecError::NoCid { .. })
        ));
        assert!(matches!(
            cid_from_url(
                "https://www.google.com/maps/place/?q=place_id:ChIJGSRiibZd818RZNmTr_4O8Yg"
            ),
            Err(CodecError::PlaceIdUrl { .. })
        ));
        assert!(matches!(
            cid_from_url("ma_ma"),
            Err(CodecError::BadDecimal { .. })
        ));
        let msg = cid_from_url("https://maps.google.com/place?cid=99999999999999999999")
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("99999999999999999999") && msg.contains("64 bits"),
            "{msg}"
        );
    }

    #[test]
    fn real_place_ids() {
        assert_eq!(
            place_id_cid(&pid("ChIJGSRiibZd818RZNmTr_4O8Yg")),
            Ok(Cid(9867684745575651684))
        );
        assert_eq!(
            place_id_cid(&pid("ChIJvxJLFfRc818Rt820gWV7zXQ")),
            Ok(Cid(8416518954523348407))
        );
    }

    #[test]
    fn other_place_id_kinds_are_not_businesses() {
        // An address-style ID: field 2 (tag 0x12) with a string.
        let addr = encode_base64url(b"\x12\x0c1-2-3 Ryotsu");
        assert!(addr.starts_with("Eg"));
        let e = place_id_cid(&pid(&addr)).unwrap_err();
        assert!(
            matches!(e, CodecError::NotBusiness { ref fields, .. } if fields == &[2]),
            "{e}"
        );
        // GhIJ…: field 3 with the same two fixed64s.
        let mut msg = vec![0x1a, 18, 0x09];
        msg.extend_from_slice(&[1; 8]);
        msg.push(0x11);
        msg.extend_from_slice(&[2; 8]);
        let area = encode_base64url(&msg);
        assert!(area.starts_with("GhIJ"));
        assert!(matches!(
            place_id_cid(&pid(&area)),
            Err(CodecError::NotBusiness { .. })
        ));
        assert!(place_id_cid(&pid(&area))
            .unwrap_err()
            .to_string()
            .contains("not a business place ID"));
    }

    #[test]
    fn malformed_place_ids() {
        // Truncated: the second fixed64 is cut short.
        let full = synthetic_place_id(1, 2);
        let cut = &full[..full.len() - 4];
        assert!(matches!(
            place_id_cid(&pid(cut)),
            Err(CodecError::Protobuf { .. })
        ));
        // 4n+1 characters.
        assert!(matches!(
            place_id_cid(&pid("ChIJGSRiibZd818RZNmTr_4O8YgA")),
            Err(CodecError::Protobuf { .. }) | Err(CodecError::BadBase64 { .. })
        ));
        assert!(matches!(
            place_id_cid(&pid("ChIJGSRiibZd8")),
            Err(CodecError::BadBase64 { .. })
        ));
        // Field 1 present but holding only one fixed64.
        let mut msg = vec![0x0a, 9, 0x09];
        msg.extend_from_slice(&[7; 8]);
        let e = place_id_cid(&pid(&encode_base64url(&msg))).unwrap_err();
        assert!(e.to_string().contains("no second fixed64"), "{e}");
    }

    #[test]
    fn unknown_fields_are_skipped() {
        // field 1 { varint 5: 1, fixed64 1: a, fixed32 6: x, fixed64 2: cid }, then field 4 bytes.
        let mut inner = vec![0x28, 0x01, 0x09];
        inner.extend_from_slice(&5u64.to_le_bytes());
        inner.push(0x35);
        inner.extend_from_slice(&[0; 4]);
        inner.push(0x11);
        inner.extend_from_slice(&42u64.to_le_bytes());
        let mut msg = vec![0x0a, inner.len() as u8];
        msg.extend_from_slice(&inner);
        msg.extend_from_slice(&[0x22, 2, b'h', b'i']);
        assert_eq!(place_id_cid(&pid(&encode_base64url(&msg))), Ok(Cid(42)));
    }

    proptest! {
        #[test]
        fn url_forms_round_trip(cid: u64, feature: u64) {
            let forms = [
                cid.to_string(),
                format!("https://maps.google.com/place?cid={cid}"),
                format!("https://maps.google.com/maps?cid={cid}"),
                format!("https://www.google.com/maps?cid={cid}&hl=ja"),
                format!("https://www.google.com/maps?hl=ja&ftid=0x{feature:x}:0x{cid:x}"),
                format!("https://www.google.com/maps/place/X/@38.1,138.4,17z/data=!3m1!4b1!4m6!3m5!1s0x{feature:x}:0x{cid:x}!8m2"),
            ];
            for url in forms {
                prop_assert_eq!(cid_from_url(&url), Ok(Cid(cid)), "{}", url);
            }
        }

        #[test]
        fn arbitrary_strings_never_panic(s in ".{0,80}") {
            let _ = cid_from_url(&s);
            if let Ok(id) = GooglePlaceId::new(&s) {
                let _ = place_id_cid(&id);
            }
        }

        #[test]
        fn arbitrary_base64_never_panics(s in "[A-Za-z0-9_-]{10,60}") {
            let _ = place_id_cid(&pid(&s));
        }

        #[test]
        fn synthetic_place_ids_round_trip(a: u64, cid: u64) {
            let id = synthetic_place_id(a, cid);
            prop_assert!(id.starts_with("ChIJ"));
            prop_assert_eq!(place_id_cid(&pid(&id)), Ok(Cid(cid)));
        }
    }
}
