//! Drives requests through the app in-process (no sockets), for instruction counts under
//! callgrind: `bench-http-calls read|write|login N`. One login first (its cookie is reused),
//! then `N` requests of the kind; run it with two values of `N` and divide the difference
//! of the instruction totals by the difference of `N`.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use tower::ServiceExt;

async fn call(
    app: &axum::Router,
    path: &str,
    cookie: Option<&str>,
) -> Result<Option<String>, String> {
    let mut req = Request::get(path);
    if let Some(cookie) = cookie {
        req = req.header(header::COOKIE, cookie);
    }
    let req = req.body(Body::empty()).map_err(|e| e.to_string())?;
    let resp = app.clone().oneshot(req).await.map_err(|e| e.to_string())?;
    if resp.status() != StatusCode::OK {
        return Err(format!("{path}: status {}", resp.status()));
    }
    let cookie = resp
        .headers()
        .get(header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(str::to_owned);
    axum::body::to_bytes(resp.into_body(), 1 << 16)
        .await
        .map_err(|e| e.to_string())?;
    Ok(cookie)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), String> {
    let mut args = std::env::args().skip(1);
    let kind = args.next().unwrap_or_else(|| "read".to_owned());
    let n: u64 = args.next().and_then(|v| v.parse().ok()).unwrap_or(1000);
    let store = session_bench_http::store("memory", "").await?;
    let app = session_bench_http::app(store);
    let cookie = call(&app, "/login", None)
        .await?
        .ok_or("login set no cookie")?;
    let path = match kind.as_str() {
        "read" => "/read",
        "write" => "/write",
        "login" => "/login",
        other => return Err(format!("unknown kind {other:?}")),
    };
    let cookie = (kind != "login").then_some(cookie.as_str());
    for _ in 0..n {
        call(&app, path, cookie).await?;
    }
    Ok(())
}
