//! `cargo run -p session-actix-example`: the example app on http://127.0.0.1:3001 (`PORT`
//! to change the port). The cookie is sent without `Secure` (plain HTTP on localhost).
#![forbid(unsafe_code)]

use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer};
use session_core::SessionStore;

#[actix_web::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|e| format!("PORT={p:?} is not a port: {e}"))?,
        Err(_) => 3001,
    };
    let store: Arc<dyn SessionStore> = Arc::new(session_memory::MemoryStore::new());
    // Expired sessions are removed every ten minutes.
    let _cleanup = session_core::spawn_cleanup(store.clone(), Duration::from_secs(600));
    let routes = session_actix_example::routes(session_actix_example::sessions(store, false)?);
    let server =
        HttpServer::new(move || App::new().configure(routes.clone())).bind(("127.0.0.1", port))?;
    for addr in server.addrs() {
        println!("listening on http://{addr}");
    }
    server.run().await?;
    Ok(())
}
