//! The decoder never panics and never accepts a forged value; the encoder round-trips any map.

use base64::Engine;
use hmac::{Hmac, Mac};
use proptest::prelude::*;
use serde_json::{Map, Value};
use session_core::{Codec, CodecError, SessionMap};
use session_signed::{SignedCodec, DJANGO_SALT};
use sha2::{Digest, Sha256};

const SECRET: &str = "robustness-secret";

fn codec() -> SignedCodec {
    SignedCodec::django(SECRET).expect("codec")
}

/// Signs an arbitrary `[.]payload:timestamp` string the way Django's Signer does, so the
/// decoder's post-signature paths (base62, base64, zlib, JSON) see hostile input too.
fn sign_raw(value: &str) -> String {
    let key = Sha256::new()
        .chain_update(DJANGO_SALT)
        .chain_update("signer")
        .chain_update(SECRET)
        .finalize();
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("hmac key");
    mac.update(value.as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{value}:{sig}")
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn session_map() -> impl Strategy<Value = SessionMap> {
    prop::collection::vec((any::<String>(), json_value()), 0..8)
        .prop_map(|kv| kv.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn any_map_round_trips_in_order(map in session_map(), ts in any::<i64>()) {
        let codec = codec();
        let data = codec.encode_at(&map, ts).expect("encode");
        prop_assert!(data.is_ascii());
        let back = codec.decode(&data).expect("decode");
        prop_assert_eq!(
            serde_json::to_string(&back).expect("json"),
            serde_json::to_string(&map).expect("json")
        );
        prop_assert_eq!(codec.signed_at(&data).expect("ts"), ts);
    }

    #[test]
    fn arbitrary_strings_never_panic(s in any::<String>()) {
        let result = codec().decode(&s);
        prop_assert!(result.is_err());
    }

    #[test]
    fn mutations_of_a_valid_value_are_rejected(
        map in session_map(),
        pos in any::<prop::sample::Index>(),
        byte in 0x20u8..0x7f,
        op in 0u8..3,
    ) {
        let codec = codec();
        let data = codec.encode_at(&map, 1_767_225_600).expect("encode");
        let mut bytes = data.clone().into_bytes();
        let i = pos.index(bytes.len());
        match op {
            0 => bytes[i] = byte,
            1 => { bytes.remove(i); }
            _ => bytes.insert(i, byte),
        }
        let mutated = String::from_utf8(bytes).expect("ascii");
        match codec.decode(&mutated) {
            // Only a no-op mutation (same byte written back) can still verify.
            Ok(_) => prop_assert_eq!(mutated, data),
            Err(e) => prop_assert!(matches!(e, CodecError::BadSignature), "{e:?}"),
        }
    }

    #[test]
    fn validly_signed_garbage_never_panics(payload in "[.]?[A-Za-z0-9_=!+/-]{0,64}", ts in "[-0-9A-Za-z!]{0,8}") {
        let data = sign_raw(&format!("{payload}:{ts}"));
        match codec().decode(&data) {
            Ok(map) => prop_assert!(map.len() < 64),
            Err(e) => prop_assert!(!e.is_suspicious(), "{e:?}"),
        }
    }

    #[test]
    fn validly_signed_random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256), compress in any::<bool>()) {
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes);
        let value = if compress { format!(".{b64}:0") } else { format!("{b64}:0") };
        let result = codec().decode(&sign_raw(&value));
        if let Err(e) = result {
            prop_assert!(!e.is_suspicious(), "{e:?}");
        }
    }
}

#[test]
fn decompression_bombs_are_bounded() {
    let big = format!("{{\"x\":\"{}\"}}", "a".repeat(2 << 20));
    let codec = codec();
    let data = codec.sign_json(big.as_bytes(), 0);
    assert!(data.len() < 20_000, "compressed to {}", data.len());
    assert_eq!(
        codec.decode(&data).expect("within default")["x"]
            .as_str()
            .map(str::len),
        Some(2 << 20)
    );
    let small = codec.clone().with_max_decoded_len(1 << 20);
    assert!(matches!(small.decode(&data), Err(CodecError::Malformed(_))));
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep = format!("{{\"a\":{}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    let codec = codec();
    let data = codec.sign_json(deep.as_bytes(), 0);
    assert!(matches!(codec.decode(&data), Err(CodecError::Json(_))));
}
