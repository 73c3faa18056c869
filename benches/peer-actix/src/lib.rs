//! The HTTP benchmark's app on actix-session 0.11: the same routes and handlers as ours on
//! actix-web (`benches/http/src/actix.rs`). actix-session has no atomic read-modify-write,
//! so `/update` is a `get` then an `insert`, as its users write it.
//!
//! Stores: its Redis store (`RedisSessionStore`, one multiplexed connection, as
//! `RedisSessionStore::new` builds it) and its cookie store (`CookieSessionStore`: the
//! whole session state is in the cookie, encrypted; nothing is stored on the server).
//! actix-session has no in-memory or SQL store.

use actix_session::storage::{CookieSessionStore, RedisSessionStore, SessionStore};
use actix_session::{Session, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::web;

/// The profile every login stores (200 bytes), as in ours.
pub const PROFILE: &str = "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp";

async fn login(session: Session) -> actix_web::Result<&'static str> {
    // A new key (actix-session's answer to session fixation), then the data.
    session.renew();
    session.insert("user", "user-1")?;
    session.insert("counter", 0u64)?;
    session.insert("profile", PROFILE)?;
    Ok("ok")
}

async fn read(session: Session) -> actix_web::Result<String> {
    Ok(session.get::<u64>("counter")?.unwrap_or(0).to_string())
}

async fn write(session: Session) -> actix_web::Result<String> {
    let n = session.get::<u64>("counter")?.unwrap_or(0) + 1;
    session.insert("counter", n)?;
    Ok(n.to_string())
}

fn register<S: SessionStore + 'static>(
    cfg: &mut web::ServiceConfig,
    sessions: SessionMiddleware<S>,
) {
    cfg.service(
        web::scope("")
            .wrap(sessions)
            .route("/login", web::get().to(login))
            .route("/read", web::get().to(read))
            .route("/write", web::get().to(write))
            .route("/update", web::get().to(write)),
    );
}

/// The store behind the app.
#[derive(Clone)]
pub enum Store {
    /// `RedisSessionStore` (shared by every worker: clones share its connection).
    Redis(RedisSessionStore),
    /// `CookieSessionStore`: the session state travels in the cookie.
    Cookie,
}

/// The store for `backend` (`redis` at `url`, or `cookie`).
///
/// # Errors
///
/// The connection error, or a backend actix-session has no store for, as text.
pub async fn store(backend: &str, url: &str) -> Result<Store, String> {
    match backend {
        "redis" => RedisSessionStore::new(url)
            .await
            .map(Store::Redis)
            .map_err(|e| format!("redis: {e}")),
        "cookie" => Ok(Store::Cookie),
        other => Err(format!(
            "actix-session has no {other:?} store (it has redis and cookie)"
        )),
    }
}

/// The app's routes over `store`, with the middleware's default settings (private,
/// i.e. encrypted, cookie content under `key`): `App::new().configure(routes(store, key))`
/// in every worker. actix-session's middleware is built per worker (it is not `Send`), as
/// its documentation does.
pub fn routes(store: Store, key: Key) -> impl Fn(&mut web::ServiceConfig) + Clone + Send {
    move |cfg: &mut web::ServiceConfig| match &store {
        Store::Redis(redis) => register(cfg, SessionMiddleware::new(redis.clone(), key.clone())),
        Store::Cookie => register(
            cfg,
            SessionMiddleware::new(CookieSessionStore::default(), key.clone()),
        ),
    }
}
