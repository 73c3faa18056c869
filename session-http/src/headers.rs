//! The response header decisions, as string logic: `Cache-Control` for responses that set
//! the cookie, and `Vary: Cookie`.

/// The `Cache-Control` value put on a response that sets or removes the session cookie when
/// the handler set none.
///
/// # Examples
///
/// ```
/// assert_eq!(session_http::PRIVATE_NO_STORE, "private, no-store");
/// ```
pub const PRIVATE_NO_STORE: &str = "private, no-store";

/// What to do with `Cache-Control` on a response that sets (or removes) the session cookie.
///
/// # Examples
///
/// ```
/// use session_http::{cache_control, CacheControl};
/// assert_eq!(cache_control(&[]), CacheControl::Insert(session_http::PRIVATE_NO_STORE));
/// assert_eq!(cache_control(&["private, max-age=60"]), CacheControl::Keep);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheControl {
    /// The handler set no `Cache-Control`: insert this value.
    Insert(&'static str),
    /// The handler chose one: keep it as it is (never overridden, nothing appended).
    Keep,
}

/// The `Cache-Control` decision for a response that sets or removes the session cookie,
/// from the handler's `Cache-Control` header values: a shared cache must not keep it, or it
/// would hand one visitor's session to the next. `private, no-store` unless the handler
/// chose a `Cache-Control` itself, which is kept (a value without `private`, `no-store` or
/// `no-cache` is logged as a warning).
///
/// # Examples
///
/// ```
/// use session_http::{cache_control, CacheControl};
/// // Kept, with a warning in the log: shared caches may store it.
/// assert_eq!(cache_control(&["public, max-age=600"]), CacheControl::Keep);
/// ```
pub fn cache_control(existing: &[&str]) -> CacheControl {
    if existing.is_empty() {
        return CacheControl::Insert(PRIVATE_NO_STORE);
    }
    let shareable = !existing
        .iter()
        .flat_map(|v| v.split(','))
        .map(|d| d.split('=').next().unwrap_or_default().trim())
        .any(|d| {
            ["private", "no-store", "no-cache"]
                .iter()
                .any(|p| d.eq_ignore_ascii_case(p))
        });
    if shareable {
        tracing::warn!("the handler's Cache-Control lets shared caches keep a response that sets the session cookie; left as the handler set it");
    }
    CacheControl::Keep
}

/// The `Vary` value with `Cookie` merged into the response's `Vary` header values, or
/// `None` when they already cover it (`Cookie` or `*`). The caller replaces every `Vary`
/// line with the one returned.
///
/// # Examples
///
/// ```
/// use session_http::vary_with_cookie;
/// assert_eq!(vary_with_cookie(&["Accept-Encoding", "Origin"]).as_deref(), Some("Accept-Encoding, Origin, Cookie"));
/// assert_eq!(vary_with_cookie(&[]).as_deref(), Some("Cookie"));
/// assert_eq!(vary_with_cookie(&["accept, cookie"]), None);
/// assert_eq!(vary_with_cookie(&["*"]), None);
/// ```
pub fn vary_with_cookie(existing: &[&str]) -> Option<String> {
    let existing: Vec<&str> = existing
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if existing
        .iter()
        .any(|v| *v == "*" || v.eq_ignore_ascii_case("cookie"))
    {
        return None;
    }
    let mut merged = existing.join(", ");
    if !merged.is_empty() {
        merged.push_str(", ");
    }
    merged.push_str("Cookie");
    Some(merged)
}
