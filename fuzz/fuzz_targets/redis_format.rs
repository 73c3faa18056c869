//! The Redis value format (`session-redis/src/format.rs`, compiled verbatim into the fuzz
//! crate since it is `pub(crate)`): `decode` never panics on foreign bytes; a value that
//! decodes re-encodes (current format) to one that decodes to the same record; any record
//! encodes and decodes unchanged (times to the millisecond), and the expiry read at the
//! fixed offset (as the Lua scripts read it) is the record's.
#![no_main]
use libfuzzer_sys::fuzz_target;
use session_core::chrono::{DateTime, Utc};
use session_core::{Record, SessionKey};
use session_fuzz::redis_format::{decode, decode_expiry, encode};
use session_fuzz::{le_i64, split};

fn key() -> SessionKey {
    SessionKey::parse("fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz").expect("a valid key")
}

fn ms_time(bytes: &[u8]) -> Option<DateTime<Utc>> {
    // Within chrono's range: reduce modulo the span it can represent.
    let span = 8_000_000_000_000_000i64;
    DateTime::from_timestamp_millis(le_i64(bytes) % span)
}

fn text(bytes: &[u8]) -> Option<String> {
    bytes
        .split_first()
        .map(|(_, rest)| String::from_utf8_lossy(rest).into_owned())
}

fn check_round_trip(record: &Record) {
    let encoded = encode(record, record.version);
    let back =
        decode(&record.key, encoded.clone().into_bytes()).expect("an encoded record decodes");
    assert!(
        back == *record,
        "round trip changed the record: {encoded:?}"
    );
    assert_eq!(
        decode_expiry(encoded.as_bytes()).expect("expiry at its offset"),
        record.expires_at
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode % 2 == 0 {
        if let Ok(record) = decode(&key(), rest.to_vec()) {
            assert_eq!(decode_expiry(rest).expect("expiry"), record.expires_at);
            check_round_trip(&record);
        }
        return;
    }
    // A record built from the input.
    let parts = split(rest, 0xff, 8);
    let part = |i: usize| parts.get(i).copied().unwrap_or_default();
    let (Some(expires_at), Some(created_at)) = (ms_time(part(0)), ms_time(part(1))) else {
        return;
    };
    let mut record = Record::new(
        key(),
        String::from_utf8_lossy(part(7)).into_owned(),
        expires_at,
    )
    .with_version(le_i64(part(2)) as u64)
    .with_created_at(created_at);
    record.last_active_at = if part(3).is_empty() {
        None
    } else {
        ms_time(part(3))
    };
    record.user_id = text(part(4));
    record.user_agent = text(part(5));
    record.ip = text(part(6));
    check_round_trip(&record);
});
