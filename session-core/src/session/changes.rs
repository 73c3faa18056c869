//! The change log: what one request did to its session, kept so it can be replayed on
//! fresher data when another request wrote the session meanwhile.

use std::sync::Arc;

use serde_json::Value;

use crate::codec::SessionMap;
use crate::{Error, Result};

/// A read-modify-write step: computes a key's new value from its current one (`None` when
/// absent). Re-run on the fresh value whenever the save is replayed.
pub(crate) type UpdateFn = Arc<dyn Fn(Option<&Value>) -> Result<Value> + Send + Sync>;

#[derive(Clone)]
enum Change {
    /// Last writer wins: the value is set whatever the fresh data holds.
    Set(String, Value),
    Remove(String),
    Clear,
    /// Read-modify-write: the closure runs again on the fresh value.
    Update(String, UpdateFn),
    SetUser(Option<String>),
}

impl Change {
    fn data_key(&self) -> Option<&str> {
        match self {
            Self::Set(k, _) | Self::Remove(k) | Self::Update(k, _) => Some(k),
            Self::Clear | Self::SetUser(_) => None,
        }
    }
}

impl std::fmt::Debug for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Values are the user's data: never print them.
        match self {
            Self::Set(k, _) => write!(f, "Set({k:?})"),
            Self::Remove(k) => write!(f, "Remove({k:?})"),
            Self::Clear => f.write_str("Clear"),
            Self::Update(k, _) => write!(f, "Update({k:?})"),
            Self::SetUser(u) => {
                write!(f, "SetUser({})", if u.is_some() { "<set>" } else { "None" })
            }
        }
    }
}

/// The request's changes since its last successful write, in order, reduced to what a
/// replay needs: a `set` or `remove` supersedes every earlier change of the same key, a
/// `clear` every earlier data change, a user change the earlier one. `update` steps are
/// kept in order, since each one reads what the one before wrote.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChangeLog {
    changes: Vec<Change>,
}

impl ChangeLog {
    pub(crate) fn reset(&mut self) {
        self.changes.clear();
    }

    fn supersede(&mut self, key: &str) {
        self.changes.retain(|c| c.data_key() != Some(key));
    }

    pub(crate) fn set(&mut self, key: &str, value: Value) {
        self.supersede(key);
        self.changes.push(Change::Set(key.to_owned(), value));
    }

    pub(crate) fn remove(&mut self, key: &str) {
        self.supersede(key);
        self.changes.push(Change::Remove(key.to_owned()));
    }

    pub(crate) fn clear(&mut self) {
        self.changes.retain(|c| matches!(c, Change::SetUser(_)));
        self.changes.push(Change::Clear);
    }

    pub(crate) fn update(&mut self, key: &str, step: UpdateFn) {
        self.changes.push(Change::Update(key.to_owned(), step));
    }

    pub(crate) fn set_user(&mut self, user_id: Option<String>) {
        self.changes.retain(|c| !matches!(c, Change::SetUser(_)));
        self.changes.push(Change::SetUser(user_id));
    }

    /// Applies the changes, in order, on `data` and `user_id` (fresh from the store).
    ///
    /// # Errors
    ///
    /// [`Error::Value`] when an `update` closure cannot read the fresh value.
    pub(crate) fn replay(&self, data: &mut SessionMap, user_id: &mut Option<String>) -> Result<()> {
        for change in &self.changes {
            match change {
                Change::Set(k, v) => {
                    data.insert(k.clone(), v.clone());
                }
                Change::Remove(k) => {
                    data.shift_remove(k);
                }
                Change::Clear => data.clear(),
                Change::Update(k, step) => {
                    let new = step(data.get(k))?;
                    data.insert(k.clone(), new);
                }
                Change::SetUser(u) => user_id.clone_from(u),
            }
        }
        Ok(())
    }
}

/// Wraps a typed closure as an [`UpdateFn`] over JSON values.
pub(crate) fn typed_step<T, F>(key: &str, f: F) -> UpdateFn
where
    T: serde::Serialize + serde::de::DeserializeOwned + 'static,
    F: Fn(Option<T>) -> T + Send + Sync + 'static,
{
    let key = key.to_owned();
    Arc::new(move |old: Option<&Value>| {
        let value_error = |source| Error::Value {
            key: key.clone(),
            source,
        };
        let old = old
            .filter(|v| !v.is_null())
            .map(|v| T::deserialize(v).map_err(value_error))
            .transpose()?;
        serde_json::to_value(f(old)).map_err(value_error)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(v: Value) -> SessionMap {
        match v {
            Value::Object(m) => m,
            _ => SessionMap::new(),
        }
    }

    fn incr() -> UpdateFn {
        typed_step("n", |n: Option<u64>| n.unwrap_or(0) + 1)
    }

    #[test]
    fn set_supersedes_earlier_changes_of_the_key() {
        let mut log = ChangeLog::default();
        log.set("a", json!(1));
        log.update("a", incr());
        log.set("a", json!(5));
        log.set("b", json!(2));
        assert_eq!(format!("{log:?}").matches("\"a\"").count(), 1);
        let mut data = map(json!({"a": 100, "c": 3}));
        let mut user = None;
        log.replay(&mut data, &mut user).expect("replay");
        assert_eq!(Value::Object(data), json!({"a": 5, "c": 3, "b": 2}));
    }

    #[test]
    fn updates_rerun_on_fresh_values_in_order() {
        let mut log = ChangeLog::default();
        log.update("n", incr());
        log.update("n", incr());
        for (fresh, want) in [
            (json!({}), 2),
            (json!({"n": 40}), 42),
            (json!({"n": null}), 2),
        ] {
            let mut data = map(fresh);
            log.replay(&mut data, &mut None).expect("replay");
            assert_eq!(data["n"], json!(want));
        }
    }

    #[test]
    fn clear_keeps_the_user_change_and_later_sets() {
        let mut log = ChangeLog::default();
        log.set("a", json!(1));
        log.set_user(Some("alice".into()));
        log.clear();
        log.set("b", json!(2));
        let mut data = map(json!({"x": 1}));
        let mut user = Some("bob".to_owned());
        log.replay(&mut data, &mut user).expect("replay");
        assert_eq!(Value::Object(data), json!({"b": 2}));
        assert_eq!(user.as_deref(), Some("alice"));
    }

    #[test]
    fn remove_and_user_changes_replay() {
        let mut log = ChangeLog::default();
        log.remove("a");
        log.set_user(Some("x".into()));
        log.set_user(None);
        let mut data = map(json!({"a": 1, "b": 2}));
        let mut user = Some("bob".to_owned());
        log.replay(&mut data, &mut user).expect("replay");
        assert_eq!(Value::Object(data), json!({"b": 2}));
        assert_eq!(user, None);
        log.reset();
        assert_eq!(format!("{log:?}"), "ChangeLog { changes: [] }");
    }

    #[test]
    fn an_update_over_a_foreign_value_is_a_value_error() {
        let mut log = ChangeLog::default();
        log.update("n", incr());
        let mut data = map(json!({"n": "not a number"}));
        let err = log.replay(&mut data, &mut None).expect_err("foreign value");
        assert!(
            matches!(err, Error::Value { ref key, .. } if key == "n"),
            "{err}"
        );
    }

    #[test]
    fn debug_never_shows_values() {
        let mut log = ChangeLog::default();
        log.set("card", json!("4111 1111 1111 1111"));
        log.set_user(Some("alice".into()));
        let shown = format!("{log:?}");
        assert!(
            !shown.contains("4111") && !shown.contains("alice"),
            "{shown}"
        );
    }
}
