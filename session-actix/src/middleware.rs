//! The actix-web middleware that gives every request a lazy [`Session`] and applies
//! Django's cookie rules to the response.

use std::future::{ready, Future, Ready};
use std::marker::PhantomData;
use std::net::IpAddr;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::http::header::{
    HeaderMap, HeaderName, HeaderValue, CACHE_CONTROL, SET_COOKIE, VARY,
};
use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpResponse};
use session_core::{Session, SessionConfig, SessionStore};
use session_http::{
    cache_control, vary_with_cookie, CacheControl, CookieConfigError, CookieSettings,
    DeviceMetadata, Finish, RequestHead, Rules, SameSite,
};

use crate::error::{render, ErrorHandler, SessionError};
use crate::{ActixSession, DefaultSession, LoginRejection};

struct Shared {
    rules: Rules,
    handler: Option<ErrorHandler>,
}

/// An actix-web middleware ([`Transform`]) that gives each request a lazy [`Session`]
/// (extract it as [`ActixSession<T>`](ActixSession)) and writes the session cookie on the
/// response, with the same rules as `session-tower`'s `SessionLayer` (both use
/// `session-http`):
///
/// - no store call unless the handler touches the session;
/// - the session is saved only when modified (or on every request with
///   [`SessionConfig::with_save_every_request`], which uses a cheap touch);
/// - `Set-Cookie` carries the key with a Max-Age equal to the stored expiry (none for a
///   browser-close session), and `Vary: Cookie` is merged whenever the session was used;
/// - a request that sent a cookie and leaves with an empty session (after `logout`, or a
///   cookie naming no session) gets a removal cookie with the same path, domain and flags;
/// - a response that sets or removes the cookie gets `Cache-Control: private, no-store`,
///   unless the handler set a `Cache-Control` itself (kept as it is);
/// - a 5xx response saves nothing and sets no cookie;
/// - a session deleted or revoked while the request ran answers **400**, a session over
///   the size limit **413**, a store outage **503** with `Retry-After` (both
///   configurable), other session errors 500; the same for a [`SessionError`] returned by
///   the handler (then nothing is saved);
/// - a handler that called [`Session::save`] itself still gets its cookie.
///
/// Build it with [`SessionMiddleware::new`] (defaults) or [`SessionMiddleware::builder`];
/// the builder checks the cookie settings once, in
/// [`build`](SessionMiddlewareBuilder::build).
///
/// # Examples
///
/// ```
/// use actix_web::{web, App};
/// use session_kit::actix::{ActixSession, SessionError, SessionMiddleware};
///
/// async fn counter(session: ActixSession) -> Result<String, SessionError> {
///     let n = session.update("n", |n: Option<u64>| n.unwrap_or(0) + 1).await?;
///     Ok(n.to_string())
/// }
///
/// # actix_web::rt::System::new().block_on(async {
/// let app = actix_web::test::init_service(
///     App::new()
///         .wrap(SessionMiddleware::builder(session_kit::MemoryStore::new()).with_secure(false).build()?)
///         .route("/", web::get().to(counter)),
/// )
/// .await;
/// let res = actix_web::test::call_service(&app, actix_web::test::TestRequest::get().uri("/").to_request()).await;
/// let set_cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap();
/// assert!(set_cookie.starts_with("id="));
/// assert_eq!(res.headers().get("cache-control").unwrap(), "private, no-store");
/// # Ok::<(), session_kit::actix::CookieConfigError>(())
/// # }).unwrap();
/// ```
pub struct SessionMiddleware<T = DefaultSession> {
    shared: Arc<Shared>,
    _tag: PhantomData<fn() -> T>,
}

impl<T> Clone for SessionMiddleware<T> {
    fn clone(&self) -> Self {
        Self {
            shared: self.shared.clone(),
            _tag: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for SessionMiddleware<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddleware")
            .field("tag", &std::any::type_name::<T>())
            .field("rules", &self.shared.rules)
            .field("custom_error_handler", &self.shared.handler.is_some())
            .finish()
    }
}

impl SessionMiddleware<DefaultSession> {
    /// A middleware over `store` with the default [`SessionConfig`] and cookie settings
    /// (name `id`, path `/`, `Secure`, `HttpOnly`, `SameSite=Lax`).
    ///
    /// # Examples
    ///
    /// ```
    /// let mw = session_kit::actix::SessionMiddleware::new(session_kit::MemoryStore::new());
    /// assert_eq!(mw.cookie_name(), "id");
    /// ```
    pub fn new(store: impl SessionStore) -> Self {
        Self::from_shared_store(Arc::new(store))
    }

    /// A middleware over a store that is already shared (with a cleanup task, a "your
    /// devices" page, another middleware).
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_kit::SessionStore;
    /// let store: Arc<dyn SessionStore> = Arc::new(session_kit::MemoryStore::new());
    /// let mw = session_kit::actix::SessionMiddleware::from_shared_store(store.clone());
    /// assert!(Arc::ptr_eq(mw.store(), &store));
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

    /// A builder over `store`, for the cookie settings, the session policy, the statuses
    /// and the device metadata.
    ///
    /// # Examples
    ///
    /// ```
    /// let mw = session_kit::actix::SessionMiddleware::builder(session_kit::MemoryStore::new())
    ///     .with_cookie_name("__Host-sid")
    ///     .build()?;
    /// assert_eq!(mw.cookie_name(), "__Host-sid");
    /// # Ok::<(), session_kit::actix::CookieConfigError>(())
    /// ```
    pub fn builder(store: impl SessionStore) -> SessionMiddlewareBuilder {
        SessionMiddlewareBuilder::new(Arc::new(store))
    }

    /// A builder over a store that is already shared.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::sync::Arc;
    /// use session_kit::SessionStore;
    /// let store: Arc<dyn SessionStore> = Arc::new(session_kit::MemoryStore::new());
    /// let mw = session_kit::actix::SessionMiddleware::builder_from_shared_store(store).build()?;
    /// # let _ = mw;
    /// # Ok::<(), session_kit::actix::CookieConfigError>(())
    /// ```
    pub fn builder_from_shared_store(store: Arc<dyn SessionStore>) -> SessionMiddlewareBuilder {
        SessionMiddlewareBuilder::new(store)
    }
}

impl<T> SessionMiddleware<T> {
    /// The cookie name in use.
    ///
    /// # Examples
    ///
    /// ```
    /// assert_eq!(session_kit::actix::SessionMiddleware::new(session_kit::MemoryStore::new()).cookie_name(), "id");
    /// ```
    pub fn cookie_name(&self) -> &str {
        self.shared.rules.cookie.name()
    }

    /// The store behind this middleware.
    ///
    /// # Examples
    ///
    /// ```
    /// let mw = session_kit::actix::SessionMiddleware::new(session_kit::MemoryStore::new());
    /// let store = mw.store().clone(); // for a cleanup task or a "your devices" page
    /// # let _ = store;
    /// ```
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.shared.rules.store
    }
}

/// The configuration of a [`SessionMiddleware`]: the same settings as `session-tower`'s
/// `SessionLayer`. The cookie settings are checked together in [`build`](Self::build), so
/// they can be given in any order.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// use actix_web::http::StatusCode;
/// use session_kit::actix::{DeviceMetadata, SameSite, SessionMiddleware};
/// use session_kit::SessionConfig;
///
/// let mw = SessionMiddleware::builder(session_kit::MemoryStore::new())
///     .with_config(SessionConfig::default().with_idle_timeout(Duration::from_secs(1800)))
///     .with_cookie_name("sid")
///     .with_path("/app")
///     .with_same_site(Some(SameSite::Strict))
///     .with_device_metadata(DeviceMetadata::all())
///     .with_unavailable_status(StatusCode::INTERNAL_SERVER_ERROR)
///     .build()?;
/// assert_eq!(mw.cookie_name(), "sid");
/// # Ok::<(), session_kit::actix::CookieConfigError>(())
/// ```
pub struct SessionMiddlewareBuilder<T = DefaultSession> {
    store: Arc<dyn SessionStore>,
    config: Arc<SessionConfig>,
    /// The flags; name, path and domain are applied (and checked) in `build`.
    cookie: CookieSettings,
    name: Option<String>,
    path: Option<String>,
    domain: Option<Option<String>>,
    statuses: session_http::ErrorPolicy,
    handler: Option<ErrorHandler>,
    device: DeviceMetadata,
    _tag: PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for SessionMiddlewareBuilder<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionMiddlewareBuilder")
            .field("tag", &std::any::type_name::<T>())
            .field("config", &self.config)
            .field("cookie", &self.cookie)
            .field("name", &self.name)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("statuses", &self.statuses)
            .field("custom_error_handler", &self.handler.is_some())
            .field("device", &self.device)
            .finish_non_exhaustive()
    }
}

impl SessionMiddlewareBuilder<DefaultSession> {
    fn new(store: Arc<dyn SessionStore>) -> Self {
        Self {
            store,
            config: Arc::new(SessionConfig::default()),
            cookie: CookieSettings::default(),
            name: None,
            path: None,
            domain: None,
            statuses: session_http::ErrorPolicy::default(),
            handler: None,
            device: DeviceMetadata::default(),
            _tag: PhantomData,
        }
    }
}

impl<T> SessionMiddlewareBuilder<T> {
    /// The same configuration under another tag, so that two middlewares (say a shop
    /// session and an admin session with different cookie names or paths) can both be
    /// extracted in one handler as `ActixSession` and `ActixSession<Admin>`.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::actix::{ActixSession, SessionMiddleware};
    /// struct Admin;
    /// let admin = SessionMiddleware::builder(session_kit::MemoryStore::new())
    ///     .with_cookie_name("admin_id")
    ///     .with_path("/admin")
    ///     .with_tag::<Admin>()
    ///     .build()?;
    /// async fn handler(_shop: ActixSession, _admin: ActixSession<Admin>) -> &'static str { "" }
    /// # let _ = admin;
    /// # Ok::<(), session_kit::actix::CookieConfigError>(())
    /// ```
    pub fn with_tag<U>(self) -> SessionMiddlewareBuilder<U> {
        SessionMiddlewareBuilder {
            store: self.store,
            config: self.config,
            cookie: self.cookie,
            name: self.name,
            path: self.path,
            domain: self.domain,
            statuses: self.statuses,
            handler: self.handler,
            device: self.device,
            _tag: PhantomData,
        }
    }

    /// The session policy (expiry, codec, always-save, limits).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::SessionConfig;
    /// let b = session_kit::actix::SessionMiddleware::builder(session_kit::MemoryStore::new())
    ///     .with_config(SessionConfig::default().with_save_every_request(true));
    /// # let _ = b;
    /// ```
    pub fn with_config(mut self, config: SessionConfig) -> Self {
        self.config = Arc::new(config);
        self
    }

    /// The cookie name (default `id`). Checked in [`build`](Self::build): it must be an
    /// HTTP token, and a `__Host-` name needs `Secure`, path `/` and no domain, a
    /// `__Secure-` name needs `Secure`.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::actix::{CookieConfigError, SessionMiddleware};
    /// let err = SessionMiddleware::builder(session_kit::MemoryStore::new())
    ///     .with_cookie_name("__Host-sid")
    ///     .with_domain(Some("example.com"))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(matches!(err, CookieConfigError::HostPrefix { .. }));
    /// ```
    pub fn with_cookie_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The cookie path (default `/`). Checked in [`build`](Self::build): it must start with
    /// `/` and have no `;` or control characters.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = session_kit::actix::SessionMiddleware::builder(session_kit::MemoryStore::new())
    ///     .with_path("app")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("path"));
    /// ```
    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }

    /// The cookie domain (default none: host-only). Checked in [`build`](Self::build):
    /// letters, digits, `-` and `.` only.
    ///
    /// # Examples
    ///
    /// ```
    /// let mw = session_kit::actix::SessionMiddleware::builder(session_kit::MemoryStore::new())
    ///     .with_domain(Some("example.com"))
    ///     .build()?;
    /// # let _ = mw;
    /// # Ok::<(), session_kit::actix::CookieConfigError>(())
    /// ```
    pub fn with_domain(mut self, domain: Option<impl Into<String>>) -> Self {
        self.domain = Some(domain.map(Into::into));
        self
    }

    /// The `Secure` flag (default on). Turn it off only for plain-HTTP development; with
    /// a `__Host-`/`__Secure-` name [`build`](Self::build) refuses it. `SameSite=None` and
    /// `Partitioned` force `Secure` on the cookie sent.
    ///
    /// # Examples
    ///
    /// ```
    /// let err = session_kit::actix::SessionMiddleware::builder(session_kit::MemoryStore::new())
    ///     .with_cookie_name("__Secure-id")
    ///     .with_secure(false)
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("__Secure- prefix needs Secure"));
    /// ```
    pub fn with_secure(mut self, secure: bool) -> Self {
        self.cookie = self.cookie.with_secure(secure);
        self
    }

    /// The `HttpOnly` flag (default on).
    ///
    /// # Examples
    ///
    /// ```
    /// let b = session_kit::actix::SessionMiddleware::builder(session_kit::MemoryStore::new()).with_http_only(true);
    /// # let _ = b;
    /// ```
    pub fn with_http_only(mut self, http_only: bool) -> Self {
        self.cookie = self.cookie.with_http_only(http_only);
        self
    }

    /// The `SameSite` attribute (default `Lax`; `None` omits the attribute).
    /// `SameSite=None` forces `Secure`, as browsers require.
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::actix::SameSite;
    /// let b = session_kit::actix::SessionMiddleware::builder(session_kit::MemoryStore::new())
    ///     .with_same_site(Some(SameSite::Strict));
    /// # let _ = b;
    /// ```
    pub fn with_same_site(mut self, same_site: Option<SameSite>) -> Self {
        self.cookie = self.cookie.with_same_site(same_site);
        self
    }

    /// The `Partitioned` attribute (CHIPS; default off). Forces `Secure`.
    ///
    /// # Examples
    ///
    /// ```
    /// let b = session_kit::actix::SessionMiddleware::builder(session_kit::MemoryStore::new()).with_partitioned(true);
    /// # let _ = b;
    /// ```
    pub fn with_partitioned(mut self, partitioned: bool) -> Self {
        self.cookie = self.cookie.with_partitioned(partitioned);
        self
    }

    /// Which device metadata to record (default none). actix-web always knows the peer
    /// address, so [`DeviceMetadata::all`] needs no other setup; behind a reverse proxy
    /// use [`IpSource::header`](crate::IpSource::header).
    ///
    /// # Examples
    ///
    /// ```
    /// use session_kit::actix::{DeviceMetadata, IpSource};
    /// let b = session_kit::actix::SessionMiddleware::builder(session_kit::MemoryStore::new())
    ///     .with_device_metadata(DeviceMetadata::all().with_ip(IpSource::header("x-real-ip")));
    /// # let _ = b;
    /// ```
    pub fn with_device_metadata(mut self, device: DeviceMetadata) -> Self {
        self.device = device;
        self
    }

    /// The status for a store outage ([`session_core::Error::is_unavailable`]), on save or
    /// surfaced by a handler as [`SessionError`]. Default 503 (with `Retry-After`).
    ///
    /// # Examples
    ///
    /// ```
    /// use actix_web::http::StatusCode;
    /// let b = session_kit::actix::SessionMiddleware::builder(session_kit::MemoryStore::new())
    ///     .with_unavailable_status(StatusCode::INTERNAL_SERVER_ERROR);
    /// # let _ = b;
    /// ```
    pub fn with_unavailable_status(mut self, status: StatusCode) -> Self {
        self.statuses.unavailable_status = status.as_u16();
        self
    }

    /// The status for a session over
    /// [`SessionConfig::with_max_data_len`](session_core::SessionConfig::with_max_data_len),
    /// on save or surfaced by a handler as [`SessionError`]. Default 413, with a short text
    /// body; nothing is saved and no cookie is sent.
    ///
    /// # Examples
    ///
    /// ```
    /// use actix_web::http::StatusCode;
    /// let b = session_kit::actix::SessionMiddleware::builder(session_kit::MemoryStore::new())
    ///     .with_too_large_status(StatusCode::UNPROCESSABLE_ENTITY);
    /// # let _ = b;
    /// ```
    pub fn with_too_large_status(mut self, status: StatusCode) -> Self {
        self.statuses.too_large_status = status.as_u16();
        self
    }

    /// A custom response for session errors (on save, or surfaced by a handler as
    /// [`SessionError`]); replaces the default text responses (400 / 413 / 503 / 500) and
    /// the statuses set with [`with_unavailable_status`](Self::with_unavailable_status)
    /// and [`with_too_large_status`](Self::with_too_large_status).
    ///
    /// # Examples
    ///
    /// ```
    /// use actix_web::HttpResponse;
    /// let b = session_kit::actix::SessionMiddleware::builder(session_kit::MemoryStore::new())
    ///     .with_error_handler(|err| {
    ///         if err.is_unavailable() {
    ///             HttpResponse::ServiceUnavailable().body("<h1>Back soon</h1>")
    ///         } else {
    ///             HttpResponse::BadRequest().body("<h1>Please sign in again</h1>")
    ///         }
    ///     });
    /// # let _ = b;
    /// ```
    pub fn with_error_handler<F>(mut self, handler: F) -> Self
    where
        F: Fn(&session_core::Error) -> HttpResponse + Send + Sync + 'static,
    {
        self.handler = Some(Arc::new(handler));
        self
    }

    /// The middleware, with every cookie setting checked together.
    ///
    /// # Errors
    ///
    /// [`CookieConfigError::Name`], [`Path`](CookieConfigError::Path) or
    /// [`Domain`](CookieConfigError::Domain) for a value that would make a malformed
    /// `Set-Cookie`; [`CookieConfigError::HostPrefix`] / [`CookieConfigError::SecurePrefix`]
    /// for a `__Host-`/`__Secure-` name without the attributes its prefix demands (browsers
    /// silently drop such cookies).
    ///
    /// # Examples
    ///
    /// ```
    /// let err = session_kit::actix::SessionMiddleware::builder(session_kit::MemoryStore::new())
    ///     .with_cookie_name("__Host-id")
    ///     .with_path("/app")
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("Path=/"), "{err}");
    /// ```
    pub fn build(self) -> Result<SessionMiddleware<T>, CookieConfigError> {
        let mut cookie = self.cookie;
        if let Some(path) = self.path {
            cookie = cookie.with_path(path)?;
        }
        if let Some(domain) = self.domain {
            cookie = cookie.with_domain(domain)?;
        }
        if let Some(name) = self.name {
            cookie = cookie.with_name(name)?;
        }
        cookie.validate()?;
        Ok(SessionMiddleware {
            shared: Arc::new(Shared {
                rules: Rules {
                    store: self.store,
                    config: self.config,
                    cookie,
                    errors: self.statuses,
                    device: self.device,
                },
                handler: self.handler,
            }),
            _tag: PhantomData,
        })
    }
}

impl<S, B, T> Transform<S, ServiceRequest> for SessionMiddleware<T>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    T: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionService<S, T>;
    type InitError = ();
    type Future = Ready<Result<Self::Transform, Self::InitError>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(SessionService {
            service: Rc::new(service),
            shared: self.shared.clone(),
            _tag: PhantomData,
        }))
    }
}

/// The [`Service`] made by [`SessionMiddleware`] around the app's service.
///
/// # Examples
///
/// ```
/// // Made by actix-web when the middleware is wrapped around an app or a scope:
/// let app = actix_web::App::new()
///     .wrap(session_kit::actix::SessionMiddleware::new(session_kit::MemoryStore::new()));
/// # let _ = app;
/// ```
pub struct SessionService<S, T = DefaultSession> {
    service: Rc<S>,
    shared: Arc<Shared>,
    _tag: PhantomData<fn() -> T>,
}

impl<S, T> std::fmt::Debug for SessionService<S, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionService")
            .field("tag", &std::any::type_name::<T>())
            .field("cookie", &self.shared.rules.cookie.name())
            .finish_non_exhaustive()
    }
}

type LocalBoxFuture<T> = Pin<Box<dyn Future<Output = T> + 'static>>;

impl<S, B, T> Service<ServiceRequest> for SessionService<S, T>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error> + 'static,
    B: MessageBody + 'static,
    T: 'static,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = LocalBoxFuture<Result<Self::Response, Self::Error>>;

    forward_ready!(service);

    fn call(&self, req: ServiceRequest) -> Self::Future {
        let service = Rc::clone(&self.service);
        let shared = self.shared.clone();
        Box::pin(async move {
            // The cookie is parsed here, once; the handle takes the parsed key.
            let start = shared.rules.start(&Head(&req));
            let session = start.await;
            req.extensions_mut()
                .insert(ActixSession::<T>::new(session.clone()));
            // Handler and extractor errors come back as responses (with the error
            // attached); an `Err` here is an inner middleware's failure: it is passed on
            // as it is, and the session is neither saved nor given a cookie.
            let res = service.call(req).await?.map_into_left_body();
            Ok(finish(&shared, &session, res).await)
        })
    }
}

/// A request as the shared rules see it.
struct Head<'a>(&'a ServiceRequest);

impl RequestHead for Head<'_> {
    fn header_values(&self, name: &str) -> Vec<&str> {
        self.0
            .headers()
            .get_all(name)
            .filter_map(|v| v.to_str().ok())
            .collect()
    }

    fn peer_ip(&self) -> Option<IpAddr> {
        self.0.peer_addr().map(|a| a.ip())
    }
}

/// Applies the cookie rules to the handler's response.
async fn finish<B>(
    shared: &Shared,
    session: &Session,
    mut res: ServiceResponse<EitherBody<B>>,
) -> ServiceResponse<EitherBody<B>> {
    let handler_error = res
        .response()
        .error()
        .and_then(session_error_of)
        .map(|e| render(&shared.rules.errors, shared.handler.as_ref(), e));
    let decided = if let Some(rendered) = handler_error {
        // A SessionError returned by the handler: rendered here, once, with this
        // middleware's policy. Nothing is saved, no cookie is sent.
        res = replace(res, rendered);
        Finish {
            vary: true,
            ..Finish::default()
        }
    } else {
        let mut decided = shared.rules.finish(session, res.status().as_u16()).await;
        if let Some(err) = decided.error.take() {
            let rendered = render(&shared.rules.errors, shared.handler.as_ref(), &err);
            res = replace(res, rendered);
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

/// The session error a handler (or an extractor) returned, if any.
fn session_error_of(err: &actix_web::Error) -> Option<&session_core::Error> {
    if let Some(err) = err.as_error::<SessionError>() {
        return Some(&err.0);
    }
    err.as_error::<LoginRejection>()
        .and_then(LoginRejection::session_error)
}

fn replace<B>(
    res: ServiceResponse<EitherBody<B>>,
    with: HttpResponse,
) -> ServiceResponse<EitherBody<B>> {
    let (req, _) = res.into_parts();
    ServiceResponse::new(req, with).map_into_right_body()
}

fn header_strs(headers: &HeaderMap, name: HeaderName) -> Vec<&str> {
    headers
        .get_all(name)
        .filter_map(|v| v.to_str().ok())
        .collect()
}

fn patch_cache_control(headers: &mut HeaderMap) {
    if let CacheControl::Insert(value) = cache_control(&header_strs(headers, CACHE_CONTROL)) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static(value));
    }
}

fn patch_vary(headers: &mut HeaderMap) {
    if let Some(merged) = vary_with_cookie(&header_strs(headers, VARY)) {
        if let Ok(value) = HeaderValue::try_from(merged) {
            headers.insert(VARY, value);
        }
    }
}
