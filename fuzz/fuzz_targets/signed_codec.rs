//! `SignedCodec` (Django's `signing.dumps`/`loads`): never panics; only correctly signed
//! values decode; a value that decodes re-encodes to one that decodes to the same map; any
//! JSON object encodes and decodes unchanged (compressed or not, through a rotated secret).
//!
//! The first byte picks a mode: 0 decodes the rest as a cookie/store value, 1 signs the rest
//! as a JSON payload first (so the JSON and zlib layers behind the signature are reached),
//! 2 encodes the rest parsed as a JSON object.
#![no_main]
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use session_core::{Codec, SessionMap};
use session_signed::SignedCodec;

struct Codecs {
    plain: SignedCodec,
    compressed: SignedCodec,
    rotated: SignedCodec,
    other: SignedCodec,
}

fn codecs() -> &'static Codecs {
    static C: OnceLock<Codecs> = OnceLock::new();
    C.get_or_init(|| Codecs {
        plain: SignedCodec::django("fuzz-secret-fuzz-secret-fuzz-secret-01").expect("secret"),
        compressed: SignedCodec::django("fuzz-secret-fuzz-secret-fuzz-secret-01")
            .expect("secret")
            .with_compression(true),
        rotated: SignedCodec::django("a-new-secret-a-new-secret-a-new-secret")
            .expect("secret")
            .with_fallback("fuzz-secret-fuzz-secret-fuzz-secret-01")
            .expect("secret"),
        other: SignedCodec::django("another-secret-another-secret-another-s").expect("secret"),
    })
}

fn check_round_trip(map: &SessionMap) {
    let c = codecs();
    for codec in [&c.plain, &c.compressed] {
        let encoded = codec.encode(map).expect("a map encodes");
        let back = codec.decode(&encoded).expect("an encoded map decodes");
        assert_eq!(&back, map, "round trip through {encoded:?}");
        // Rotation: the new secret still reads what the old one signed.
        assert_eq!(&c.rotated.decode(&encoded).expect("fallback secret"), map);
        // Another secret never accepts it.
        assert!(c.other.decode(&encoded).is_err());
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let c = codecs();
    match mode % 3 {
        0 => {
            let Ok(s) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(map) = c.plain.decode(s) {
                check_round_trip(&map);
            }
            assert!(c.other.decode(s).is_err() || c.plain.decode(s).is_err());
        }
        1 => {
            let codec = if mode & 4 == 0 {
                &c.plain
            } else {
                &c.compressed
            };
            let signed = codec.sign_json(rest, 1_700_000_000);
            assert_eq!(
                codec.signed_at(&signed).expect("own signature"),
                1_700_000_000
            );
            if let Ok(map) = codec.decode(&signed) {
                check_round_trip(&map);
            }
            // A flipped byte anywhere breaks the signature (or the value's shape).
            if !signed.is_empty() {
                let i = usize::from(mode) * 7 % signed.len();
                let mut bytes = signed.clone().into_bytes();
                bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
                if let Ok(tampered) = String::from_utf8(bytes) {
                    if tampered != signed {
                        assert!(codec.decode(&tampered).is_err(), "tampered {tampered:?}");
                    }
                }
            }
        }
        _ => {
            if let Ok(map) = serde_json::from_slice::<SessionMap>(rest) {
                check_round_trip(&map);
            }
        }
    }
});
