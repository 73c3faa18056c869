//! Serves the benchmark app on our layer: `bench-http-server BACKEND URL` listens on
//! 127.0.0.1 (a free port) and prints `listening ADDR` on its first line.

use std::io::Write;

#[tokio::main]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let backend = args.next().unwrap_or_else(|| "memory".to_owned());
    let url = args.next().unwrap_or_default();
    let store = session_bench_http::store(&backend, &url).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening {addr}");
    std::io::stdout().flush().map_err(|e| e.to_string())?;
    axum::serve(listener, session_bench_http::app(store))
        .await
        .map_err(|e| e.to_string())
}
