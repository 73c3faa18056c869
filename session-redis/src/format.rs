//! The stored value of one session: a single Redis string, so that `load` is one `GET`.
//!
//! Current layout, `s2` (ASCII header of fixed width, then raw UTF-8 payloads):
//!
//! ```text
//! s2|EEEEEEEEEEEEEEEEE|LLLLLLLLLLLLLLLLL|VVVVVVVVVVVVVVVVVVVV|FFFFFFFFFFFFFFFF|<created_ms>|<ulen>|<ualen>|<iplen>|<user><ua><ip><data>
//! ```
//!
//! - `E`: `expires_at` in milliseconds since the epoch, zero-padded to 17 characters (a
//!   sign counts as one), so that the scripts find it at a fixed offset and `touch` can
//!   rewrite it in place with `SETRANGE`.
//! - `L`: `last_active_at` the same way, or 17 `-` for none (rewritten in place by `touch`).
//! - `V`: the version, zero-padded to 20 digits (a `u64`), so that the compare-and-swap
//!   scripts read it with one `GETRANGE` of the header and never copy the data.
//! - `F`: a 64-bit fingerprint (FNV-1a, 16 hex digits) of the user id, or 16 `-` for none:
//!   the update script compares it to learn whether the user changed (and the user index
//!   needs an entry) without reading the user id.
//! - `created_ms`: decimal.
//! - `ulen`, `ualen`, `iplen`: byte lengths of `user_id`, `user_agent`, `ip`, or `-` for none.
//! - the three strings, then the codec's data, which runs to the end of the value.
//!
//! The previous layout, `s1`, is still read (by [`decode`] and by every script), so that
//! sessions written before an upgrade survive it; the first write after the upgrade
//! rewrites a value as `s2`:
//!
//! ```text
//! s1|EEEEEEEEEEEEEEEEE|LLLLLLLLLLLLLLLLL|<version>|<created_ms>|<ulen>|<ualen>|<iplen>|<user><ua><ip><data>
//! ```
//!
//! Both layouts keep the tag, `E` and `L` at the same offsets. The Lua scripts in
//! [`crate::scripts`] read the same layouts; keep the two in step.

use session_core::chrono::{DateTime, Utc};
use session_core::{Record, SessionKey, StoreError};

/// The tag of the current format.
pub(crate) const TAG: &str = "s2|";
/// The tag of the previous format (read, never written).
pub(crate) const TAG_V1: &str = "s1|";
/// Width of a fixed timestamp field.
pub(crate) const TS_WIDTH: usize = 17;
/// Offset (0-based) of the expiry field.
pub(crate) const EXP_OFFSET: usize = TAG.len();
/// Length of the fixed head common to both formats: tag, expiry, `|`, last active, `|`.
const FIXED_HEAD: usize = TAG.len() + TS_WIDTH + 1 + TS_WIDTH + 1;
const NO_TS: &str = "-----------------";
/// Width of the version field (`s2`): the digits of `u64::MAX`.
pub(crate) const VERSION_WIDTH: usize = 20;
/// Width of the user fingerprint field (`s2`).
pub(crate) const FP_WIDTH: usize = 16;
/// The fingerprint field of a record without a user.
pub(crate) const NO_USER_FP: &str = "----------------";
/// Length of the `s2` header: fixed head, version, `|`, fingerprint, `|`. What the
/// compare-and-swap scripts read with `GETRANGE`.
pub(crate) const HEAD_LEN: usize = FIXED_HEAD + VERSION_WIDTH + 1 + FP_WIDTH + 1;

/// A timestamp in milliseconds since the epoch (floor).
pub(crate) fn millis(at: DateTime<Utc>) -> i64 {
    at.timestamp_millis()
}

/// A fixed-width timestamp field.
pub(crate) fn ts_field(ms: i64) -> String {
    format!("{ms:0width$}", width = TS_WIDTH)
}

/// The fixed-width version field.
pub(crate) fn version_field(version: u64) -> String {
    format!("{version:0width$}", width = VERSION_WIDTH)
}

/// The fingerprint field of a user id (FNV-1a, 64 bits), or [`NO_USER_FP`].
pub(crate) fn user_fingerprint(user: Option<&str>) -> String {
    let Some(user) = user else {
        return NO_USER_FP.to_owned();
    };
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in user.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

fn push_ts(out: &mut String, at: Option<DateTime<Utc>>) {
    match at {
        Some(at) => out.push_str(&ts_field(millis(at))),
        None => out.push_str(NO_TS),
    }
}

fn push_len(out: &mut String, value: Option<&str>) {
    match value {
        Some(v) => out.push_str(&v.len().to_string()),
        None => out.push('-'),
    }
    out.push('|');
}

/// Encodes `record` as stored at `version`, in the current format: the whole value.
pub(crate) fn encode(record: &Record, version: u64) -> String {
    let user = record.user_id.as_deref();
    let ua = record.user_agent.as_deref();
    let ip = record.ip.as_deref();
    let extra = user.map_or(0, str::len) + ua.map_or(0, str::len) + ip.map_or(0, str::len);
    let mut out = String::with_capacity(HEAD_LEN + 40 + extra + record.data.len());
    out.push_str(TAG);
    push_ts(&mut out, Some(record.expires_at));
    out.push('|');
    push_ts(&mut out, record.last_active_at);
    out.push('|');
    out.push_str(&version_field(version));
    out.push('|');
    out.push_str(&user_fingerprint(user));
    out.push('|');
    out.push_str(&millis(record.created_at).to_string());
    out.push('|');
    push_len(&mut out, user);
    push_len(&mut out, ua);
    push_len(&mut out, ip);
    for s in [user, ua, ip].into_iter().flatten() {
        out.push_str(s);
    }
    out.push_str(&record.data);
    out
}

/// Encodes `record` in the previous format, `s1` (tests of the upgrade path only).
#[cfg(test)]
pub(crate) fn encode_v1(record: &Record, version: u64) -> String {
    let user = record.user_id.as_deref();
    let ua = record.user_agent.as_deref();
    let ip = record.ip.as_deref();
    let mut out = String::new();
    out.push_str(TAG_V1);
    push_ts(&mut out, Some(record.expires_at));
    out.push('|');
    push_ts(&mut out, record.last_active_at);
    out.push('|');
    out.push_str(&version.to_string());
    out.push('|');
    out.push_str(&millis(record.created_at).to_string());
    out.push('|');
    push_len(&mut out, user);
    push_len(&mut out, ua);
    push_len(&mut out, ip);
    for s in [user, ua, ip].into_iter().flatten() {
        out.push_str(s);
    }
    out.push_str(&record.data);
    out
}

fn corrupt(reason: &str) -> StoreError {
    StoreError::corrupt(format!("redis value: {reason}"))
}

fn parse_ts(field: &[u8]) -> Result<Option<DateTime<Utc>>, StoreError> {
    if field == NO_TS.as_bytes() {
        return Ok(None);
    }
    let ms: i64 = std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt("bad timestamp field"))?;
    DateTime::from_timestamp_millis(ms)
        .map(Some)
        .ok_or_else(|| corrupt("timestamp out of range"))
}

/// Reads the expiry from the head of a value (at least the tag and the expiry field).
pub(crate) fn decode_expiry(value: &[u8]) -> Result<DateTime<Utc>, StoreError> {
    let known = value.starts_with(TAG.as_bytes()) || value.starts_with(TAG_V1.as_bytes());
    if !known || value.len() < EXP_OFFSET + TS_WIDTH {
        return Err(corrupt("unknown format"));
    }
    parse_ts(&value[EXP_OFFSET..EXP_OFFSET + TS_WIDTH])?.ok_or_else(|| corrupt("no expiry"))
}

/// Splits off the next `|`-terminated field.
fn field<'a>(rest: &mut &'a [u8]) -> Result<&'a [u8], StoreError> {
    let pos = rest
        .iter()
        .position(|&b| b == b'|')
        .ok_or_else(|| corrupt("truncated header"))?;
    let (f, r) = rest.split_at(pos);
    *rest = &r[1..];
    Ok(f)
}

fn number<T: std::str::FromStr>(f: &[u8], what: &str) -> Result<T, StoreError> {
    std::str::from_utf8(f)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| corrupt(what))
}

fn len_field(f: &[u8]) -> Result<Option<usize>, StoreError> {
    if f == b"-" {
        Ok(None)
    } else {
        number(f, "bad length field").map(Some)
    }
}

fn take_str(rest: &mut &[u8], len: Option<usize>) -> Result<Option<String>, StoreError> {
    let Some(len) = len else { return Ok(None) };
    if rest.len() < len {
        return Err(corrupt("truncated field"));
    }
    let (s, r) = rest.split_at(len);
    *rest = r;
    String::from_utf8(s.to_vec())
        .map(Some)
        .map_err(|_| corrupt("field is not UTF-8"))
}

/// Decodes a whole value stored under `key`. Never panics on foreign input.
pub(crate) fn decode(key: &SessionKey, value: Vec<u8>) -> Result<Record, StoreError> {
    let v2 = value.starts_with(TAG.as_bytes());
    if value.len() < FIXED_HEAD || !(v2 || value.starts_with(TAG_V1.as_bytes())) {
        return Err(corrupt("unknown format"));
    }
    let expires_at = decode_expiry(&value)?;
    let la_start = EXP_OFFSET + TS_WIDTH + 1;
    let last_active_at = parse_ts(&value[la_start..la_start + TS_WIDTH])?;
    if value[EXP_OFFSET + TS_WIDTH] != b'|' || value[FIXED_HEAD - 1] != b'|' {
        return Err(corrupt("bad separators"));
    }
    let mut rest: &[u8] = &value[FIXED_HEAD..];
    let version_bytes = field(&mut rest)?;
    if v2 && version_bytes.len() != VERSION_WIDTH {
        return Err(corrupt("bad version field"));
    }
    let version: u64 = number(version_bytes, "bad version")?;
    if v2 {
        // The fingerprint is for the scripts; the user id itself follows.
        let fp = field(&mut rest)?;
        if fp.len() != FP_WIDTH {
            return Err(corrupt("bad user fingerprint"));
        }
    }
    let created_ms: i64 = number(field(&mut rest)?, "bad created_at")?;
    let created_at = DateTime::from_timestamp_millis(created_ms)
        .ok_or_else(|| corrupt("created_at out of range"))?;
    let ulen = len_field(field(&mut rest)?)?;
    let ualen = len_field(field(&mut rest)?)?;
    let iplen = len_field(field(&mut rest)?)?;
    let user_id = take_str(&mut rest, ulen)?;
    let user_agent = take_str(&mut rest, ualen)?;
    let ip = take_str(&mut rest, iplen)?;
    let offset = value.len() - rest.len();
    // Reuse the buffer: move the data to its front instead of copying it out.
    let mut bytes = value;
    bytes.drain(..offset);
    let data = String::from_utf8(bytes).map_err(|_| corrupt("data is not UTF-8"))?;
    let mut record = Record::new(key.clone(), data, expires_at)
        .with_version(version)
        .with_created_at(created_at);
    record.user_id = user_id;
    record.last_active_at = last_active_at;
    record.user_agent = user_agent;
    record.ip = ip;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::chrono::Duration;

    fn sample() -> Record {
        let mut r = Record::new(
            SessionKey::generate(),
            "j1:{\"a\":\"|ünï|\"}".into(),
            Utc::now() + Duration::hours(1),
        );
        r.version = 7;
        r.user_id = Some("al|ice 🎉".into());
        r.user_agent = Some("Mozilla|5".into());
        r.ip = None;
        r.last_active_at = Some(Utc::now());
        r
    }

    fn ms(at: DateTime<Utc>) -> i64 {
        at.timestamp_millis()
    }

    #[test]
    fn round_trip_keeps_every_field_to_the_millisecond() {
        let r = sample();
        let value = encode(&r, 8);
        let back = decode(&r.key, value.into_bytes()).expect("decode");
        assert_eq!(back.version, 8);
        assert_eq!(back.data, r.data);
        assert_eq!(back.user_id, r.user_id);
        assert_eq!(back.user_agent, r.user_agent);
        assert_eq!(back.ip, None);
        assert_eq!(ms(back.expires_at), ms(r.expires_at));
        assert_eq!(ms(back.created_at), ms(r.created_at));
        assert_eq!(back.last_active_at.map(ms), r.last_active_at.map(ms));
    }

    #[test]
    fn fixed_offsets_hold_for_negative_and_missing_times() {
        let mut r = sample();
        r.expires_at = DateTime::from_timestamp_millis(-1234).expect("time");
        r.last_active_at = None;
        r.user_id = None;
        r.user_agent = Some(String::new());
        let value = encode(&r, 1);
        assert_eq!(&value[3..20], "-0000000000001234");
        assert_eq!(&value[39..59], "00000000000000000001");
        assert_eq!(&value[60..76], NO_USER_FP);
        let rest = format!("{}|-|0|-|{}", ms(r.created_at), r.data);
        assert_eq!(&value[HEAD_LEN..], rest);
        assert_eq!(&value[20..21], "|");
        assert_eq!(&value[21..38], NO_TS);
        let back = decode(&r.key, value.into_bytes()).expect("decode");
        assert_eq!(ms(back.expires_at), -1234);
        assert_eq!(back.last_active_at, None);
        assert_eq!(back.user_id, None);
        assert_eq!(back.user_agent.as_deref(), Some(""));
    }

    #[test]
    fn values_of_the_previous_format_still_decode() {
        let r = sample();
        let v1 = encode_v1(&r, 41);
        assert!(v1.starts_with(TAG_V1));
        let back = decode(&r.key, v1.into_bytes()).expect("decode s1");
        assert_eq!(back.version, 41);
        assert_eq!(back.data, r.data);
        assert_eq!(back.user_id, r.user_id);
        assert_eq!(back.user_agent, r.user_agent);
        assert_eq!(ms(back.created_at), ms(r.created_at));
        assert_eq!(ms(back.expires_at), ms(r.expires_at));
        // Re-encoded in the current format, it carries the same record.
        let v2 = encode(&back, back.version);
        assert!(v2.starts_with(TAG));
        let again = decode(&r.key, v2.into_bytes()).expect("decode s2");
        assert_eq!(again.version, 41);
        assert_eq!(again.user_id, r.user_id);
        assert_eq!(again.data, r.data);
    }

    #[test]
    fn fingerprints_are_fixed_width_and_tell_users_apart() {
        let a = user_fingerprint(Some("alice"));
        let b = user_fingerprint(Some("bob"));
        assert_eq!(a.len(), FP_WIDTH);
        assert_ne!(a, b);
        assert_eq!(a, user_fingerprint(Some("alice")));
        assert_eq!(user_fingerprint(None), NO_USER_FP);
        assert_ne!(user_fingerprint(Some("")), NO_USER_FP);
    }

    #[test]
    fn foreign_and_truncated_values_are_corrupt_not_panics() {
        let r = sample();
        let good = encode(&r, 1).into_bytes();
        for cut in 0..good.len().min(120) {
            let res = decode(&r.key, good[..cut].to_vec());
            // Some cuts inside the data are still valid records (the data just got shorter);
            // every other cut must be an error, never a panic.
            if let Err(e) = res {
                assert!(matches!(e, StoreError::CorruptRecord { .. }), "{e}");
            }
        }
        for bad in [
            &b""[..],
            b"hello",
            b"s1|",
            b"s1|xxxxxxxxxxxxxxxxx|-----------------|1|2|-|-|-|",
            b"s1|00000000000000001|-----------------|1|2|99|-|-|ab",
            b"s1|00000000000000001|-----------------|1|2|-|-|-",
            b"s1|00000000000000001|-----------------|x|2|-|-|-|",
            b"s2|00000000000000001|-----------------|1|----------------|2|-|-|-|",
            b"s2|00000000000000001|-----------------|00000000000000000001|---|2|-|-|-|",
            b"\xff\xfe\x00",
        ] {
            let err = decode(&r.key, bad.to_vec()).expect_err("corrupt");
            assert!(matches!(err, StoreError::CorruptRecord { .. }), "{err}");
        }
        let mut bad_utf8 = encode(&r, 1).into_bytes();
        bad_utf8.push(0xff);
        assert!(decode(&r.key, bad_utf8).is_err());
    }
}
