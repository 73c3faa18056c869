//! What [`CachedStore`](crate::CachedStore) keeps in its front store.
//!
//! The front store's own columns carry only the key, the data and a front expiry (never
//! later than the record's); everything else of the durable record travels in a short
//! header at the start of the data, so the front store's own versioning, created_at and user
//! index play no part (the front needs no user index and keeps none):
//!
//! ```text
//! E<version>|<expires>|<created>|<last active or empty>|<filled>|<user><ua><ip><data>
//! ```
//!
//! where times are `<unix seconds>.<nanoseconds>` and `<user>`, `<ua>`, `<ip>` are each `-` (none) or `<byte length>:<text>`. A lease
//! (a reader's claim to fill a missing entry) is the data `L`.

use session_core::chrono::{DateTime, Utc};
use session_core::Record;
#[cfg(test)]
use session_core::SessionKey;

/// The data of a lease.
pub(crate) const LEASE: &str = "L";

/// What a front record holds.
pub(crate) enum Front {
    /// A copy of the durable record, and when it was filled.
    Entry(Record, DateTime<Utc>),
    /// A reader's lease: someone is filling this key.
    Lease,
    /// Neither (not written by this crate, or damaged).
    Unknown,
}

fn push_time(out: &mut String, at: DateTime<Utc>) {
    out.push_str(&at.timestamp().to_string());
    out.push('.');
    out.push_str(&at.timestamp_subsec_nanos().to_string());
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    let (secs, nanos) = text.split_once('.')?;
    DateTime::from_timestamp(secs.parse().ok()?, nanos.parse().ok()?)
}

fn push_opt(out: &mut String, value: Option<&str>) {
    match value {
        None => out.push('-'),
        Some(text) => {
            out.push_str(&text.len().to_string());
            out.push(':');
            out.push_str(text);
        }
    }
}

/// Encodes `record` as a front entry filled at `filled`.
pub(crate) fn encode(record: &Record, filled: DateTime<Utc>) -> String {
    let mut out = String::with_capacity(record.data.len() + 96);
    out.push('E');
    out.push_str(&record.version.to_string());
    out.push('|');
    push_time(&mut out, record.expires_at);
    out.push('|');
    push_time(&mut out, record.created_at);
    out.push('|');
    if let Some(at) = record.last_active_at {
        push_time(&mut out, at);
    }
    out.push('|');
    push_time(&mut out, filled);
    out.push('|');
    push_opt(&mut out, record.user_id.as_deref());
    push_opt(&mut out, record.user_agent.as_deref());
    push_opt(&mut out, record.ip.as_deref());
    out.push_str(&record.data);
    out
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn number(&mut self) -> Option<&'a str> {
        let rest = self.text.get(self.pos..)?;
        let end = rest.find('|')?;
        self.pos += end + 1;
        Some(&rest[..end])
    }

    fn time(&mut self) -> Option<DateTime<Utc>> {
        parse_time(self.number()?)
    }

    fn opt(&mut self) -> Option<Option<String>> {
        let rest = self.text.get(self.pos..)?;
        if rest.starts_with('-') {
            self.pos += 1;
            return Some(None);
        }
        let colon = rest.find(':')?;
        let len: usize = rest[..colon].parse().ok()?;
        let start = colon + 1;
        let value = rest.get(start..start.checked_add(len)?)?;
        self.pos += start + len;
        Some(Some(value.to_owned()))
    }
}

/// Decodes a front record in place (its key and data buffer are reused, so a hit costs no
/// allocation beyond the front's own load).
pub(crate) fn decode(mut stored: Record) -> Front {
    if stored.data == LEASE {
        return Front::Lease;
    }
    if !stored.data.starts_with('E') {
        return Front::Unknown;
    }
    let mut cur = Cursor {
        text: &stored.data,
        pos: 1,
    };
    let parsed = (|| {
        let version: u64 = cur.number()?.parse().ok()?;
        let expires_at = cur.time()?;
        let created_at = cur.time()?;
        let last = cur.number()?;
        let last_active_at = if last.is_empty() {
            None
        } else {
            Some(parse_time(last)?)
        };
        let filled = cur.time()?;
        let user_id = cur.opt()?;
        let user_agent = cur.opt()?;
        let ip = cur.opt()?;
        Some((
            version,
            expires_at,
            created_at,
            last_active_at,
            filled,
            user_id,
            user_agent,
            ip,
        ))
    })();
    let Some((version, expires_at, created_at, last_active_at, filled, user_id, user_agent, ip)) =
        parsed
    else {
        return Front::Unknown;
    };
    let header = cur.pos;
    stored.data.replace_range(..header, "");
    stored.version = version;
    stored.expires_at = expires_at;
    stored.created_at = created_at;
    stored.last_active_at = last_active_at;
    stored.user_id = user_id;
    stored.user_agent = user_agent;
    stored.ip = ip;
    Front::Entry(stored, filled)
}

#[cfg(test)]
mod tests {
    use super::*;
    use session_core::chrono::TimeDelta;

    #[test]
    fn round_trips_every_field() {
        let mut r = Record::new(
            SessionKey::generate(),
            "j1:{\"a\":\"|-:1\"}".to_owned(),
            Utc::now() + TimeDelta::hours(1),
        )
        .with_version(42)
        .with_user(Some("Grüße|1:x"));
        r.user_agent = Some("Mozilla/5.0 (X11; -)".to_owned());
        r.last_active_at = Some(Utc::now());
        let filled = Utc::now();
        let stored = Record::new(r.key.clone(), encode(&r, filled), r.expires_at);
        let Front::Entry(back, at) = decode(stored) else {
            panic!("not an entry");
        };
        assert_eq!(back, r);
        assert_eq!(at, filled);
    }

    #[test]
    fn leases_and_damage_are_told_apart() {
        let front = |data: &str| {
            Record::new(
                SessionKey::generate(),
                data.to_owned(),
                Utc::now() + TimeDelta::hours(1),
            )
        };
        assert!(matches!(decode(front(LEASE)), Front::Lease));
        assert!(matches!(decode(front("j1:{}")), Front::Unknown));
        assert!(matches!(
            decode(front("E1|2.0|3.0||4.0|9:short")),
            Front::Unknown
        ));
        assert!(matches!(decode(front("E1|x")), Front::Unknown));
    }
}
