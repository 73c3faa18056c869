//! Serves the benchmark app on actix-session: `peer-actix-server BACKEND URL` (`redis URL`
//! or `cookie`) listens on 127.0.0.1 (a free port) and prints `listening ADDR` on its first
//! line, as ours (`bench-http-actix-server`) does, with the same server settings
//! (actix-web's default workers, signals left to their default action).

use std::io::Write;

use actix_web::cookie::Key;
use actix_web::{App, HttpServer};

fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "cookie".to_owned());
    let url = args.next().unwrap_or_default();
    actix_web::rt::System::new().block_on(async move {
        let store = session_bench_http_peer_actix::store(&backend, &url).await?;
        let routes = session_bench_http_peer_actix::routes(store, Key::generate());
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
