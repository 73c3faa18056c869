//! The Lua scripts. Each touches only the keys it is given (one key, or in standalone mode
//! a session key and its user's index key), so each runs atomically on one node and in one
//! hash slot in a cluster. They read the value layout of [`crate::format`].
//!
//! Return codes shared by the scripts (see [`Code`]).

use std::sync::LazyLock;

use redis::Script;

/// What a script answered. The discriminants are the integers the Lua scripts return;
/// match on the variants, never on the integers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i64)]
pub(crate) enum Code {
    /// Done (update: the new version is the one the client computed; delete: a live
    /// record was removed; delete-if-owned: a live record of that user was removed).
    Ok = 1,
    /// create: a live record holds the key. update/touch/delete-at-version: no live
    /// record. delete/delete-if-owned: nothing was there.
    Refused = 0,
    /// update/delete-at-version: the version moved.
    Conflict = -1,
    /// update in cluster mode: the user changed; write the new user's index entry first,
    /// then call again with `index_done`.
    NeedIndex = -2,
    /// The value at the key is not a session record of this format.
    Corrupt = -3,
    /// delete-if-owned: the record belongs to someone else; nothing was removed.
    NotOwned = -4,
    /// delete-if-owned: an expired record of that user was removed.
    RemovedExpired = 2,
}

impl Code {
    const ALL: [Self; 7] = [
        Self::Ok,
        Self::Refused,
        Self::Conflict,
        Self::NeedIndex,
        Self::Corrupt,
        Self::NotOwned,
        Self::RemovedExpired,
    ];

    pub(crate) fn from_i64(n: i64) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_i64() == n)
    }

    /// The integer a script returns for this code.
    pub(crate) const fn as_i64(self) -> i64 {
        self as i64
    }
}

/// Shared Lua helpers, reading both value layouts of `crate::format` (`s2`, and `s1`
/// written before the upgrade).
const HELPERS: &str = r"
local function expiry(v)
  local tag = string.sub(v, 1, 3)
  if tag ~= 's2|' and tag ~= 's1|' then return nil end
  return tonumber(string.sub(v, 4, 20))
end
local function header(v)
  -- version, created_ms, user (false when none); nil when malformed
  local s, e, ver, created, ulen
  if string.sub(v, 1, 3) == 's2|' then
    if #v < 77 or string.sub(v, 77, 77) ~= '|' then return nil end
    ver = string.sub(v, 40, 59)
    s, e, created, ulen = string.find(v, '^(%-?%d+)|([%d%-]+)|[%d%-]+|[%d%-]+|', 78)
  else
    s, e, ver, created, ulen = string.find(v, '^(%d+)|(%-?%d+)|([%d%-]+)|[%d%-]+|[%d%-]+|', 40)
  end
  if not s then return nil end
  local user = false
  if ulen ~= '-' then
    local n = tonumber(ulen)
    if not n or e + n > #v then return nil end
    user = string.sub(v, e + 1, e + n)
  end
  return ver, created, user
end
-- The version of a live-looking head as a 20-digit string (s2: as stored; s1: padded),
-- or nil when malformed. s2 needs the head up to byte 77, s1 up to byte 60.
local function version_of(head)
  if string.sub(head, 21, 21) ~= '|' or string.sub(head, 39, 39) ~= '|' then return nil end
  if string.sub(head, 1, 3) == 's2|' then
    if #head < 77 or string.sub(head, 60, 60) ~= '|' then return nil end
    return string.sub(head, 40, 59)
  end
  local ver = string.match(head, '^(%d+)|', 40)
  if not ver or #ver > 20 then return nil end
  return string.rep('0', 20 - #ver) .. ver
end
";

/// The slow path of `create`, run only when `SET NX` refused (or in standalone mode with a
/// user, where the index entry is written in the same script). KEYS: session [, user
/// index]. ARGV: now_ms, value, expires_ms, member, score (the index entry's score: when
/// it was written).
pub(crate) static CREATE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}
local cur = redis.pcall('GET', KEYS[1])
if type(cur) == 'table' then return {corrupt} end
local now = tonumber(ARGV[1])
if cur then
  local exp = expiry(cur)
  if not exp or not header(cur) then return {corrupt} end
  if exp > now then return {refused} end
end
if tonumber(ARGV[3]) <= now then
  if cur then redis.call('DEL', KEYS[1]) end
  return {ok}
end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
if KEYS[2] then redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4]) end
return {ok}
",
        ok = Code::Ok.as_i64(),
        refused = Code::Refused.as_i64(),
        corrupt = Code::Corrupt.as_i64(),
    ))
});

/// Compare-and-swap. KEYS: session [, new user's index]. ARGV: now_ms, expected version
/// (20 digits), the whole new value (built by the client), the new user's fingerprint,
/// expires_ms, member (the session key; empty when the record has no user), index_done
/// ('1'/'0'). Reads only the fixed header of an `s2` value (`GETRANGE`), never the data;
/// a new index entry is scored with `now_ms` (when it was written).
pub(crate) static UPDATE: LazyLock<Script> = LazyLock::new(|| {
    // The hot path: kept free of helper closures and protected calls (a value of another
    // Redis type makes `GETRANGE` fail with WRONGTYPE, which the client maps to
    // CorruptRecord).
    Script::new(&format!(
        "
local h = redis.call('GETRANGE', KEYS[1], 0, 76)
if h == '' then return {refused} end
local tag = string.sub(h, 1, 3)
local exp = tonumber(string.sub(h, 4, 20))
if not exp or string.sub(h, 21, 21) ~= '|' or string.sub(h, 39, 39) ~= '|' then return {corrupt} end
local changed
if tag == 's2|' then
  if string.sub(h, 60, 60) ~= '|' or string.sub(h, 77, 77) ~= '|' then return {corrupt} end
  if exp <= tonumber(ARGV[1]) then return {refused} end
  if string.sub(h, 40, 59) ~= ARGV[2] then return {conflict} end
  changed = string.sub(h, 61, 76) ~= ARGV[4]
elseif tag == 's1|' then
  -- Written before the upgrade: the version has no fixed width; this write upgrades it.
  local ver = string.match(h, '^(%d+)|', 40)
  if not ver or #ver > 20 then return {corrupt} end
  if exp <= tonumber(ARGV[1]) then return {refused} end
  if string.rep('0', 20 - #ver) .. ver ~= ARGV[2] then return {conflict} end
  changed = true
else
  return {corrupt}
end
if changed and ARGV[6] ~= '' then
  if KEYS[2] then
    redis.call('ZADD', KEYS[2], ARGV[1], ARGV[6])
  elseif ARGV[7] ~= '1' then
    return {need_index}
  end
end
if tonumber(ARGV[5]) <= tonumber(ARGV[1]) then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], ARGV[3], 'PXAT', ARGV[5])
end
return {ok}
",
        ok = Code::Ok.as_i64(),
        refused = Code::Refused.as_i64(),
        conflict = Code::Conflict.as_i64(),
        need_index = Code::NeedIndex.as_i64(),
        corrupt = Code::Corrupt.as_i64(),
    ))
});

/// KEYS: session. ARGV: now_ms, expiry field, last-active field, expires_ms. Both
/// formats keep the two fields at the same offsets.
pub(crate) static TOUCH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}
local head = redis.pcall('GETRANGE', KEYS[1], 0, 38)
if type(head) == 'table' then return {corrupt} end
if head == '' then return {refused} end
local now = tonumber(ARGV[1])
local exp = expiry(head)
if not exp or #head < 39 or string.sub(head, 21, 21) ~= '|' or string.sub(head, 39, 39) ~= '|' then
  return {corrupt}
end
if exp <= now then return {refused} end
if tonumber(ARGV[4]) <= now then
  redis.call('DEL', KEYS[1])
  return {ok}
end
redis.call('SETRANGE', KEYS[1], 3, ARGV[2] .. '|' .. ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return {ok}
",
        ok = Code::Ok.as_i64(),
        refused = Code::Refused.as_i64(),
        corrupt = Code::Corrupt.as_i64(),
    ))
});

/// KEYS: session. ARGV: now_ms, user. Deletes the record if it belongs to `user`:
/// `Ok` live record removed, `RemovedExpired` expired record removed, `Refused` missing,
/// `NotOwned` someone else's, `Corrupt` not a record.
pub(crate) static DELETE_IF_OWNED: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}
local cur = redis.pcall('GET', KEYS[1])
if type(cur) == 'table' then return {corrupt} end
if not cur then return {refused} end
local exp = expiry(cur)
if not exp then return {corrupt} end
local ver, created, user = header(cur)
if not ver then return {corrupt} end
if user ~= ARGV[2] then return {not_owned} end
redis.call('DEL', KEYS[1])
if exp <= tonumber(ARGV[1]) then return {removed_expired} end
return {ok}
",
        ok = Code::Ok.as_i64(),
        refused = Code::Refused.as_i64(),
        corrupt = Code::Corrupt.as_i64(),
        not_owned = Code::NotOwned.as_i64(),
        removed_expired = Code::RemovedExpired.as_i64(),
    ))
});

/// KEYS: session. ARGV: now_ms, expected version (20 digits). Compare-and-delete: removes
/// the record only if it is live at `now_ms` and stored at the expected version (`Ok`);
/// `Refused` when there is no live record, `Conflict` when the version moved, `Corrupt`
/// for a value of another format or type; in all three the key is left as it was. Reads
/// only the head of the value (`GETRANGE`), never the data.
pub(crate) static DELETE_AT_VERSION: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{HELPERS}
local head = redis.pcall('GETRANGE', KEYS[1], 0, {head_end})
if type(head) == 'table' then return {corrupt} end
if head == '' then return {refused} end
local exp = expiry(head)
if not exp then return {corrupt} end
local ver = version_of(head)
if not ver then return {corrupt} end
if exp <= tonumber(ARGV[1]) then return {refused} end
if ver ~= ARGV[2] then return {conflict} end
redis.call('DEL', KEYS[1])
return {ok}
",
        head_end = crate::format::HEAD_LEN - 1,
        ok = Code::Ok.as_i64(),
        refused = Code::Refused.as_i64(),
        conflict = Code::Conflict.as_i64(),
        corrupt = Code::Corrupt.as_i64(),
    ))
});

/// KEYS: user index. ARGV: member, score, member, score, ... Removes each member whose
/// score is still the one the caller saw (so an entry written again meanwhile stays).
/// Returns how many were removed.
pub(crate) static PRUNE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = 0
for i = 1, #ARGV, 2 do
  local s = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if s and tonumber(s) == tonumber(ARGV[i + 1]) then
    n = n + redis.call('ZREM', KEYS[1], ARGV[i])
  end
end
return n
",
    )
});

#[cfg(test)]
mod tests {
    use super::Code;

    #[test]
    fn codes_round_trip_and_are_distinct() {
        for code in Code::ALL {
            assert_eq!(Code::from_i64(code.as_i64()), Some(code));
        }
        let mut ints: Vec<i64> = Code::ALL.iter().map(|c| c.as_i64()).collect();
        ints.sort_unstable();
        ints.dedup();
        assert_eq!(ints.len(), Code::ALL.len());
        assert_eq!(Code::from_i64(99), None);
    }
}
