//! The HTTP benchmark's app on our actix-web middleware (`session-actix`): the same routes
//! and handlers as the axum app of this crate (and as the actix-session app in
//! `benches/peer-actix`), over the same stores ([`crate::store_for`]).

use std::sync::Arc;

use actix_web::web;
use session_actix::{ActixSession, SessionError, SessionMiddleware};
use session_core::SessionStore;

use crate::PROFILE;

async fn login(session: ActixSession) -> Result<&'static str, SessionError> {
    session.login("user-1").await?;
    session.insert("counter", 0u64).await?;
    session.insert("profile", PROFILE).await?;
    Ok("ok")
}

async fn read(session: ActixSession) -> Result<String, SessionError> {
    Ok(session
        .get::<u64>("counter")
        .await?
        .unwrap_or(0)
        .to_string())
}

async fn write(session: ActixSession) -> Result<String, SessionError> {
    let n = session.get::<u64>("counter").await?.unwrap_or(0) + 1;
    session.insert("counter", n).await?;
    Ok(n.to_string())
}

async fn update(session: ActixSession) -> Result<String, SessionError> {
    let n = session
        .update("counter", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    Ok(n.to_string())
}

/// The app's routes over `store`, wrapped in the middleware with its default settings:
/// `App::new().configure(routes(store))` in every worker (one store and one middleware
/// for all of them).
pub fn routes(store: Arc<dyn SessionStore>) -> impl Fn(&mut web::ServiceConfig) + Clone + Send {
    let sessions = SessionMiddleware::from_shared_store(store);
    move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope("")
                .wrap(sessions.clone())
                .route("/login", web::get().to(login))
                .route("/read", web::get().to(read))
                .route("/write", web::get().to(write))
                .route("/update", web::get().to(update)),
        );
    }
}
