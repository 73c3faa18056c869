//! JSON exactly as Python's `json.dumps(obj, separators=(",", ":"))` writes it (the
//! serializer Django's `JSONSerializer` uses), and the decoding rules of `json.loads`.

use std::borrow::Cow;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// A `serde_json` formatter that reproduces Python's compact `json.dumps` output:
/// `ensure_ascii` escaping (`\uXXXX` in lower-case hex, UTF-16 surrogate pairs for astral
/// characters, DEL escaped too) and floats written as Python's `repr` (`1e+16`, `1.5e-07`,
/// `3.0`, `-0.0`). Separators are `,` and `:` (serde_json's compact defaults).
pub(crate) struct PythonFormatter;

impl Formatter for PythonFormatter {
    fn write_string_fragment<W>(&mut self, writer: &mut W, fragment: &str) -> io::Result<()>
    where
        W: ?Sized + Write,
    {
        // serde_json already escaped `"`, `\` and the C0 controls (with the same short forms
        // Python uses: \b \f \n \r \t, else \u00XX lower-case); everything else comes here.
        let bytes = fragment.as_bytes();
        let mut start = 0;
        for (i, ch) in fragment.char_indices() {
            if (' '..='~').contains(&ch) {
                continue;
            }
            writer.write_all(&bytes[start..i])?;
            let mut units = [0u16; 2];
            for unit in ch.encode_utf16(&mut units) {
                write!(writer, "\\u{unit:04x}")?;
            }
            start = i + ch.len_utf8();
        }
        writer.write_all(&bytes[start..])
    }

    fn write_f64<W>(&mut self, writer: &mut W, value: f64) -> io::Result<()>
    where
        W: ?Sized + Write,
    {
        writer.write_all(python_float_repr(value).as_bytes())
    }

    fn write_f32<W>(&mut self, writer: &mut W, value: f32) -> io::Result<()>
    where
        W: ?Sized + Write,
    {
        self.write_f64(writer, f64::from(value))
    }
}

/// Serializes `map` as Python's `json.dumps(value, separators=(",", ":"))` would (big
/// integers held as [`PYTHON_INT_KEY`] objects written as their digits).
pub(crate) fn to_python_json(map: &Map<String, Value>) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    ExactMap(map).serialize(&mut ser)?;
    Ok(out)
}

/// The key of the one-entry object that holds an integer too large for a
/// `serde_json::Number` (beyond the 64-bit range), as its decimal digits:
/// `{"$python_int": "12345678901234567890123"}`. Decoding turns such an integer in
/// Django's (or Plain's) JSON into this object instead of a float that would lose digits;
/// encoding writes the object back as the bare integer, so the value round-trips exactly.
/// A Rust handler sees (and may write) the object; an object of this shape whose string is
/// not a canonical integer is written as an ordinary object.
///
/// # Examples
///
/// ```
/// use session_kit::django::{PlainJsonCodec, PYTHON_INT_KEY};
/// use session_kit::Codec;
///
/// let map = PlainJsonCodec.decode(r#"{"n":12345678901234567890123}"#)?;
/// assert_eq!(map["n"][PYTHON_INT_KEY], "12345678901234567890123");
/// assert_eq!(PlainJsonCodec.encode(&map)?, r#"{"n":12345678901234567890123}"#);
/// # Ok::<(), session_kit::CodecError>(())
/// ```
pub const PYTHON_INT_KEY: &str = "$python_int";

/// The digits of a [`PYTHON_INT_KEY`] object, if `map` is one.
fn big_int(map: &Map<String, Value>) -> Option<&str> {
    if map.len() != 1 {
        return None;
    }
    let digits = map.get(PYTHON_INT_KEY)?.as_str()?;
    let unsigned = digits.strip_prefix('-').unwrap_or(digits);
    let canonical = match unsigned.as_bytes() {
        [] => false,
        [b'0'] => true,
        [first, rest @ ..] => (b'1'..=b'9').contains(first) && rest.iter().all(u8::is_ascii_digit),
    };
    canonical.then_some(digits)
}

/// A value serialized with big integers written as their digits.
struct Exact<'a>(&'a Value);

struct ExactMap<'a>(&'a Map<String, Value>);

impl Serialize for Exact<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Value::Object(map) => match big_int(map) {
                Some(digits) => RawValue::from_string(digits.to_owned())
                    .map_err(serde::ser::Error::custom)?
                    .serialize(s),
                None => ExactMap(map).serialize(s),
            },
            Value::Array(items) => s.collect_seq(items.iter().map(Exact)),
            other => other.serialize(s),
        }
    }
}

impl Serialize for ExactMap<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (k, Exact(v))))
    }
}

/// Compact JSON (serde_json's own formatting) with big integers as their digits: current
/// Plain's column.
pub(crate) fn to_compact_json(map: &Map<String, Value>) -> serde_json::Result<String> {
    serde_json::to_string(&ExactMap(map))
}

/// Replaces every integer literal outside strings that does not fit in 64 bits by a
/// [`PYTHON_INT_KEY`] object. `None` when there is none (the usual case).
pub(crate) fn mark_big_ints(json: &str) -> Option<String> {
    let bytes = json.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if b == b'-' || b.is_ascii_digit() {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            let float = matches!(bytes.get(i), Some(b'.' | b'e' | b'E'));
            if float {
                // The rest of the number (fraction, exponent) is not an integer of its own.
                while i < bytes.len()
                    && matches!(bytes[i], b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-')
                {
                    i += 1;
                }
                continue;
            }
            // A number is ASCII, so these slices are on char boundaries.
            let token = json.get(start..i).unwrap_or_default();
            let fits = token.parse::<i64>().is_ok() || token.parse::<u64>().is_ok();
            if !fits && token.len() > 1 {
                let buf = out.get_or_insert_with(|| String::with_capacity(json.len() + 32));
                buf.push_str(json.get(copied..start).unwrap_or_default());
                buf.push_str("{\"");
                buf.push_str(PYTHON_INT_KEY);
                buf.push_str("\":\"");
                buf.push_str(token);
                buf.push_str("\"}");
                copied = i;
            }
            continue;
        }
        i += 1;
    }
    out.map(|mut buf| {
        buf.push_str(json.get(copied..).unwrap_or_default());
        buf
    })
}

/// Python's `repr(float)` for a finite value (the shortest digits that round-trip, with
/// Python's layout rules). Non-finite values never reach here: serde_json writes them as
/// `null` before calling the formatter, and a `serde_json::Value` cannot hold them.
pub(crate) fn python_float_repr(value: f64) -> String {
    if !value.is_finite() {
        // Python would write NaN / Infinity / -Infinity; serde_json never asks for this.
        return "null".to_owned();
    }
    let mut buf = ryu::Buffer::new();
    let shortest = buf.format_finite(value);
    let (negative, unsigned) = match shortest.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, shortest),
    };
    let (mantissa, exp) = match unsigned.split_once(['e', 'E']) {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (unsigned, 0),
    };
    let (int_part, frac_part) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    // value = 0.DIGITS * 10^decpt
    let mut digits: Vec<u8> = int_part.bytes().chain(frac_part.bytes()).collect();
    let mut decpt = int_part.len() as i32 + exp;
    let leading = digits.iter().take_while(|&&d| d == b'0').count();
    digits.drain(..leading);
    decpt -= leading as i32;
    while digits.last() == Some(&b'0') {
        digits.pop();
    }
    let sign = if negative { "-" } else { "" };
    if digits.is_empty() {
        return format!("{sign}0.0");
    }
    let d = |range: std::ops::Range<usize>| -> &str {
        // The digits are ASCII, so this never fails; stay panic-free regardless.
        std::str::from_utf8(&digits[range]).unwrap_or("0")
    };
    let n = digits.len();
    let body = if decpt <= -4 || decpt > 16 {
        let e = decpt - 1;
        let esign = if e < 0 { '-' } else { '+' };
        let rest = if n > 1 {
            format!(".{}", d(1..n))
        } else {
            String::new()
        };
        format!("{}{rest}e{esign}{:02}", d(0..1), e.unsigned_abs())
    } else if decpt <= 0 {
        format!("0.{}{}", "0".repeat(decpt.unsigned_abs() as usize), d(0..n))
    } else if decpt as usize >= n {
        format!("{}{}.0", d(0..n), "0".repeat(decpt as usize - n))
    } else {
        let p = decpt as usize;
        format!("{}.{}", d(0..p), d(p..n))
    };
    format!("{sign}{body}")
}

/// Python's `bytes.decode("latin-1")`: every byte becomes the code point of the same value.
/// Django's own output is ASCII, for which this is the identity.
pub(crate) fn latin1(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(s) if s.is_ascii() => Cow::Borrowed(s),
        _ => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// Replaces the bare `NaN`, `Infinity` and `-Infinity` tokens Python's `json.dumps` emits
/// (outside strings) with `null`, so the rest of the document can be parsed by serde_json.
/// Returns `None` when there was nothing to replace. Anything else is left for the JSON
/// parser to accept or reject.
pub(crate) fn replace_non_finite(json: &str) -> Option<String> {
    const TOKENS: [&str; 3] = ["-Infinity", "Infinity", "NaN"];
    let bytes = json.as_bytes();
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut in_string = false;
    let mut escaped = false;
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if in_string {
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
            i += 1;
            continue;
        }
        if b == b'"' {
            in_string = true;
            i += 1;
            continue;
        }
        if matches!(b, b'-' | b'I' | b'N') {
            if let Some(token) = TOKENS.iter().find(|t| bytes[i..].starts_with(t.as_bytes())) {
                let buf = out.get_or_insert_with(|| String::with_capacity(json.len()));
                // Token boundaries are ASCII bytes, so these slices are on char boundaries.
                buf.push_str(json.get(copied..i).unwrap_or_default());
                buf.push_str("null");
                i += token.len();
                copied = i;
                continue;
            }
        }
        i += 1;
    }
    out.map(|mut buf| {
        buf.push_str(json.get(copied..).unwrap_or_default());
        buf
    })
}

/// Parses a JSON document, big integers becoming [`PYTHON_INT_KEY`] objects.
pub(crate) fn parse(json: &str) -> serde_json::Result<Value> {
    match mark_big_ints(json) {
        Some(marked) => serde_json::from_str::<Value>(&marked),
        None => serde_json::from_str::<Value>(json),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_follow_python_repr() {
        for (v, want) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (3.0, "3.0"),
            (1.5, "1.5"),
            (0.1, "0.1"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (1.5e16, "1.5e+16"),
            (1e100, "1e+100"),
            (1e-4, "0.0001"),
            (1e-5, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (-2.5e-300, "-2.5e-300"),
            (123456789.125, "123456789.125"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (1234567890123456.7, "1234567890123456.8"),
            (0.30000000000000004, "0.30000000000000004"),
        ] {
            assert_eq!(python_float_repr(v), want, "{v:e}");
        }
    }

    #[test]
    fn strings_are_ascii_escaped_like_python() {
        let v = serde_json::json!({"k\u{e9}": "a\"b\\c\n\t\u{1}\u{7f}\u{e9}\u{20ac}\u{1f389}/"});
        let out = to_python_json(v.as_object().expect("object")).expect("serialize");
        assert_eq!(
            std::str::from_utf8(&out).expect("ascii"),
            r#"{"k\u00e9":"a\"b\\c\n\t\u0001\u007f\u00e9\u20ac\ud83c\udf89/"}"#
        );
    }

    #[test]
    fn non_finite_tokens_become_null_outside_strings_only() {
        assert_eq!(
            replace_non_finite(r#"{"a":NaN,"b":[Infinity,-Infinity],"NaN":"Infinity \" NaN"}"#)
                .as_deref(),
            Some(r#"{"a":null,"b":[null,null],"NaN":"Infinity \" NaN"}"#)
        );
        assert_eq!(replace_non_finite(r#"{"a":-1,"b":"NaN"}"#), None);
    }

    #[test]
    fn integers_beyond_64_bits_round_trip_exactly() {
        let text = r#"{"a":12345678901234567890123,"b":[-98765432109876543210,18446744073709551615,-9223372036854775808],"s":"12345678901234567890123","f":1.2345678901234567890123e22,"n":{"x":340282366920938463463374607431768211457}}"#;
        let value = parse(text).expect("parse");
        assert_eq!(value["a"][PYTHON_INT_KEY], "12345678901234567890123");
        assert_eq!(value["b"][0][PYTHON_INT_KEY], "-98765432109876543210");
        assert_eq!(value["b"][1], serde_json::json!(u64::MAX));
        assert_eq!(value["b"][2], serde_json::json!(i64::MIN));
        assert_eq!(value["s"], "12345678901234567890123");
        assert!(value["f"].is_f64());
        let out = to_python_json(value.as_object().expect("object")).expect("serialize");
        assert_eq!(
            std::str::from_utf8(&out).expect("utf-8"),
            text.replace("1.2345678901234567890123e22", "1.2345678901234568e+22")
        );
        // Not canonical: an ordinary object.
        let odd = serde_json::json!({"k": {PYTHON_INT_KEY: "0012"}});
        let out = to_python_json(odd.as_object().expect("object")).expect("serialize");
        assert_eq!(
            std::str::from_utf8(&out).expect("utf-8"),
            r#"{"k":{"$python_int":"0012"}}"#
        );
        assert_eq!(
            mark_big_ints(r#"{"a":-1,"b":"99999999999999999999999"}"#),
            None
        );
        assert_eq!(
            mark_big_ints(r#"{"a":1e123456789012345678901,"b":2.5E-99999999999999999999}"#),
            None
        );
    }

    #[test]
    fn latin1_maps_bytes_to_code_points() {
        assert_eq!(latin1(b"abc"), "abc");
        assert_eq!(latin1(&[0x22, 0xe9, 0x22]), "\"\u{e9}\"");
    }
}
