//! The HTTP benchmark's app on tower-sessions 0.14: the same routes and handlers as
//! `benches/http/src/lib.rs` (ours). tower-sessions has no atomic read-modify-write, so
//! `/update` is a `get` then an `insert`, as its users write it.

use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use tower_sessions::{Session, SessionManagerLayer, SessionStore};

/// The profile every login stores (200 bytes), as in ours.
pub const PROFILE: &str = "ppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppppp";

fn fail(_: tower_sessions::session::Error) -> StatusCode {
    StatusCode::INTERNAL_SERVER_ERROR
}

async fn login(session: Session) -> Result<&'static str, StatusCode> {
    session.cycle_id().await.map_err(fail)?;
    session.insert("user", "user-1").await.map_err(fail)?;
    session.insert("counter", 0u64).await.map_err(fail)?;
    session.insert("profile", PROFILE).await.map_err(fail)?;
    Ok("ok")
}

async fn read(session: Session) -> Result<String, StatusCode> {
    let n: Option<u64> = session.get("counter").await.map_err(fail)?;
    Ok(n.unwrap_or(0).to_string())
}

async fn write(session: Session) -> Result<String, StatusCode> {
    let n = session
        .get::<u64>("counter")
        .await
        .map_err(fail)?
        .unwrap_or(0)
        + 1;
    session.insert("counter", n).await.map_err(fail)?;
    Ok(n.to_string())
}

/// The app over `store`, with the layer's default settings.
pub fn app<S: SessionStore + Clone>(store: S) -> Router {
    Router::new()
        .route("/login", get(login))
        .route("/read", get(read))
        .route("/write", get(write))
        .route("/update", get(write))
        .layer(SessionManagerLayer::new(store))
}

/// The app for `backend` (`memory`, `sqlite`, `postgres`, `redis`) at `url` (a file path
/// for SQLite).
///
/// # Errors
///
/// The store's connection or migration error, as text.
pub async fn app_for(backend: &str, url: &str) -> Result<Router, String> {
    let err = |e: &dyn std::fmt::Display| format!("{backend}: {e}");
    Ok(match backend {
        "memory" => app(tower_sessions::MemoryStore::default()),
        "sqlite" => {
            let options: sqlx::sqlite::SqliteConnectOptions =
                format!("sqlite://{url}").parse().map_err(|e| err(&e))?;
            let options = options
                .create_if_missing(true)
                .journal_mode(sqlx::sqlite::SqliteJournalMode::Wal)
                .synchronous(sqlx::sqlite::SqliteSynchronous::Normal)
                .busy_timeout(std::time::Duration::from_secs(5));
            let pool = sqlx::sqlite::SqlitePoolOptions::new()
                .max_connections(16)
                .connect_with(options)
                .await
                .map_err(|e| err(&e))?;
            let store = tower_sessions_sqlx_store::SqliteStore::new(pool)
                .with_table_name("bench_http_peer")
                .map_err(|e| err(&e))?;
            store.migrate().await.map_err(|e| err(&e))?;
            app(store)
        }
        "postgres" => {
            let pool = sqlx::postgres::PgPoolOptions::new()
                .max_connections(16)
                .connect(url)
                .await
                .map_err(|e| err(&e))?;
            let store = tower_sessions_sqlx_store::PostgresStore::new(pool)
                .with_table_name("bench_http_peer")
                .map_err(|e| err(&e))?;
            store.migrate().await.map_err(|e| err(&e))?;
            app(store)
        }
        "redis" => {
            use fred::prelude::{ClientLike, Config};
            let config = Config::from_url(url).map_err(|e| err(&e))?;
            let pool = fred::prelude::Builder::from_config(config)
                .build_pool(16)
                .map_err(|e| err(&e))?;
            pool.init().await.map_err(|e| err(&e))?;
            app(tower_sessions_redis_store::RedisStore::new(pool))
        }
        other => return Err(format!("unknown backend {other:?}")),
    })
}
