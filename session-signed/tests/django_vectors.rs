//! The codec against known vectors produced by the real Django (see
//! `tests/fixtures/gen_vectors.py`; regenerate with the command in its docstring).

use std::io::Read;

use base64::Engine;
use serde_json::Value;
use session_core::{Codec, CodecError, SessionMap};
use session_signed::{NonFinite, Salt, SignedCodec, DJANGO_SALT, PLAIN_SALT};

const FIXTURE: &str = include_str!("fixtures/django_vectors.json");

/// Vectors whose Django result we knowingly do not reproduce (documented in the crate docs).
const KNOWN_DIFFERENCES: &[&str] = &["lone_surrogate", "huge_int"];

struct Fixture {
    root: Value,
}

impl Fixture {
    fn load() -> Self {
        Self {
            root: serde_json::from_str(FIXTURE).expect("fixture is valid JSON"),
        }
    }

    fn str(&self, field: &str) -> &str {
        self.root[field].as_str().expect("string field")
    }

    fn clock(&self) -> i64 {
        self.root["clock"].as_i64().expect("clock")
    }

    fn vectors(&self) -> &[Value] {
        self.root["vectors"].as_array().expect("vectors")
    }

    fn vector(&self, name: &str) -> &Value {
        self.vectors()
            .iter()
            .find(|v| v["name"] == name)
            .unwrap_or_else(|| panic!("no vector {name}"))
    }

    fn salt(v: &Value) -> Salt {
        match v["salt"].as_str().expect("salt") {
            DJANGO_SALT => Salt::Django,
            PLAIN_SALT => Salt::Plain,
            other => Salt::Custom(other.to_owned()),
        }
    }

    /// The codec Django had: SECRET_KEY plus SECRET_KEY_FALLBACKS.
    fn codec(&self, salt: Salt) -> SignedCodec {
        let fallbacks: Vec<String> = self.root["secret_key_fallbacks"]
            .as_array()
            .expect("fallbacks")
            .iter()
            .map(|s| s.as_str().expect("str").to_owned())
            .collect();
        SignedCodec::new(salt, self.str("secret_key"))
            .and_then(|c| c.with_fallbacks(fallbacks))
            .expect("codec")
    }
}

/// The JSON bytes inside a signed value (base64-decoded, inflated if compressed).
fn payload_json(data: &str) -> String {
    let mut parts = data.rsplitn(3, ':');
    let _sig = parts.next();
    let _ts = parts.next();
    let payload = parts.next().expect("payload");
    let (compressed, b64) = match payload.strip_prefix('.') {
        Some(rest) => (true, rest),
        None => (false, payload),
    };
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(b64)
        .expect("base64");
    let bytes = if compressed {
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(&raw[..])
            .read_to_end(&mut out)
            .expect("zlib");
        out
    } else {
        raw
    };
    String::from_utf8(bytes).expect("ascii json")
}

#[test]
fn fixture_comes_from_a_real_django() {
    let f = Fixture::load();
    let version = f.str("django_version");
    let major: u32 = version
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("version");
    assert!(
        major >= 4,
        "vectors must come from Django >= 4.0, got {version}"
    );
    assert!(f.vectors().len() >= 40, "{} vectors", f.vectors().len());
}

#[test]
fn every_vector_decodes_as_django_decodes_it() {
    let f = Fixture::load();
    let mut checked = 0;
    for v in f.vectors() {
        let name = v["name"].as_str().expect("name");
        if KNOWN_DIFFERENCES.contains(&name) {
            continue;
        }
        let data = v["data"].as_str().expect("data");
        let codec = f.codec(Fixture::salt(v));
        let result = codec.decode(data);
        match v["outcome"].as_str().expect("outcome") {
            "ok" => match &v["decoded"] {
                Value::Object(expected) => {
                    let got = result.unwrap_or_else(|e| panic!("{name}: {e}"));
                    // Compare as text: equal values AND the same key order.
                    assert_eq!(
                        serde_json::to_string(&got).expect("json"),
                        serde_json::to_string(expected).expect("json"),
                        "{name}"
                    );
                }
                _ => {
                    let err = result.expect_err(name);
                    assert!(matches!(err, CodecError::Malformed(_)), "{name}: {err:?}");
                    assert!(!err.is_suspicious(), "{name}");
                }
            },
            "bad_signature" => {
                let err = result.expect_err(name);
                assert!(matches!(err, CodecError::BadSignature), "{name}: {err:?}");
            }
            other => {
                assert!(other.starts_with("error:"), "{name}: outcome {other}");
                let err = result.expect_err(name);
                assert!(
                    !err.is_suspicious(),
                    "{name}: {err:?} must not be a bad signature"
                );
            }
        }
        // Whatever Django's SessionStore.decode made of it, the handle's result is the same:
        // the decoded map, or {} on any failure.
        if let Value::Object(store_view) = &v["session_store_decode"] {
            let handle_view = codec.decode(data).unwrap_or_default();
            assert_eq!(&handle_view, store_view, "{name}");
        }
        checked += 1;
    }
    assert!(checked >= 38, "checked {checked}");
}

#[test]
fn encoding_matches_django_byte_for_byte() {
    let f = Fixture::load();
    let clock = f.clock();
    let mut identical = 0;
    let mut same_json = 0;
    for v in f.vectors() {
        let name = v["name"].as_str().expect("name");
        if v["outcome"] != "ok" || KNOWN_DIFFERENCES.contains(&name) || name == "nan_infinity" {
            continue;
        }
        let Value::Object(map) = &v["decoded"] else {
            continue;
        };
        let salt = Fixture::salt(v);
        let signer = if name.starts_with("fallback_key") {
            // Django signed these with the old key; so do we, to compare.
            let fallback = f.root["secret_key_fallbacks"][0]
                .as_str()
                .expect("fallback");
            SignedCodec::new(salt, fallback).expect("codec")
        } else {
            f.codec(salt)
        };
        let ours = signer.encode_at(map, clock).expect("encode");
        // The serialized JSON is always byte-identical to Django's serializer's.
        assert_eq!(
            payload_json(&ours),
            v["json"].as_str().expect("json"),
            "{name}"
        );
        same_json += 1;
        let compressed = v["compressed"].as_bool().expect("compressed");
        let json_len = v["json"].as_str().expect("json").len();
        if compressed && json_len > 200 {
            // Clearly compressible: we compress too. (For short payloads the decision can
            // differ by a byte or two of zlib output; both sides decode either form.)
            assert!(ours.starts_with('.'), "{name}: should be compressed");
        }
        if !compressed {
            // Django found zlib not worth it; ours is never smaller than stock zlib here.
            assert!(!ours.starts_with('.'), "{name}: should not be compressed");
        }
        if ours.starts_with('.') || compressed {
            // zlib bytes may differ between implementations: check by decoding.
            assert_eq!(
                &f.codec(Fixture::salt(v)).decode(&ours).expect("decode"),
                map
            );
        } else {
            assert_eq!(ours, v["data"].as_str().expect("data"), "{name}");
            identical += 1;
        }
    }
    assert!(identical >= 12, "byte-identical vectors: {identical}");
    assert!(same_json >= 19, "json-identical vectors: {same_json}");
    println!("byte-identical: {identical}, json-identical: {same_json}");
}

#[test]
fn non_finite_numbers_follow_the_configured_policy() {
    let f = Fixture::load();
    let v = f.vector("nan_infinity");
    let data = v["data"].as_str().expect("data");
    let lenient = f.codec(Salt::Django);
    let map = lenient.decode(data).expect("NaN maps to null by default");
    assert_eq!(map["score"], Value::Null);
    assert_eq!(map["hi"], Value::Null);
    assert_eq!(map["lo"], Value::Null);
    assert_eq!(map["s"], "NaN Infinity", "strings are untouched");
    assert_eq!(map["n"], 1);
    let strict = f.codec(Salt::Django).with_non_finite(NonFinite::Reject);
    let err = strict.decode(data).expect_err("rejected");
    assert!(matches!(err, CodecError::Json(_)), "{err:?}");
    assert!(!err.is_suspicious());
}

#[test]
fn documented_differences_behave_as_documented() {
    let f = Fixture::load();
    let codec = f.codec(Salt::Django);
    // Lone surrogate: Django decodes it, serde_json does not; the handle gives {}.
    let err = codec
        .decode(f.vector("lone_surrogate")["data"].as_str().expect("data"))
        .expect_err("lone surrogate");
    assert!(matches!(err, CodecError::Json(_)), "{err:?}");
    // 2**70: read exactly (as a PYTHON_INT_KEY object), and written back as the same
    // integer, so re-signing at Django's timestamp gives Django's own value.
    let data = f.vector("huge_int")["data"].as_str().expect("data");
    let map = codec.decode(data).expect("huge int");
    assert_eq!(
        map["n"][session_signed::PYTHON_INT_KEY],
        "1180591620717411303424"
    );
    let json = String::from_utf8(
        base64::Engine::decode(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD,
            data.split(':')
                .next()
                .expect("payload")
                .trim_start_matches('.'),
        )
        .expect("base64"),
    )
    .ok();
    if let Some(json) = json.filter(|j| j.starts_with('{')) {
        assert!(json.contains("1180591620717411303424"), "{json}");
    }
    let again = codec.encode(&map).expect("encode");
    assert_eq!(codec.decode(&again).expect("decode"), map);
}

#[test]
fn fallback_and_salt_rules() {
    let f = Fixture::load();
    let data = f.vector("fallback_key")["data"].as_str().expect("data");
    // Without the fallback the value no longer verifies.
    let only_current = SignedCodec::django(f.str("secret_key")).expect("codec");
    assert!(matches!(
        only_current.decode(data),
        Err(CodecError::BadSignature)
    ));
    assert!(f.codec(Salt::Django).decode(data).is_ok());
    // Re-encoding signs with the current key: the signature changes, the data does not.
    let codec = f.codec(Salt::Django);
    let map = codec.decode(data).expect("decode");
    let resigned = codec.encode_at(&map, f.clock()).expect("encode");
    assert_ne!(resigned, data);
    assert_eq!(resigned, f.vector("simple")["data"].as_str().expect("data"));
    assert!(only_current.decode(&resigned).is_ok());
    // Plain's salt is not Django's, in both directions.
    let plain = f.vector("plain_salt")["data"].as_str().expect("data");
    assert!(f.codec(Salt::Plain).decode(plain).is_ok());
    assert!(matches!(
        f.codec(Salt::Django).decode(plain),
        Err(CodecError::BadSignature)
    ));
    let simple = f.vector("simple")["data"].as_str().expect("data");
    assert!(matches!(
        f.codec(Salt::Plain).decode(simple),
        Err(CodecError::BadSignature)
    ));
    // And the timestamp is the generator's fixed clock.
    assert_eq!(codec.signed_at(simple).expect("ts"), f.clock());
}

#[test]
fn empty_map_encodes_like_django() {
    let f = Fixture::load();
    let ours = f
        .codec(Salt::Django)
        .encode_at(&SessionMap::new(), f.clock())
        .expect("encode");
    assert_eq!(ours, f.vector("empty_dict")["data"].as_str().expect("data"));
    assert!(ours.starts_with("e30:1vb66i:"));
}
