//! # session-conformance
//!
//! The conformance suite for [`SessionStore`] implementations. Every store in this
//! workspace runs it, and so can yours: one macro call in a test file generates one named
//! `#[test]` per contract case, so a failure names the contract it broke.
//!
//! ```no_run
//! // tests/conformance.rs of your store crate
//! # mod my_store { pub struct MyStore; impl MyStore { pub async fn connect() -> session_memory::MemoryStore { session_memory::MemoryStore::new() } } }
//! async fn make_store() -> impl session_core::SessionStore {
//!     // Called once per case. Give each call its own table / key prefix, so that cases
//!     // (which run in parallel) do not see each other's rows.
//!     my_store::MyStore::connect().await
//! }
//!
//! session_conformance::store_suite!(make_store);
//! # fn main() {}
//! ```
//!
//! Add `session-conformance` as a dev-dependency; the generated tests run their own
//! multi-threaded tokio runtime, so your crate needs no tokio test setup. To run several
//! suites from one file, put each call in its own `mod`.
//!
//! ## What it checks
//!
//! Every row of the store contract (see [`SessionStore`]): create/load round trips,
//! collisions, atomic concurrent creates, "expired counts as absent" in every operation and
//! at the boundary, compare-and-swap updates (conflict, not-found, no resurrection),
//! compare-and-delete (`delete_at_version`), idempotent delete, `delete_expired`, `touch`,
//! the user index, unicode and 1 MB payloads; then the [`Session`](session_core::Session)
//! handle's lifecycle on top of the store (new session, lazy load, never adopting a
//! client's key, `cycle_key`, `flush`, empty sessions, expiry kinds, corrupt data,
//! concurrent handles without lost updates, zero store calls for untouched sessions and
//! hostile cookies); and the races users hit at login, logout and revocation: a logout or
//! "log out other devices" during a login in flight (no live record under either key), a
//! write made during a login (carried into the new record), a save on the old key after
//! the rotation (refused), 64 concurrent `update` closures on one value (exactly 64), login
//! as another user (flushed).
//!
//! ## Capabilities
//!
//! A store without a user index returns `None` from
//! [`SessionStore::user_index`]; one that keeps no
//! device metadata or exact versions says so in [`Capabilities`](session_core::Capabilities).
//! The suite then checks that the shortcuts answer
//! [`StoreError::Unsupported`](session_core::StoreError::Unsupported) (or, for
//! `exact_versions`, the weaker fingerprint contract) and prints a line saying which
//! contract was not exercised; it never passes such a case silently.
//!
//! See [`cases`] for the list, each with the contract it checks.
#![forbid(unsafe_code)]

pub mod cases;
mod counting;

use std::future::Future;
use std::sync::Arc;

pub use cases::Suite;
pub use counting::{CountingStore, StoreCalls};
use session_core::{Codec, JsonCodec, SessionStore};

/// Runs one case against a fresh store from `factory` on a multi-threaded tokio runtime.
/// Used by [`store_suite!`]; call it directly to run a single case by hand.
///
/// # Panics
///
/// Panics (fails the test) when the case's assertions fail or the runtime cannot start.
///
/// # Examples
///
/// ```
/// session_conformance::run_case(
///     || async { session_memory::MemoryStore::new() },
///     session_conformance::cases::create_then_load_round_trips,
/// );
/// ```
pub fn run_case<F, Fut, S, C, CFut>(factory: F, case: C)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = S>,
    S: SessionStore,
    C: FnOnce(Suite) -> CFut,
    CFut: Future<Output = ()>,
{
    run_case_with_codec(factory, default_codec, case);
}

/// The codec the suite uses unless told otherwise: [`JsonCodec`].
///
/// # Examples
///
/// ```
/// let codec = session_conformance::default_codec();
/// assert!(codec.decode("j1:{}").is_ok());
/// ```
pub fn default_codec() -> Arc<dyn Codec> {
    Arc::new(JsonCodec)
}

/// Like [`run_case`], with the codec whose output the store will be given (for stores
/// whose column only accepts a particular format, such as a JSON column).
///
/// # Panics
///
/// Panics (fails the test) when the case's assertions fail or the runtime cannot start.
///
/// # Examples
///
/// ```
/// session_conformance::run_case_with_codec(
///     || async { session_memory::MemoryStore::new() },
///     session_conformance::default_codec,
///     session_conformance::cases::update_bumps_version,
/// );
/// ```
pub fn run_case_with_codec<F, Fut, S, K, C, CFut>(factory: F, codec: K, case: C)
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = S>,
    S: SessionStore,
    K: FnOnce() -> Arc<dyn Codec>,
    C: FnOnce(Suite) -> CFut,
    CFut: Future<Output = ()>,
{
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("conformance: could not start a tokio runtime");
    let codec = codec();
    runtime.block_on(async move {
        let store: Arc<dyn SessionStore> = Arc::new(factory().await);
        case(Suite::new(store, codec)).await;
    });
}

/// Generates one `#[test]` per conformance case, each calling `$factory().await` for a fresh
/// store. `$factory` is a path to an `async fn() -> impl SessionStore` (or any function
/// returning a future of a store). With `codec = path`, the store is given that codec's
/// output (a function returning `Arc<dyn Codec>`) instead of [`JsonCodec`]'s.
///
/// # Examples
///
/// ```no_run
/// async fn make_store() -> session_memory::MemoryStore {
///     session_memory::MemoryStore::new()
/// }
/// session_conformance::store_suite!(make_store);
/// # fn main() {}
/// ```
#[macro_export]
macro_rules! store_suite {
    ($factory:path) => {
        $crate::store_suite!($factory, codec = $crate::default_codec);
    };
    ($factory:path, codec = $codec:path) => {
        $crate::__store_suite_cases! { $factory, $codec;
            // store contract
            create_then_load_round_trips,
            load_missing_is_none,
            create_live_key_is_key_exists,
            create_collision_keeps_original,
            create_over_expired_row_succeeds,
            concurrent_creates_exactly_one_wins,
            created_already_expired_is_absent,
            load_expired_is_none,
            exists_live_and_missing,
            exists_expired_is_false,
            expiry_boundary_to_the_second,
            update_bumps_version,
            update_stale_version_is_conflict,
            update_conflict_leaves_record_unchanged,
            update_missing_is_not_found,
            update_after_delete_is_not_found_and_no_resurrection,
            update_expired_is_not_found_and_no_resurrection,
            update_can_move_expiry,
            delete_at_version_removes_only_that_version,
            delete_at_version_of_missing_or_expired_is_not_found,
            update_stores_every_field,
            concurrent_updates_same_version_one_wins,
            touch_extends_expiry_keeps_data_and_version,
            touch_missing_is_false,
            touch_expired_is_false_and_no_resurrection,
            delete_reports_removal,
            delete_missing_is_idempotent,
            delete_expired_counts_expired_rows,
            delete_expired_keeps_live_rows,
            delete_expired_on_empty_store_is_zero,
            list_for_user_returns_that_users_live_sessions,
            list_for_user_excludes_expired,
            list_for_user_unknown_user_is_empty,
            delete_for_user_removes_all,
            delete_for_user_except_keeps_one,
            delete_for_user_leaves_other_users,
            user_index_follows_delete,
            user_index_follows_user_change,
            unicode_payload_round_trips,
            one_megabyte_payload_round_trips,
            special_characters_round_trip,
            device_metadata_round_trips,
            many_sessions_are_independent,
            // the Session handle over the store
            handle_untouched_new_session_is_not_stored,
            handle_new_session_saved_and_loaded,
            handle_never_adopts_client_key,
            handle_update_keeps_key,
            handle_cycle_key_keeps_data_and_kills_old_key,
            handle_flush_deletes_and_removes_cookie,
            handle_empty_session_is_not_stored,
            handle_clear_keeps_key_and_saves_empty_map,
            handle_save_after_concurrent_delete_is_not_found,
            handle_corrupt_data_loads_empty_and_keeps_key,
            handle_expired_session_gets_new_key,
            handle_idle_expiry_reaches_store,
            handle_absolute_expiry_caps_idle,
            handle_browser_close_cookie_still_expires_row,
            handle_set_expiry_seconds_and_date,
            handle_read_touches_idle_session,
            handle_read_within_touch_interval_does_not_write,
            handle_64_concurrent_handles_different_keys_all_survive,
            handle_concurrent_handles_same_key_one_value_wins,
            handle_set_user_indexes_session,
            handle_too_large_is_an_error_and_writes_nothing,
            handle_untouched_session_makes_no_store_calls,
            handle_hostile_cookies_never_reach_the_store,
            // races at login, logout and revocation
            rotation_after_concurrent_logout_is_interrupted_and_leaves_nothing,
            rotation_after_revoke_others_is_interrupted_and_leaves_nothing,
            rotation_carries_a_write_made_meanwhile,
            save_on_old_key_after_rotation_is_interrupted,
            concurrent_update_closures_lose_no_increment,
            login_as_another_user_flushes,
            login_as_same_user_rotates_and_keeps_data,
        }
    };
}

/// Implementation detail of [`store_suite!`].
#[doc(hidden)]
#[macro_export]
macro_rules! __store_suite_cases {
    ($factory:path, $codec:path; $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() {
                $crate::run_case_with_codec($factory, $codec, $crate::cases::$case);
            }
        )*
    };
}
