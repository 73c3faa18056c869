//! The HTTP benchmark's app on our axum layer (`session-tower`), the same routes and
//! handlers as the tower-sessions app in `benches/peer/src/http_app.rs`:
//!
//! - `GET /login`: a new session with a user, a counter at 0 and a 200-byte profile;
//! - `GET /read`: reads the counter (answers its value);
//! - `GET /write`: reads the counter and writes it plus one (answers the new value);
//! - `GET /update`: adds one to the counter with the handle's atomic `update` (the hot
//!   session scenario: many connections on one session).
//!
//! The same app on our actix-web middleware is in [`actix`] (served by
//! `bench-http-actix-server`).

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use session_core::SessionStore;
use session_tower::{HttpSession, SessionError, SessionLayer};

pub mod actix;

/// The profile every login stores (200 bytes), so a session's data is a realistic size.
pub const PROFILE: &str = "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp";

async fn login(session: HttpSession) -> Result<&'static str, SessionError> {
    session.login("user-1").await?;
    session.insert("counter", 0u64).await?;
    session.insert("profile", PROFILE).await?;
    Ok("ok")
}

async fn read(session: HttpSession) -> Result<String, SessionError> {
    Ok(session
        .get::<u64>("counter")
        .await?
        .unwrap_or(0)
        .to_string())
}

async fn write(session: HttpSession) -> Result<String, SessionError> {
    let n = session.get::<u64>("counter").await?.unwrap_or(0) + 1;
    session.insert("counter", n).await?;
    Ok(n.to_string())
}

async fn update(session: HttpSession) -> Result<String, SessionError> {
    let n = session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

/// The app over `store`, with the layer's default settings.
pub fn app(store: Arc<dyn SessionStore>) -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/update", get(update))
        .layer(SessionLayer::from_shared_store(store))
}

/// Our store for `backend` (`memory`, `sqlite`, `postgres`, `redis`) at `url` (a file
/// path for SQLite; unused for memory).
///
/// # Errors
///
/// The store's connection or migration error, as text.
pub async fn store(backend: &str, url: &str) -> Result<Arc<dyn SessionStore>, String> {
    store_for(backend, url, "ours").await
}

/// [`store`] with its own SQL table (`bench_http_TAG`) and Redis key prefix
/// (`bench-http-TAG:`), so two of our servers on one database (the axum and the actix one)
/// keep their sessions apart.
///
/// # Errors
///
/// The store's connection or migration error, as text.
pub async fn store_for(
    backend: &str,
    url: &str,
    tag: &str,
) -> Result<Arc<dyn SessionStore>, String> {
    Ok(match backend {
        "memory" => Arc::new(session_memory::MemoryStore::new()),
        "sqlite" | "postgres" => {
            let url = if backend == "sqlite" {
                format!("sqlite://{url}?mode=rwc")
            } else {
                url.to_owned()
            };
            let store = session_sql::SqlStore::builder()
                .table(format!("bench_http_{tag}"))
                .max_connections(16)
                .connect(&url)
                .await
                .map_err(|e| format!("{backend} store: {e}"))?;
            store
                .migrate()
                .await
                .map_err(|e| format!("{backend} migrate: {e}"))?;
            Arc::new(store)
        }
        "redis" => Arc::new(
            session_redis::RedisStore::builder()
                .key_prefix(format!("bench-http-{tag}:"))
                .connect(url)
                .await
                .map_err(|e| format!("redis store: {e}"))?,
        ),
        other => return Err(format!("unknown backend {other:?}")),
    })
}
