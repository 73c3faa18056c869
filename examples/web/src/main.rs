//! `cargo run -p session-web-example`: the example app on http://127.0.0.1:3000
//! (`PORT` to change the port, `SESSION_STORE_URL` to change the store,
//! `TRUSTED_IP_HEADER=x-real-ip` behind a reverse proxy you trust). `GET /metrics` serves
//! the session store's metrics in the Prometheus text format.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::time::Duration;

use session_web_example::{app, metrics_handle, AppOptions, DEFAULT_STORE_URL};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,session_tower=debug")),
        )
        .init();
    let url = std::env::var("SESSION_STORE_URL").unwrap_or_else(|_| DEFAULT_STORE_URL.to_owned());
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => p
            .parse()
            .map_err(|e| format!("PORT={p:?} is not a port: {e}"))?,
        Err(_) => 3000,
    };
    let trusted_ip_header = match std::env::var("TRUSTED_IP_HEADER") {
        Ok(name) => Some(
            axum::http::HeaderName::try_from(name.as_str())
                .map_err(|e| format!("TRUSTED_IP_HEADER={name:?} is not a header name: {e}"))?,
        ),
        Err(_) => None,
    };
    let options = AppOptions {
        trusted_ip_header,
        metrics: Some(metrics_handle()?),
        ..AppOptions::default()
    };
    // Opens the store and creates the SQL table when missing.
    let store = session_kit::connect(&url).await?;
    let _cleanup = session_kit::spawn_cleanup(store.clone(), Duration::from_secs(600));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
    tracing::info!(
        store = url.split(':').next().unwrap_or("?"),
        "listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(
        listener,
        app(store, &options).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
