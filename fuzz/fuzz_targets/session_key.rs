//! `SessionKey::parse`: accepts exactly 32 characters of `[a-z0-9]`, reports the right error
//! otherwise, and an accepted key reads back as the same text and parses again.
#![no_main]
use libfuzzer_sys::fuzz_target;
use session_core::{InvalidKey, SessionKey, KEY_LEN};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let well_formed = s.len() == KEY_LEN
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    match SessionKey::parse(s) {
        Ok(key) => {
            assert!(well_formed, "accepted a malformed key {s:?}");
            assert_eq!(key.as_str(), s);
            assert_eq!(SessionKey::parse(key.as_str()), Ok(key.clone()));
            assert!(s.starts_with(key.log_prefix()));
            assert!(key.log_prefix().len() < KEY_LEN);
        }
        Err(InvalidKey::Length(n)) => {
            assert!(!well_formed);
            assert_eq!(n, s.len());
            assert_ne!(n, KEY_LEN);
        }
        Err(InvalidKey::Alphabet(pos)) => {
            assert!(!well_formed);
            assert_eq!(s.len(), KEY_LEN);
            let first_bad = s
                .bytes()
                .position(|b| !(b.is_ascii_lowercase() || b.is_ascii_digit()));
            assert_eq!(Some(pos), first_bad);
        }
        #[allow(unreachable_patterns)]
        Err(other) => panic!("unexpected error {other:?}"),
    }
});
