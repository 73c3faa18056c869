//! `cargo run -p session-web-example`: the example app on http://127.0.0.1:3000
//! (`PORT` to change the port, `SESSION_STORE_URL` to change the store,
//! `TRUSTED_IP_HEADER=x-real-ip` behind a reverse proxy you trust,
//! `SESSION_AGE_SECONDS` for the session age: an idle timeout in whole seconds that every
//! save of the session restarts, Django's `SESSION_COOKIE_AGE`, default two weeks;
//! `SESSION_CLEANUP_SECONDS` for how often expired sessions are removed, default 600). `GET
//! /metrics` serves the session store's metrics in the Prometheus text format. A setting
//! that cannot be used stops the app before it listens, with a message and exit status 2.
#![forbid(unsafe_code)]

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use session_web_example::{
    app, metrics_handle, parse_cleanup_interval, parse_session_age, spawn_metrics_upkeep,
    AppOptions, CLEANUP_EVERY_ENV, DEFAULT_CLEANUP_EVERY, DEFAULT_STORE_URL, METRICS_UPKEEP_EVERY,
    SESSION_AGE_ENV,
};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info,session_tower=debug")),
        )
        .init();
    let options = match settings() {
        Ok(options) => options,
        Err(e) => {
            eprintln!("web: {e}");
            return ExitCode::from(2);
        }
    };
    match serve(options).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("web: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The settings from the environment: port, store URL, app options.
struct Settings {
    port: u16,
    url: String,
    cleanup_every: Duration,
    options: AppOptions,
}

fn settings() -> Result<Settings, String> {
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
    let session_age = match std::env::var(SESSION_AGE_ENV) {
        Ok(v) => Some(parse_session_age(&v).map_err(|e| format!("{SESSION_AGE_ENV}: {e}"))?),
        Err(std::env::VarError::NotPresent) => None,
        Err(std::env::VarError::NotUnicode(v)) => {
            return Err(format!("{SESSION_AGE_ENV}={v:?} is not UTF-8"));
        }
    };
    let cleanup_every = match std::env::var(CLEANUP_EVERY_ENV) {
        Ok(v) => parse_cleanup_interval(&v).map_err(|e| format!("{CLEANUP_EVERY_ENV}: {e}"))?,
        Err(std::env::VarError::NotPresent) => DEFAULT_CLEANUP_EVERY,
        Err(std::env::VarError::NotUnicode(v)) => {
            return Err(format!("{CLEANUP_EVERY_ENV}={v:?} is not UTF-8"));
        }
    };
    let options = AppOptions {
        trusted_ip_header,
        metrics: Some(metrics_handle()?),
        session_age,
        ..AppOptions::default()
    };
    Ok(Settings {
        port,
        url,
        cleanup_every,
        options,
    })
}

async fn serve(s: Settings) -> Result<(), Box<dyn std::error::Error>> {
    // Opens the store and creates the SQL table when missing.
    let store = session_kit::connect(&s.url).await?;
    let _cleanup = session_kit::spawn_cleanup(store.clone(), s.cleanup_every);
    let _upkeep = s
        .options
        .metrics
        .clone()
        .map(|handle| spawn_metrics_upkeep(handle, METRICS_UPKEEP_EVERY));
    let listener =
        tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], s.port))).await?;
    tracing::info!(
        store = s.url.split(':').next().unwrap_or("?"),
        session_age_secs = s.options.session_age.map(|a| a.as_secs()),
        "listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(
        listener,
        app(store, &s.options).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
