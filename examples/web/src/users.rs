//! The demo's user table: optional passwords, and the session auth hash derived from them
//! (Django's `get_session_auth_hash`), so that a password change logs the user's other
//! sessions out on their next request.
//!
//! It lives in memory, per process: a password set through one process is known to that
//! process only. A user without a password (any name logs in) has the same hash in every
//! process, so two processes sharing one store agree on who is logged in, and a restart
//! keeps those logins. Passwords are stored as a salted SHA-256 here to keep the demo small; a real
//! application stores them with a password hash (argon2, scrypt, bcrypt).

use std::collections::HashMap;
use std::sync::Mutex;

use session_kit::{async_trait, AuthHashSource, StoreResult};
use sha2::{Digest, Sha256};

/// One user's password: a salt and the salted digest.
struct Password {
    salt: String,
    digest: String,
}

/// One user: the password, once set.
#[derive(Default)]
struct User {
    password: Option<Password>,
}

/// The secret the demo keys auth hashes with when none is given ([`Users::with_secret`]):
/// the same in every process, so that processes sharing a store agree.
pub const DEMO_SECRET: &str = "session-kit demo secret: set your own";

/// The user table (in memory), and the secret the auth hashes are keyed with.
pub struct Users {
    secret: String,
    users: Mutex<HashMap<String, User>>,
}

impl std::fmt::Debug for Users {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Neither the secret nor any password digest.
        f.debug_struct("Users").finish_non_exhaustive()
    }
}

impl Default for Users {
    fn default() -> Self {
        Self::new()
    }
}

/// Why a login was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRefused {
    /// The user has a password and this is not it.
    WrongPassword,
}

fn random_hex() -> String {
    let mut bytes = [0u8; 16];
    // The OS random source; a failure leaves zeros, which only weakens this demo's salt.
    if getrandom::fill(&mut bytes).is_err() {
        tracing::error!("no OS randomness for a salt");
    }
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for part in parts {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    hex(&h.finalize())
}

impl Users {
    /// An empty table keyed with [`DEMO_SECRET`].
    pub fn new() -> Self {
        Self::with_secret(DEMO_SECRET)
    }

    /// An empty table whose auth hashes are keyed with `secret` (give every process of one
    /// application the same one).
    pub fn with_secret(secret: impl Into<String>) -> Self {
        Self {
            secret: secret.into(),
            users: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, User>> {
        // A panic while holding the lock leaves the map usable.
        self.users
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The auth hash of a user's credential state: changes whenever the password does
    /// (Django hashes the stored password hash with the secret key the same way).
    /// Without a password the hash depends on the name and the secret only, so every
    /// process computes the same one.
    fn auth_hash_of(&self, name: &str, user: Option<&User>) -> String {
        match user.and_then(|u| u.password.as_ref()) {
            None => digest(&["session-auth-hash", &self.secret, name]),
            Some(p) => digest(&["session-auth-hash", &self.secret, name, &p.salt, &p.digest]),
        }
    }

    /// Checks a login: a user seen for the first time is created without a password (any
    /// name logs in, as before); a user with a password must give it. Returns the auth
    /// hash to log in with.
    ///
    /// # Errors
    ///
    /// [`LoginRefused::WrongPassword`].
    pub fn login(&self, name: &str, password: &str) -> Result<String, LoginRefused> {
        let mut users = self.lock();
        let user = users.entry(name.to_owned()).or_default();
        if let Some(stored) = &user.password {
            if stored.digest != digest(&[&stored.salt, password]) {
                return Err(LoginRefused::WrongPassword);
            }
        }
        Ok(self.auth_hash_of(name, Some(user)))
    }

    /// Sets `name`'s password (a known user; `None` for an unknown one) and returns the new
    /// auth hash, for [`Session::update_auth_hash`](session_kit::Session::update_auth_hash).
    pub fn set_password(&self, name: &str, password: &str) -> Option<String> {
        let mut users = self.lock();
        let user = users.get_mut(name)?;
        let salt = random_hex();
        let digest = digest(&[&salt, password]);
        user.password = Some(Password { salt, digest });
        Some(self.auth_hash_of(name, Some(user)))
    }

    /// Whether `name` has set a password.
    pub fn has_password(&self, name: &str) -> bool {
        self.lock().get(name).is_some_and(|u| u.password.is_some())
    }
}

/// The table as the sessions' auth hash source: the current hash of a user. A user this
/// process has not seen has no password here, so it gets the passwordless hash, which
/// every process agrees on.
pub struct Source(pub std::sync::Arc<Users>);

#[async_trait]
impl AuthHashSource for Source {
    async fn current_hash(&self, user_id: &str) -> StoreResult<Option<String>> {
        let users = self.0.lock();
        Ok(Some(self.0.auth_hash_of(user_id, users.get(user_id))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_changes_with_the_password_only() {
        let users = Users::new();
        let first = users.login("alice", "").expect("no password yet");
        assert_eq!(users.login("alice", "anything"), Ok(first.clone()));
        let changed = users.set_password("alice", "s3cret").expect("known user");
        assert_ne!(changed, first);
        assert_eq!(
            users.login("alice", "wrong"),
            Err(LoginRefused::WrongPassword)
        );
        assert_eq!(users.login("alice", "s3cret"), Ok(changed));
        assert!(users.set_password("nobody", "x").is_none());
    }

    #[test]
    fn two_tables_agree_on_users_without_a_password() {
        let (a, b) = (Users::new(), Users::new());
        assert_eq!(a.login("bob", ""), b.login("bob", "x"));
        assert_ne!(a.login("bob", ""), a.login("carol", ""));
        let other = Users::with_secret("another secret");
        assert_ne!(a.login("bob", ""), other.login("bob", ""));
    }
}
