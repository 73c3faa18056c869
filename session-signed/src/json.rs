//! JSON exactly as Python's `json.dumps(obj, separators=(",", ":"))` writes it (the
//! serializer Django's `JSONSerializer` uses), and the decoding rules of `json.loads`.

use std::borrow::Cow;
use std::io::{self, Write};

use serde::Serialize;
use serde_json::ser::Formatter;
use serde_json::Value;

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

/// Serializes `value` as Python's `json.dumps(value, separators=(",", ":"))` would.
pub(crate) fn to_python_json<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128);
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    value.serialize(&mut ser)?;
    Ok(out)
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

/// Parses a document that must be a JSON object.
pub(crate) fn parse(json: &str) -> serde_json::Result<Value> {
    serde_json::from_str::<Value>(json)
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
        let out = to_python_json(&v).expect("serialize");
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
    fn latin1_maps_bytes_to_code_points() {
        assert_eq!(latin1(b"abc"), "abc");
        assert_eq!(latin1(&[0x22, 0xe9, 0x22]), "\"\u{e9}\"");
    }
}
