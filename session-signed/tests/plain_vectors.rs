//! The codec with the Plain salt against values produced by the real Plain 0.22
//! (`tests/fixtures/gen_plain_vectors.py`).

use serde_json::Value;
use session_core::{Codec, CodecError, SessionMap};
use session_signed::SignedCodec;

const FIXTURE: &str = include_str!("fixtures/plain_vectors.json");

#[test]
fn plain_022_vectors_decode_and_encode_identically() {
    let root: Value = serde_json::from_str(FIXTURE).expect("fixture");
    assert_eq!(root["plain_sessions_version"], "0.22.0");
    let secret = root["secret_key"].as_str().expect("secret");
    let fallback = root["secret_key_fallbacks"][0].as_str().expect("fallback");
    let clock = root["clock"].as_i64().expect("clock");
    let codec = SignedCodec::plain(secret)
        .and_then(|c| c.with_fallback(fallback))
        .expect("codec");
    let old = SignedCodec::plain(fallback).expect("codec");
    let mut identical = 0;
    for v in root["vectors"].as_array().expect("vectors") {
        let name = v["name"].as_str().expect("name");
        let data = v["data"].as_str().expect("data");
        let result = codec.decode(data);
        // What Plain's own SessionStore._decode made of it ({} on failure).
        assert_eq!(
            Value::Object(result.as_ref().cloned().unwrap_or_default()),
            v["session_store_decode"],
            "{name}"
        );
        match v["outcome"].as_str().expect("outcome") {
            "ok" => {
                let map: SessionMap = result.expect(name);
                let signer = if name == "fallback_key" { &old } else { &codec };
                let ours = signer.encode_at(&map, clock).expect("encode");
                if v["compressed"] == true {
                    assert!(ours.starts_with('.'), "{name}");
                    assert_eq!(codec.decode(&ours).expect("decode"), map);
                } else {
                    assert_eq!(ours, data, "{name}: byte-identical to Plain");
                    identical += 1;
                }
            }
            "bad_signature" => {
                assert!(matches!(result, Err(CodecError::BadSignature)), "{name}");
            }
            other => panic!("{name}: unexpected outcome {other}"),
        }
    }
    assert_eq!(identical, 4);
}
