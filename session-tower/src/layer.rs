//! The tower [`Layer`] and [`Service`] that give every request a lazy [`Session`] and apply
//! Django's cookie rules to the response.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use cookie::{Cookie, SameSite};
use http::header::{CACHE_CONTROL, COOKIE, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use session_core::{CookieAction, Session, SessionConfig, SessionKey, SessionStore};
use tower_layer::Layer;
use tower_service::Service;

use crate::device::DeviceMetadata;
use crate::error::{ErrorPolicy, HandlerSessionError};
use crate::{DefaultSession, HttpSession};

/// A cookie setting the layer refused: it would produce a malformed `Set-Cookie` header.
///
/// # Examples
///
/// ```
/// let err = session_tower::SessionLayer::new(session_memory::MemoryStore::new())
///     .with_cookie_name("bad name;")
///     .unwrap_err();
/// assert!(err.to_string().contains("cookie name"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CookieConfigError {
    /// The cookie name is empty or not an HTTP token.
    #[error("invalid cookie name {0:?}: it must be a non-empty HTTP token (letters, digits and !#$%&'*+-.^_`|~)")]
    Name(String),
    /// The path does not start with `/` or has a `;` or a control character.
    #[error("invalid cookie path {0:?}: it must start with '/' and contain no ';' or control characters")]
    Path(String),
    /// The domain is empty or has characters a domain cannot have.
    #[error("invalid cookie domain {0:?}")]
    Domain(String),
}

/// The cookie's attributes. Defaults: name `id`, path `/`, no domain, `Secure`, `HttpOnly`,
/// `SameSite=Lax`, not partitioned.
#[derive(Debug, Clone)]
pub(crate) struct CookieSettings {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: Option<SameSite>,
    pub(crate) partitioned: bool,
}

impl Default for CookieSettings {
    fn default() -> Self {
        Self {
            name: "id".to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: Some(SameSite::Lax),
            partitioned: false,
        }
    }
}

impl CookieSettings {
    fn base<'c>(&self, value: String) -> cookie::CookieBuilder<'c> {
        let mut b = Cookie::build((self.name.clone(), value))
            .path(self.path.clone())
            .http_only(self.http_only);
        if let Some(domain) = &self.domain {
            b = b.domain(domain.clone());
        }
        // SameSite=None and Partitioned are only accepted with Secure.
        let secure =
            self.secure || self.partitioned || matches!(self.same_site, Some(SameSite::None));
        if secure {
            b = b.secure(true);
        }
        if let Some(same_site) = self.same_site {
            b = b.same_site(same_site);
        }
        if self.partitioned {
            b = b.partitioned(true);
        }
        b
    }

    /// The `Set-Cookie` value for a session key.
    pub(crate) fn set(&self, key: &SessionKey, max_age: Option<Duration>) -> String {
        let mut b = self.base(key.as_str().to_owned());
        if let Some(age) = max_age {
            let secs = i64::try_from(age.as_secs()).unwrap_or(i64::MAX / 2);
            let age = cookie::time::Duration::seconds(secs);
            b = b.max_age(age);
            if let Some(at) = cookie::time::OffsetDateTime::now_utc().checked_add(age) {
                b = b.expires(at);
            }
        }
        b.build().to_string()
    }

    /// The `Set-Cookie` value that removes the cookie (same path, domain and flags).
    pub(crate) fn remove(&self) -> String {
        self.base(String::new())
            .max_age(cookie::time::Duration::ZERO)
            .expires(cookie::time::OffsetDateTime::UNIX_EPOCH)
            .build()
            .to_string()
    }

    /// This cookie in the request's `Cookie` headers, parsed once: whether the request sent
    /// it at all, and the first well-formed session key among the values sent under the
    /// name.
    ///
    /// Browsers send cookies with longer paths first, so with two cookies of one name on
    /// nested paths the more specific one wins, and a stale malformed value never shadows
    /// a good one.
    pub(crate) fn find(&self, headers: &HeaderMap) -> SentCookie {
        let mut sent = false;
        let values = headers
            .get_all(COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .filter(|(name, _)| *name == self.name)
            .map(|(_, value)| value.trim().trim_matches('"'));
        for value in values {
            sent = true;
            match SessionKey::parse(value) {
                Ok(key) => {
                    return SentCookie {
                        sent,
                        key: Some(key),
                    }
                }
                Err(err) => tracing::debug!(%err, "malformed session cookie ignored"),
            }
        }
        SentCookie { sent, key: None }
    }
}

/// The session cookie of a request, as [`CookieSettings::find`] parsed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SentCookie {
    /// The request carried the cookie (well-formed or not).
    pub(crate) sent: bool,
    /// Its first well-formed value.
    pub(crate) key: Option<SessionKey>,
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

struct Shared {
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    cookie: CookieSettings,
    errors: ErrorPolicy,
    device: DeviceMetadata,
}

impl Clone for Shared {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            config: self.config.clone(),
            cookie: self.cookie.clone(),
            errors: self.errors.clone(),
            device: self.device.clone(),
        }
    }
}

/// A tower [`Layer`] that gives each request a lazy [`Session`] (reachable as
/// [`HttpSession<T>`](HttpSession)) and writes the session cookie on the response, with
/// Django's rules:
///
/// - the session is saved only when modified (or on every request with
///   [`SessionConfig::with_save_every_request`], which uses a cheap touch);
/// - `Set-Cookie` carries the key with a Max-Age equal to the stored expiry (none for a
///   browser-close session), and `Vary: Cookie` is added (merged) whenever the session was
///   used;
/// - a request that sent a cookie and leaves with an empty session gets a removal cookie
///   with the same path, domain and flags;
/// - a response that sets or removes the cookie gets `Cache-Control: private, no-store`,
///   unless the handler set a `Cache-Control` itself (kept as it is, never overridden);
/// - a 5xx response saves nothing and sets no cookie;
/// - a session deleted or revoked while the request ran answers **400**, a session over
///   the size limit **413** (configurable), a store outage **503** with `Retry-After`
///   (configurable), other session errors 500; the same for a
///   [`SessionError`](crate::SessionError) returned by the handler (then nothing is saved);
/// - a handler that called [`Session::save`] itself still gets its cookie.
///
/// # Examples
///
/// ```
/// use session_core::SessionConfig;
/// use session_memory::MemoryStore;
/// use session_tower::SessionLayer;
///
/// let layer = SessionLayer::new(MemoryStore::new())
///     .with_config(SessionConfig::default().with_save_every_request(true))
///     .with_cookie_name("sid")?
///     .with_secure(false); // plain-HTTP development only
/// # let _ = layer;
/// # Ok::<(), session_tower::CookieConfigError>(())
/// ```
pub struct SessionLayer<T = DefaultSession> {
    shared: Arc<Shared>,
    _tag: PhantomData<fn() -> T>,
}

impl<T> Clone for SessionLayer<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            _tag: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for SessionLayer<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionLayer")
            .field("tag", &std::any::type_name::<T>())
            .field("config", &self.shared.config)
            .field("cookie", &self.shared.cookie)
            .field("errors", &self.shared.errors)
            .field("device", &self.shared.device)
            .finish()
    }
}

impl SessionLayer<DefaultSession> {
    /// A layer over `store` with the default [`SessionConfig`] and cookie settings.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = session_tower::SessionLayer::new(session_memory::MemoryStore::new());
    /// assert_eq!(layer.cookie_name(), "id");
    /// ```
    pub fn new(store: impl SessionStore) -> Self {
        Self::from_shared_store(Arc::new(store))
    }

    /// A layer over a store the application also keeps (for "log out other devices", say).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_core::SessionStore;
    /// let store: Arc<dyn SessionStore> = Arc::new(session_memory::MemoryStore::new());
    /// let layer = session_tower::SessionLayer::from_shared_store(store.clone());
    /// # let _ = layer;
    /// ```
    pub fn from_shared_store(store: Arc<dyn SessionStore>) -> Self {
        Self {
            shared: Arc::new(Shared {
                store,
                config: Arc::new(SessionConfig::default()),
                cookie: CookieSettings::default(),
                errors: ErrorPolicy::default(),
                device: DeviceMetadata::default(),
            }),
            _tag: PhantomData,
        }
    }
}

impl<T> SessionLayer<T> {
    fn map(mut self, f: impl FnOnce(&mut Shared)) -> Self {
        f(Arc::make_mut(&mut self.shared));
        self
    }

    /// The same layer under another tag, so that two layers (say a shop session and an
    /// admin session with different cookie names or paths) can both be extracted in one
    /// handler as `HttpSession` and `HttpSession<Admin>`.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_tower::{HttpSession, SessionLayer};
    /// struct Admin;
    /// let admin = SessionLayer::new(session_memory::MemoryStore::new())
    ///     .with_cookie_name("admin_id")?
    ///     .with_path("/admin")?
    ///     .with_tag::<Admin>();
    /// async fn handler(_shop: HttpSession, _admin: HttpSession<Admin>) {}
    /// # let _ = admin;
    /// # Ok::<(), session_tower::CookieConfigError>(())
    /// ```
    pub fn with_tag<U>(self) -> SessionLayer<U> {
        SessionLayer {
            shared: self.shared,
            _tag: PhantomData,
        }
    }

    /// The session policy (expiry, codec, always-save, limits).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use session_core::SessionConfig;
    /// let layer = session_tower::SessionLayer::new(session_memory::MemoryStore::new())
    ///     .with_config(SessionConfig::default().with_idle_timeout(Duration::from_secs(1800)));
    /// # let _ = layer;
    /// ```
    pub fn with_config(self, config: SessionConfig) -> Self {
        self.map(|s| s.config = Arc::new(config))
    }

    /// The cookie name (default `id`).
    ///
    /// # Errors
    ///
    /// [`CookieConfigError::Name`] unless `name` is a non-empty HTTP token.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = session_tower::SessionLayer::new(session_memory::MemoryStore::new()).with_cookie_name("__Host-sid")?;
    /// assert_eq!(layer.cookie_name(), "__Host-sid");
    /// # Ok::<(), session_tower::CookieConfigError>(())
    /// ```
    pub fn with_cookie_name(self, name: impl Into<String>) -> Result<Self, CookieConfigError> {
        let name = name.into();
        if !is_token(&name) {
            return Err(CookieConfigError::Name(name));
        }
        Ok(self.map(|s| s.cookie.name = name))
    }

    /// The cookie path (default `/`).
    ///
    /// # Errors
    ///
    /// [`CookieConfigError::Path`] unless it starts with `/` and has no `;` or control
    /// characters.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = session_tower::SessionLayer::new(session_memory::MemoryStore::new()).with_path("/app")?;
    /// # let _ = layer;
    /// # Ok::<(), session_tower::CookieConfigError>(())
    /// ```
    pub fn with_path(self, path: impl Into<String>) -> Result<Self, CookieConfigError> {
        let path = path.into();
        if !path.starts_with('/') || path.contains(';') || path.chars().any(char::is_control) {
            return Err(CookieConfigError::Path(path));
        }
        Ok(self.map(|s| s.cookie.path = path))
    }

    /// The cookie domain (default none: host-only).
    ///
    /// # Errors
    ///
    /// [`CookieConfigError::Domain`] for an empty value or one with characters other than
    /// letters, digits, `-` and `.`.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = session_tower::SessionLayer::new(session_memory::MemoryStore::new()).with_domain(Some("example.com"))?;
    /// # let _ = layer;
    /// # Ok::<(), session_tower::CookieConfigError>(())
    /// ```
    pub fn with_domain(self, domain: Option<impl Into<String>>) -> Result<Self, CookieConfigError> {
        let domain = domain.map(Into::into);
        if let Some(d) = &domain {
            let ok = !d.is_empty()
                && d.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !ok {
                return Err(CookieConfigError::Domain(d.clone()));
            }
        }
        Ok(self.map(|s| s.cookie.domain = domain))
    }

    /// The `Secure` flag (default on). Turn it off only for plain-HTTP development.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = session_tower::SessionLayer::new(session_memory::MemoryStore::new()).with_secure(false);
    /// # let _ = layer;
    /// ```
    pub fn with_secure(self, secure: bool) -> Self {
        self.map(|s| s.cookie.secure = secure)
    }

    /// The `HttpOnly` flag (default on).
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = session_tower::SessionLayer::new(session_memory::MemoryStore::new()).with_http_only(true);
    /// # let _ = layer;
    /// ```
    pub fn with_http_only(self, http_only: bool) -> Self {
        self.map(|s| s.cookie.http_only = http_only)
    }

    /// The `SameSite` attribute (default `Lax`; `None` omits the attribute). `SameSite=None`
    /// forces `Secure`, as browsers require.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_tower::SameSite;
    /// let layer = session_tower::SessionLayer::new(session_memory::MemoryStore::new()).with_same_site(Some(SameSite::Strict));
    /// # let _ = layer;
    /// ```
    pub fn with_same_site(self, same_site: Option<SameSite>) -> Self {
        self.map(|s| s.cookie.same_site = same_site)
    }

    /// The `Partitioned` attribute (CHIPS; default off). Forces `Secure`.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = session_tower::SessionLayer::new(session_memory::MemoryStore::new()).with_partitioned(true);
    /// # let _ = layer;
    /// ```
    pub fn with_partitioned(self, partitioned: bool) -> Self {
        self.map(|s| s.cookie.partitioned = partitioned)
    }

    /// The status for a store outage ([`session_core::Error::is_unavailable`]), on save or
    /// surfaced by a handler as [`SessionError`](crate::SessionError). Default 503.
    ///
    /// # Examples
    ///
    /// ```
    /// use http::StatusCode;
    /// let layer = session_tower::SessionLayer::new(session_memory::MemoryStore::new())
    ///     .with_unavailable_status(StatusCode::INTERNAL_SERVER_ERROR);
    /// # let _ = layer;
    /// ```
    pub fn with_unavailable_status(self, status: StatusCode) -> Self {
        self.map(|s| s.errors.unavailable_status = status)
    }

    /// The status for a session over
    /// [`SessionConfig::with_max_data_len`](session_core::SessionConfig::with_max_data_len)
    /// ([`session_core::Error::TooLarge`]), on save or surfaced by a handler as
    /// [`SessionError`](crate::SessionError). Default 413, with a short text body; nothing
    /// is saved and no cookie is sent, so the stored session stays as it was. Use
    /// [`with_error_handler`](Self::with_error_handler) for another body.
    ///
    /// # Examples
    ///
    /// ```
    /// use http::StatusCode;
    /// let layer = session_tower::SessionLayer::new(session_memory::MemoryStore::new())
    ///     .with_too_large_status(StatusCode::UNPROCESSABLE_ENTITY);
    /// # let _ = layer;
    /// ```
    pub fn with_too_large_status(self, status: StatusCode) -> Self {
        self.map(|s| s.errors.too_large_status = status)
    }

    /// A custom response for session errors (on save, or surfaced by a handler as
    /// [`SessionError`](crate::SessionError)); replaces the default text responses
    /// (400 / 413 / 503 / 500) and the statuses set with
    /// [`with_unavailable_status`](Self::with_unavailable_status) and
    /// [`with_too_large_status`](Self::with_too_large_status). The body is text; set a
    /// `Content-Type` as needed.
    ///
    /// # Examples
    ///
    /// ```
    /// use http::{Response, StatusCode};
    /// let layer = session_tower::SessionLayer::new(session_memory::MemoryStore::new())
    ///     .with_error_handler(|err| {
    ///         let status = if err.is_unavailable() { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::BAD_REQUEST };
    ///         let mut res = Response::new("<h1>Please sign in again</h1>".to_owned());
    ///         *res.status_mut() = status;
    ///         res
    ///     });
    /// # let _ = layer;
    /// ```
    pub fn with_error_handler<F>(self, handler: F) -> Self
    where
        F: Fn(&session_core::Error) -> Response<String> + Send + Sync + 'static,
    {
        self.map(|s| s.errors.handler = Some(Arc::new(handler)))
    }

    /// Which device metadata to record (default none).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_tower::DeviceMetadata;
    /// let layer = session_tower::SessionLayer::new(session_memory::MemoryStore::new())
    ///     .with_device_metadata(DeviceMetadata::all());
    /// # let _ = layer;
    /// ```
    pub fn with_device_metadata(self, device: DeviceMetadata) -> Self {
        self.map(|s| s.device = device)
    }

    /// The cookie name in use.
    pub fn cookie_name(&self) -> &str {
        &self.shared.cookie.name
    }

    /// The store behind this layer.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.shared.store
    }
}

impl<S, T> Layer<S> for SessionLayer<T> {
    type Service = SessionService<S, T>;

    fn layer(&self, inner: S) -> Self::Service {
        SessionService {
            inner,
            shared: self.shared.clone(),
            _tag: PhantomData,
        }
    }
}

/// The [`Service`] made by [`SessionLayer`].
///
/// # Examples
///
/// ```
/// use tower_layer::Layer;
/// # #[derive(Clone)] struct MyService;
/// let service = session_tower::SessionLayer::new(session_memory::MemoryStore::new()).layer(MyService);
/// # let _ = service;
/// ```
pub struct SessionService<S, T = DefaultSession> {
    inner: S,
    shared: Arc<Shared>,
    _tag: PhantomData<fn() -> T>,
}

impl<S: Clone, T> Clone for SessionService<S, T> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
            _tag: PhantomData,
        }
    }
}

impl<S, T> std::fmt::Debug for SessionService<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("tag", &std::any::type_name::<T>())
            .field("cookie", &self.shared.cookie.name)
            .finish_non_exhaustive()
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;

impl<S, T, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S, T>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: From<String> + Send + 'static,
    T: Send + Sync + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqBody>) -> Self::Future {
        // The clone that was polled ready serves this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();

        Box::pin(async move {
            // The cookie is parsed here, once; the handle takes the parsed key.
            let cookie = shared.cookie.find(req.headers());
            let session = Session::with_key(
                shared.store.clone(),
                shared.config.clone(),
                cookie.key,
                cookie.sent,
            );
            if shared.device.is_enabled() {
                let (user_agent, ip) = shared.device.extract(&req);
                if user_agent.is_some() {
                    session.set_user_agent(user_agent).await;
                }
                if ip.is_some() {
                    session.set_ip(ip).await;
                }
            }
            req.extensions_mut()
                .insert(HttpSession::<T>::new(session.clone()));

            let res = inner.call(req).await?;
            Ok(finish(&shared, &session, res).await)
        })
    }
}

/// Applies the cookie rules to the handler's response.
async fn finish<B: From<String>>(
    shared: &Shared,
    session: &Session,
    mut res: Response<B>,
) -> Response<B> {
    let mut vary = session.is_accessed();
    let mut set_cookie = None;
    if let Some(HandlerSessionError(err)) = res.extensions_mut().remove::<HandlerSessionError>() {
        // A SessionError returned by the handler: rendered here, once, with this layer's
        // policy. The session is in an error state: nothing is saved, no cookie is sent.
        res = shared.errors.response(&err).map(B::from);
        vary = true;
    } else if res.status().is_server_error() {
        tracing::debug!(status = %res.status(), "server error response: session not saved");
    } else {
        // `finish` also returns the cookie an earlier save of this request made due (a
        // handler that called `save` itself).
        match session.finish().await {
            Ok(CookieAction::Set { key, max_age }) => {
                set_cookie = Some(shared.cookie.set(&key, max_age));
            }
            Ok(CookieAction::Remove) => set_cookie = Some(shared.cookie.remove()),
            Ok(CookieAction::Unchanged) => {}
            Err(err) => {
                res = shared.errors.response(&err).map(B::from);
                vary = true;
            }
        }
    }

    if let Some(value) = set_cookie {
        vary = true;
        match HeaderValue::try_from(value) {
            Ok(value) => {
                res.headers_mut().append(SET_COOKIE, value);
                patch_cache_control(res.headers_mut());
            }
            Err(err) => tracing::error!(%err, "session cookie is not a valid header value"),
        }
    }
    if vary {
        patch_vary(res.headers_mut());
    }
    res
}

/// A response that sets (or removes) the session cookie must not be stored by a shared
/// cache, or the cache would hand one visitor's session to the next: `Cache-Control:
/// private, no-store` unless the handler chose a `Cache-Control` itself, which is kept as
/// it is (never overridden, nothing appended).
fn patch_cache_control(headers: &mut HeaderMap) {
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
        return;
    }
    let shareable = !headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|v| v.to_str().ok())
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
}

/// Adds `Cookie` to the `Vary` header, merging with what is there.
fn patch_vary(headers: &mut HeaderMap) {
    let existing: Vec<String> = headers
        .get_all(VARY)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect();
    if existing
        .iter()
        .any(|v| v == "*" || v.eq_ignore_ascii_case("cookie"))
    {
        return;
    }
    let mut merged = existing.join(", ");
    if !merged.is_empty() {
        merged.push_str(", ");
    }
    merged.push_str("Cookie");
    if let Ok(value) = HeaderValue::try_from(merged) {
        headers.insert(VARY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_and_futures_are_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        fn send<T: Send>(_: &T) {}
        send_sync::<Session>();
        send_sync::<HttpSession>();
        send_sync::<SessionLayer>();
        send_sync::<SessionService<(), DefaultSession>>();
        #[derive(Clone)]
        struct Echo;
        impl Service<Request<String>> for Echo {
            type Response = Response<String>;
            type Error = std::convert::Infallible;
            type Future = std::future::Ready<Result<Response<String>, Self::Error>>;
            fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
                Poll::Ready(Ok(()))
            }
            fn call(&mut self, _: Request<String>) -> Self::Future {
                std::future::ready(Ok(Response::new(String::new())))
            }
        }
        let mut service = SessionLayer::new(session_memory::MemoryStore::new()).layer(Echo);
        send(&service.call(Request::new(String::new())));
    }

    #[test]
    fn vary_merges_and_is_not_duplicated() {
        let mut h = HeaderMap::new();
        h.append(VARY, HeaderValue::from_static("Accept-Encoding"));
        h.append(VARY, HeaderValue::from_static("Origin"));
        patch_vary(&mut h);
        assert_eq!(h.get_all(VARY).iter().count(), 1);
        assert_eq!(h[VARY], "Accept-Encoding, Origin, Cookie");
        patch_vary(&mut h);
        assert_eq!(h[VARY], "Accept-Encoding, Origin, Cookie");
        let mut star = HeaderMap::new();
        star.insert(VARY, HeaderValue::from_static("*"));
        patch_vary(&mut star);
        assert_eq!(star[VARY], "*");
    }

    #[test]
    fn cookie_lookup_takes_the_first_match_across_headers() {
        let c = CookieSettings::default();
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1; idx=2"));
        h.append(COOKIE, HeaderValue::from_static("id=first; id=second"));
        // Neither value is a well-formed key: sent, but no key.
        assert_eq!(
            c.find(&h),
            SentCookie {
                sent: true,
                key: None
            }
        );
        assert_eq!(
            c.find(&HeaderMap::new()),
            SentCookie {
                sent: false,
                key: None
            }
        );
        // A well-formed key is preferred over a stale malformed value.
        let key = SessionKey::generate();
        let mut h = HeaderMap::new();
        h.append(
            COOKIE,
            HeaderValue::try_from(format!(
                "id=junk; id={}; id={}",
                key.as_str(),
                SessionKey::generate().as_str()
            ))
            .expect("header"),
        );
        assert_eq!(c.find(&h).key, Some(key.clone()));
        // Two well-formed keys in two headers: the first one sent wins.
        let mut h = HeaderMap::new();
        h.append(COOKIE, HeaderValue::from_static("a=1"));
        h.append(
            COOKIE,
            HeaderValue::try_from(format!("id={}", key.as_str())).expect("header"),
        );
        h.append(
            COOKIE,
            HeaderValue::try_from(format!("id={}", SessionKey::generate().as_str()))
                .expect("header"),
        );
        assert_eq!(c.find(&h).key, Some(key));
    }

    #[test]
    fn removal_cookie_keeps_path_domain_and_flags() {
        let c = CookieSettings {
            path: "/app".into(),
            domain: Some("example.com".into()),
            ..CookieSettings::default()
        };
        let v = c.remove();
        for part in [
            "id=",
            "Path=/app",
            "Domain=example.com",
            "Secure",
            "Max-Age=0",
            "SameSite=Lax",
        ] {
            assert!(v.contains(part), "{v} lacks {part}");
        }
    }
}
