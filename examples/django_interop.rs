//! Reading and writing the sessions of a Django project from Rust.
//!
//! ```text
//! DATABASE_URL=sqlite:///path/to/django/db.sqlite3 \
//! DJANGO_SECRET_KEY='django-insecure-...' \
//!     cargo run -p session-examples --example django_interop -- [SESSIONID]
//! ```
//!
//! `DATABASE_URL` is the Django project's database (`sqlite://…` or `postgres://…`);
//! `DJANGO_SECRET_KEY` its `SECRET_KEY`, and `DJANGO_SECRET_KEY_FALLBACKS` (comma-separated)
//! its `SECRET_KEY_FALLBACKS`. With a `sessionid` cookie value, the program shows what that
//! session holds (key names and the user id only) and counts a visit in it; Django sees the
//! change on its next request. Without one it creates a session and prints its key, to
//! paste into the browser's `sessionid` cookie. Without `DATABASE_URL` it runs on a scratch
//! SQLite file, creating Django's table itself.

use std::sync::Arc;

use session_core::{Session, SessionConfig, SessionStore};
use session_signed::SignedCodec;
use session_sql::{InteropLayout, InteropStore};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (url, scratch) = match std::env::var("DATABASE_URL") {
        Ok(url) => (url, false),
        Err(_) => {
            let path = std::env::temp_dir().join("django_interop_example.sqlite3");
            (format!("sqlite://{}", path.display()), true)
        }
    };
    let secret = std::env::var("DJANGO_SECRET_KEY")
        .unwrap_or_else(|_| "django-insecure-example-only".to_owned());
    let fallbacks: Vec<String> = std::env::var("DJANGO_SECRET_KEY_FALLBACKS")
        .map(|v| {
            v.split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();

    let codec = SignedCodec::django(&secret)?.with_fallbacks(&fallbacks)?;
    let store = InteropStore::connect(&url, InteropLayout::Django).await?;
    if scratch {
        store.migrate().await?;
        println!("no DATABASE_URL: using the scratch database {url}");
    }
    let store: Arc<dyn SessionStore> = Arc::new(store);
    // Django's SESSION_COOKIE_AGE default; touch only on save, as Django does.
    let config = Arc::new(
        SessionConfig::default()
            .with_codec(codec)
            .with_touch_interval(None),
    );

    let cookie = std::env::args().nth(1);
    let session = Session::new(store, config, cookie.as_deref());
    let data = session.data().await?;
    match session.key().await {
        Some(key) => {
            println!("session {key}: keys {:?}", data.keys().collect::<Vec<_>>());
            if let Some(user) = data.get("_auth_user_id") {
                println!("logged-in Django user id: {user}");
            }
        }
        None if cookie.is_some() => println!("no live session with that key: starting a new one"),
        None => println!("starting a new session"),
    }
    // Read-modify-write through `update`: re-run on the fresh value if a Django request
    // saved the session meanwhile, so no visit is lost.
    let visits = session
        .update("rust_visits", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    session.save().await?;
    let key = session
        .key()
        .await
        .ok_or("the session has no key after saving")?;
    println!(
        "saved: rust_visits = {visits}; expires {}; sessionid={}",
        session.expiry_date().await?,
        key.as_str()
    );
    Ok(())
}
