//! The tower [`Layer`] and [`Service`] that give every request a lazy [`Session`] and apply
//! Django's cookie rules to the response.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{HeaderName, CACHE_CONTROL, SET_COOKIE, VARY};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use session_core::{Session, SessionConfig, SessionStore};
use session_http::{
    cache_control, vary_with_cookie, CacheControl, CookieSettings, Finish, Rules, SameSite,
};
use tower_layer::Layer;
use tower_service::Service;

use crate::device::{DeviceMetadata, Head};
use crate::error::{ErrorHandler, ErrorPolicy, HandlerSessionError};
use crate::{DefaultSession, HttpSession};

pub use session_http::CookieConfigError;

#[derive(Clone)]
struct Shared {
    /// Store, policy, cookie, statuses and device metadata: the rules shared with every
    /// other integration.
    rules: Rules,
    /// The custom error response, if any.
    handler: Option<ErrorHandler>,
}

impl Shared {
    fn errors(&self) -> ErrorPolicy {
        ErrorPolicy {
            statuses: self.rules.errors,
            handler: self.handler.clone(),
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
/// use session_kit::{MemoryStore, SessionConfig, SessionLayer};
///
/// let layer = SessionLayer::new(MemoryStore::new())
///     .with_config(SessionConfig::default().with_save_every_request(true))
///     .with_cookie_name("sid")?
///     .with_secure(false); // plain-HTTP development only
/// # let _ = layer;
/// # Ok::<(), session_kit::CookieConfigError>(())
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
            .field("config", &self.shared.rules.config)
            .field("cookie", &self.shared.rules.cookie)
            .field("errors", &self.shared.errors())
            .field("device", &self.shared.rules.device)
            .finish()
    }
}

impl SessionLayer<DefaultSession> {
    /// A layer over `store` with the default [`SessionConfig`] and cookie settings.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = session_kit::SessionLayer::new(session_kit::MemoryStore::new());
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
    /// use session_kit::SessionStore;
    /// let store: Arc<dyn SessionStore> = Arc::new(session_kit::MemoryStore::new());
    /// let layer = session_kit::SessionLayer::from_shared_store(store.clone());
    /// # let _ = layer;
    /// ```
    pub fn from_shared_store(store: Arc<dyn SessionStore>) -> Self {
        Self {
            shared: Arc::new(Shared {
                rules: Rules::from_shared_store(store),
                handler: None,
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

    fn try_map(
        mut self,
        f: impl FnOnce(CookieSettings) -> Result<CookieSettings, CookieConfigError>,
    ) -> Result<Self, CookieConfigError> {
        let shared = Arc::make_mut(&mut self.shared);
        shared.rules.cookie = f(shared.rules.cookie.clone())?;
        Ok(self)
    }

    /// The same layer under another tag, so that two layers (say a shop session and an
    /// admin session with different cookie names or paths) can both be extracted in one
    /// handler as `HttpSession` and `HttpSession<Admin>`.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::{HttpSession, SessionLayer};
    /// struct Admin;
    /// let admin = SessionLayer::new(session_kit::MemoryStore::new())
    ///     .with_cookie_name("admin_id")?
    ///     .with_path("/admin")?
    ///     .with_tag::<Admin>();
    /// async fn handler(_shop: HttpSession, _admin: HttpSession<Admin>) {}
    /// # let _ = admin;
    /// # Ok::<(), session_kit::CookieConfigError>(())
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
    /// use session_kit::SessionConfig;
    /// let layer = session_kit::SessionLayer::new(session_kit::MemoryStore::new())
    ///     .with_config(SessionConfig::default().with_idle_timeout(Duration::from_secs(1800)));
    /// # let _ = layer;
    /// ```
    pub fn with_config(self, config: SessionConfig) -> Self {
        self.map(|s| s.rules.config = Arc::new(config))
    }

    /// The cookie name (default `id`).
    ///
    /// # Errors
    ///
    /// [`CookieConfigError::Name`] unless `name` is a non-empty HTTP token;
    /// [`CookieConfigError::HostPrefix`] for a `__Host-` name with `Secure` off, a path
    /// other than `/` or a domain, and [`CookieConfigError::SecurePrefix`] for a
    /// `__Secure-` name with `Secure` off (browsers silently drop such cookies). The name,
    /// path and domain are checked against each other in whichever order they are set.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = session_kit::SessionLayer::new(session_kit::MemoryStore::new()).with_cookie_name("__Host-sid")?;
    /// assert_eq!(layer.cookie_name(), "__Host-sid");
    /// # Ok::<(), session_kit::CookieConfigError>(())
    /// ```
    pub fn with_cookie_name(self, name: impl Into<String>) -> Result<Self, CookieConfigError> {
        self.try_map(|c| c.with_name(name))
    }

    /// The cookie path (default `/`).
    ///
    /// # Errors
    ///
    /// [`CookieConfigError::Path`] unless it starts with `/` and has no `;` or control
    /// characters; [`CookieConfigError::HostPrefix`] for a path other than `/` with a
    /// `__Host-` cookie name.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = session_kit::SessionLayer::new(session_kit::MemoryStore::new()).with_path("/app")?;
    /// # let _ = layer;
    /// # Ok::<(), session_kit::CookieConfigError>(())
    /// ```
    pub fn with_path(self, path: impl Into<String>) -> Result<Self, CookieConfigError> {
        self.try_map(|c| c.with_path(path))
    }

    /// The cookie domain (default none: host-only).
    ///
    /// # Errors
    ///
    /// [`CookieConfigError::Domain`] for an empty value or one with characters other than
    /// letters, digits, `-` and `.`; [`CookieConfigError::HostPrefix`] for any domain
    /// with a `__Host-` cookie name.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = session_kit::SessionLayer::new(session_kit::MemoryStore::new()).with_domain(Some("example.com"))?;
    /// # let _ = layer;
    /// # Ok::<(), session_kit::CookieConfigError>(())
    /// ```
    pub fn with_domain(self, domain: Option<impl Into<String>>) -> Result<Self, CookieConfigError> {
        self.try_map(|c| c.with_domain(domain))
    }

    /// The `Secure` flag (default on). Turn it off only for plain-HTTP development.
    /// A `__Host-` or `__Secure-` cookie name keeps `Secure` on the cookie sent even
    /// then (set `with_secure(false)` before the name to get
    /// [`CookieConfigError::HostPrefix`] / [`CookieConfigError::SecurePrefix`] instead);
    /// so do `SameSite=None` and `Partitioned`.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = session_kit::SessionLayer::new(session_kit::MemoryStore::new()).with_secure(false);
    /// # let _ = layer;
    /// ```
    pub fn with_secure(self, secure: bool) -> Self {
        if !secure && session_http::CookiePrefix::of(self.cookie_name()).is_some() {
            tracing::warn!(
                cookie = self.cookie_name(),
                "Secure turned off for a prefixed cookie name: Secure is still sent, as the prefix requires"
            );
        }
        self.map(|s| s.rules.cookie = s.rules.cookie.clone().with_secure(secure))
    }

    /// The `HttpOnly` flag (default on).
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = session_kit::SessionLayer::new(session_kit::MemoryStore::new()).with_http_only(true);
    /// # let _ = layer;
    /// ```
    pub fn with_http_only(self, http_only: bool) -> Self {
        self.map(|s| s.rules.cookie = s.rules.cookie.clone().with_http_only(http_only))
    }

    /// The `SameSite` attribute (default `Lax`; `None` omits the attribute). `SameSite=None`
    /// forces `Secure`, as browsers require.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SameSite;
    /// let layer = session_kit::SessionLayer::new(session_kit::MemoryStore::new()).with_same_site(Some(SameSite::Strict));
    /// # let _ = layer;
    /// ```
    pub fn with_same_site(self, same_site: Option<SameSite>) -> Self {
        self.map(|s| s.rules.cookie = s.rules.cookie.clone().with_same_site(same_site))
    }

    /// The `Partitioned` attribute (CHIPS; default off). Forces `Secure`.
    ///
    /// # Examples
    ///
    /// ```
    /// let layer = session_kit::SessionLayer::new(session_kit::MemoryStore::new()).with_partitioned(true);
    /// # let _ = layer;
    /// ```
    pub fn with_partitioned(self, partitioned: bool) -> Self {
        self.map(|s| s.rules.cookie = s.rules.cookie.clone().with_partitioned(partitioned))
    }

    /// The status for a store outage ([`session_core::Error::is_unavailable`]), on save or
    /// surfaced by a handler as [`SessionError`](crate::SessionError). Default 503.
    ///
    /// # Examples
    ///
    /// ```
    /// use http::StatusCode;
    /// let layer = session_kit::SessionLayer::new(session_kit::MemoryStore::new())
    ///     .with_unavailable_status(StatusCode::INTERNAL_SERVER_ERROR);
    /// # let _ = layer;
    /// ```
    pub fn with_unavailable_status(self, status: StatusCode) -> Self {
        self.map(|s| s.rules.errors.unavailable_status = status.as_u16())
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
    /// let layer = session_kit::SessionLayer::new(session_kit::MemoryStore::new())
    ///     .with_too_large_status(StatusCode::UNPROCESSABLE_ENTITY);
    /// # let _ = layer;
    /// ```
    pub fn with_too_large_status(self, status: StatusCode) -> Self {
        self.map(|s| s.rules.errors.too_large_status = status.as_u16())
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
    /// let layer = session_kit::SessionLayer::new(session_kit::MemoryStore::new())
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
        self.map(|s| s.handler = Some(Arc::new(handler)))
    }

    /// Which device metadata to record (default none).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::DeviceMetadata;
    /// let layer = session_kit::SessionLayer::new(session_kit::MemoryStore::new())
    ///     .with_device_metadata(DeviceMetadata::all());
    /// # let _ = layer;
    /// ```
    pub fn with_device_metadata(self, device: DeviceMetadata) -> Self {
        self.map(|s| s.rules.device = device)
    }

    /// The cookie name in use.
    pub fn cookie_name(&self) -> &str {
        self.shared.rules.cookie.name()
    }

    /// The store behind this layer.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.shared.rules.store
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
/// let service = session_kit::SessionLayer::new(session_kit::MemoryStore::new()).layer(MyService);
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
            .field("cookie", &self.shared.rules.cookie.name())
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
            let start = shared.rules.start(&Head(&req));
            let session = start.await;
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
    let decided = if let Some(HandlerSessionError(err)) =
        res.extensions_mut().remove::<HandlerSessionError>()
    {
        // A SessionError returned by the handler: rendered here, once, with this layer's
        // policy. The session is in an error state: nothing is saved, no cookie is sent.
        res = shared.errors().response(&err).map(B::from);
        Finish {
            vary: true,
            ..Finish::default()
        }
    } else {
        let mut decided = shared.rules.finish(session, res.status().as_u16()).await;
        if let Some(err) = decided.error.take() {
            res = shared.errors().response(&err).map(B::from);
        }
        decided
    };

    if let Some(value) = decided.set_cookie {
        match HeaderValue::try_from(value) {
            Ok(value) => {
                res.headers_mut().append(SET_COOKIE, value);
                patch_cache_control(res.headers_mut());
            }
            Err(err) => tracing::error!(%err, "session cookie is not a valid header value"),
        }
    }
    if decided.vary {
        patch_vary(res.headers_mut());
    }
    res
}

fn header_strs(headers: &HeaderMap, name: HeaderName) -> Vec<&str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect()
}

/// `Cache-Control: private, no-store` unless the handler chose one
/// ([`session_http::cache_control`]).
fn patch_cache_control(headers: &mut HeaderMap) {
    if let CacheControl::Insert(value) = cache_control(&header_strs(headers, CACHE_CONTROL)) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(value));
    }
}

/// Adds `Cookie` to the `Vary` header, merging with what is there
/// ([`session_http::vary_with_cookie`]).
fn patch_vary(headers: &mut HeaderMap) {
    // No `Vary` from the handler (the usual case): `Cookie`, a static value; nothing to
    // collect, merge or allocate. The same as `vary_with_cookie(&[])`.
    if !headers.contains_key(VARY) {
        headers.insert(VARY, HeaderValue::from_static("Cookie"));
        return;
    }
    if let Some(merged) = vary_with_cookie(&header_strs(headers, VARY)) {
        if let Ok(value) = HeaderValue::try_from(merged) {
            headers.insert(VARY, value);
        }
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
        let mut none = HeaderMap::new();
        patch_vary(&mut none);
        assert_eq!(none.get_all(VARY).iter().count(), 1);
        assert_eq!(
            Some(none[VARY].to_str().unwrap_or_default()),
            vary_with_cookie(&[]).as_deref()
        );
        let mut star = HeaderMap::new();
        star.insert(VARY, HeaderValue::from_static("*"));
        patch_vary(&mut star);
        assert_eq!(star[VARY], "*");
    }
}
