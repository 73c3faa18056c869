//! Serves the benchmark app on our actix-web middleware: `bench-http-actix-server BACKEND
//! URL` listens on 127.0.0.1 (a free port) and prints `listening ADDR` on its first line,
//! as `bench-http-server` (axum) does.
//!
//! actix-web's defaults: one worker (a single-threaded runtime) per core, as many as the
//! axum server's tokio threads; one store and one middleware shared by every worker, built
//! before the server starts. Signals are left to their default action, so `kill` ends the
//! process at once, like the axum server.

use std::io::Write;

use actix_web::{App, HttpServer};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "memory".to_owned());
    let url = args.next().unwrap_or_default();
    actix_web::rt::System::new().block_on(async move {
        let store = session_bench_http::store_for(&backend, &url, "ours_actix").await?;
        let routes = session_bench_http::actix::routes(store);
        let server = HttpServer::new(move || App::new().configure(routes.clone()))
            .disable_signals()
            .bind(("127.0.0.1", 0))
            .map_err(|e| e.to_string())?;
        let addr = *server.addrs().first().ok_or("bound to no address")?;
        println!("listening {addr}");
        std::io::stdout().flush().map_err(|e| e.to_string())?;
        server.run().await.map_err(|e| e.to_string())
    })
}
