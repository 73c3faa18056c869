//! `JsonCodec::decode`: never panics; a value that decodes re-encodes to one that decodes to
//! the same map (and re-encoding is stable); any JSON object encodes and decodes unchanged.
#![no_main]
use libfuzzer_sys::fuzz_target;
use session_core::{Codec, JsonCodec, SessionMap};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let codec = JsonCodec;
    if let Ok(map) = codec.decode(s) {
        let again = codec.encode(&map).expect("a decoded map encodes");
        let back = codec.decode(&again).expect("a re-encoded map decodes");
        assert_eq!(back, map);
        assert_eq!(codec.encode(&back).expect("encodes"), again);
    }
    // The same bytes as a plain JSON object: decode(encode(x)) == x.
    if let Ok(map) = serde_json::from_str::<SessionMap>(s) {
        let encoded = codec.encode(&map).expect("encodes");
        assert_eq!(codec.decode(&encoded).expect("decodes"), map);
    }
});
