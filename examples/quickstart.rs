//! Quickstart: the session lifecycle on the in-memory store, no server needed.
//!
//! Run it with `cargo run --example quickstart`.
//!
//! Each block below is what one HTTP request would do; the "cookie" is just the key string
//! carried from one request to the next.

use std::sync::Arc;
use std::time::Duration;

use session_kit::{CookieAction, Expiry, MemoryStore, Session, SessionConfig, SessionStore};

#[derive(serde::Serialize, serde::Deserialize, Debug)]
struct CartItem {
    sku: String,
    qty: u32,
}

fn cookie_of(action: &CookieAction) -> Option<String> {
    match action {
        CookieAction::Set { key, .. } => Some(key.as_str().to_owned()),
        _ => None,
    }
}

#[tokio::main]
async fn main() -> Result<(), session_kit::Error> {
    let store: Arc<dyn SessionStore> = Arc::new(MemoryStore::new());
    let config = Arc::new(
        SessionConfig::default()
            .with_idle_timeout(Duration::from_secs(30 * 60))
            .with_absolute_timeout(Some(Duration::from_secs(12 * 3600))),
    );

    // Request 1: an anonymous visitor puts something in the cart.
    let session = Session::new(store.clone(), config.clone(), None);
    session
        .insert(
            "cart",
            vec![CartItem {
                sku: "apple".into(),
                qty: 3,
            }],
        )
        .await?;
    let action = session.save().await?;
    let cookie = cookie_of(&action).expect("a new session sets the cookie");
    println!(
        "1. anonymous cart saved; cookie = {}… ({action:?})",
        &cookie[..4]
    );

    // Request 2: the cookie comes back; the session loads lazily on first use. A
    // read-modify-write goes through `update`: if another request on the same cookie saves
    // first, the closure runs again on its value, so no increment is lost (a plain
    // `insert` of the same key is last-writer-wins).
    let session = Session::new(store.clone(), config.clone(), Some(&cookie));
    let cart: Vec<CartItem> = session.get("cart").await?.unwrap_or_default();
    let views = session
        .update("page_views", |n: Option<u64>| n.unwrap_or(0) + 1)
        .await?;
    session.save().await?;
    println!("2. loaded cart: {cart:?}; page views: {views}");

    // Request 3: login. Django's rules: the same (or no) user before keeps the data under a
    // new key (against session fixation); another user before would get an empty session.
    // The key changes at `save`, and the old key is dead from then on.
    let session = Session::new(store.clone(), config.clone(), Some(&cookie));
    session.login("alice").await?;
    session.insert("csrf_token", "s3cr3t").await?;
    let action = session.save().await?;
    let logged_in = cookie_of(&action).expect("login sets a new cookie");
    assert_ne!(logged_in, cookie);
    let old_key = session_kit::SessionKey::parse(&cookie)?;
    println!(
        "3. logged in: new cookie {}…, old key still stored? {}",
        &logged_in[..4],
        store.exists(&old_key).await?
    );

    // Request 4: "remember me for one hour only" (a per-session expiry, Django-compatible).
    let session = Session::new(store.clone(), config.clone(), Some(&logged_in));
    session
        .set_expiry(Expiry::Idle(Duration::from_secs(3600)))
        .await?;
    if let CookieAction::Set { max_age, .. } = session.save().await? {
        println!(
            "4. expiry set: cookie Max-Age = {max_age:?}, expires at {}",
            session.expiry_date().await?
        );
    }

    // Alice logs in from a second device.
    let phone = Session::new(store.clone(), config.clone(), None);
    phone.login("alice").await?;
    phone.set_user_agent(Some("Phone/1.0")).await;
    let phone_cookie = cookie_of(&phone.save().await?).expect("new session");

    // Request 5: the devices page, then "log out other devices".
    let devices = store.list_for_user("alice").await?;
    println!("5. alice has {} sessions:", devices.len());
    for d in &devices {
        println!(
            "   - {} created {} agent {:?}",
            d.key,
            d.created_at.format("%H:%M:%S"),
            d.user_agent
        );
    }
    let current = session_kit::SessionKey::parse(&logged_in)?;
    let revoked = store.delete_for_user("alice", Some(&current)).await?;
    println!("   logged out {revoked} other device(s)");
    let phone = Session::new(store.clone(), config.clone(), Some(&phone_cookie));
    assert!(phone.user_id().await?.is_none());

    // Request 6: logout. The row is deleted and the cookie removed.
    let session = Session::new(store.clone(), config, Some(&logged_in));
    session.logout().await?;
    println!("6. logout: cookie action = {:?}", session.save().await?);
    assert!(!store.exists(&current).await?);
    Ok(())
}
