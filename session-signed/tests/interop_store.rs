//! `session_sql::InteropStore` (Django's and Plain ≤ 0.22's tables) with the signed codec:
//! the full conformance suite on SQLite (plain `cargo test`, no server), one fresh database
//! file per case.
//!
//! The suite runs with compression off: two of its cases (`one_megabyte_payload_round_trips`,
//! `handle_too_large_is_an_error_and_writes_nothing`) size the stored data with repetitive
//! strings, which zlib shrinks to a few bytes. Compressed data is covered by the Django
//! round trips in `django_live.rs` and the vectors.

use std::sync::Arc;

use session_core::{Codec, SessionKey};
use session_signed::{PlainJsonCodec, SignedCodec};
use session_sql::{InteropLayout, InteropStore};

fn temp_db() -> String {
    let path = std::env::temp_dir().join(format!(
        "session-signed-interop-{}-{}.sqlite3",
        std::process::id(),
        &SessionKey::generate().as_str()[..12]
    ));
    format!("sqlite://{}", path.display())
}

async fn store(layout: InteropLayout) -> InteropStore {
    let store = InteropStore::connect(&temp_db(), layout)
        .await
        .expect("open SQLite file");
    store.migrate().await.expect("migrate");
    store
}

fn django_codec() -> Arc<dyn Codec> {
    Arc::new(
        SignedCodec::django("conformance-secret")
            .expect("codec")
            .with_compression(false),
    )
}

fn plain_codec() -> Arc<dyn Codec> {
    Arc::new(
        SignedCodec::plain("conformance-secret")
            .expect("codec")
            .with_compression(false),
    )
}

mod sqlite_django {
    async fn make_store() -> session_sql::InteropStore {
        super::store(session_sql::InteropLayout::Django).await
    }
    use super::django_codec;
    session_conformance::store_suite!(make_store, codec = django_codec);
}

mod sqlite_plain_signed {
    async fn make_store() -> session_sql::InteropStore {
        super::store(session_sql::InteropLayout::PlainSigned).await
    }
    use super::plain_codec;
    session_conformance::store_suite!(make_store, codec = plain_codec);
}

fn plain_json_codec() -> Arc<dyn Codec> {
    Arc::new(PlainJsonCodec)
}

mod sqlite_plain_json {
    async fn make_store() -> session_sql::InteropStore {
        super::store(session_sql::InteropLayout::PlainJson).await
    }
    use super::plain_json_codec;
    session_conformance::store_suite!(make_store, codec = plain_json_codec);
}

/// The same suites on PostgreSQL, one table per case.
#[cfg(feature = "postgres-tests")]
mod postgres {
    use session_core::SessionKey;
    use session_sql::{InteropLayout, InteropStore, TableName};

    async fn pg_store(layout: InteropLayout) -> InteropStore {
        let url = std::env::var("SESSION_TEST_POSTGRES_URL").unwrap_or_else(|_| {
            panic!("SESSION_TEST_POSTGRES_URL is not set (feature postgres-tests needs the test PostgreSQL)")
        });
        let table = format!("interop_conf_{}", &SessionKey::generate().as_str()[..12]);
        let store = InteropStore::connect(&url, layout)
            .await
            .expect("connect to the test PostgreSQL")
            .with_table(TableName::new(table).expect("table name"));
        store.migrate().await.expect("migrate");
        store
    }

    mod django {
        async fn make_store() -> session_sql::InteropStore {
            super::pg_store(session_sql::InteropLayout::Django).await
        }
        use super::super::django_codec;
        session_conformance::store_suite!(make_store, codec = django_codec);
    }

    mod plain_signed {
        async fn make_store() -> session_sql::InteropStore {
            super::pg_store(session_sql::InteropLayout::PlainSigned).await
        }
        use super::super::plain_codec;
        session_conformance::store_suite!(make_store, codec = plain_codec);
    }

    mod plain_json {
        async fn make_store() -> session_sql::InteropStore {
            super::pg_store(session_sql::InteropLayout::PlainJson).await
        }
        use super::super::plain_json_codec;
        session_conformance::store_suite!(make_store, codec = plain_json_codec);
    }
}

/// The same suites on MySQL / MariaDB, one table per case.
#[cfg(feature = "mysql-tests")]
mod mysql {
    use session_core::SessionKey;
    use session_sql::{InteropLayout, InteropStore, TableName};

    async fn my_store(layout: InteropLayout) -> InteropStore {
        let url = std::env::var("SESSION_TEST_MYSQL_URL").unwrap_or_else(|_| {
            panic!("SESSION_TEST_MYSQL_URL is not set (feature mysql-tests needs the test MySQL/MariaDB)")
        });
        let table = format!("interop_conf_{}", &SessionKey::generate().as_str()[..12]);
        let store = InteropStore::connect(&url, layout)
            .await
            .expect("connect to the test MySQL")
            .with_table(TableName::new(table).expect("table name"));
        store.migrate().await.expect("migrate");
        store
    }

    mod django {
        async fn make_store() -> session_sql::InteropStore {
            super::my_store(session_sql::InteropLayout::Django).await
        }
        use super::super::django_codec;
        session_conformance::store_suite!(make_store, codec = django_codec);
    }

    mod plain_signed {
        async fn make_store() -> session_sql::InteropStore {
            super::my_store(session_sql::InteropLayout::PlainSigned).await
        }
        use super::super::plain_codec;
        session_conformance::store_suite!(make_store, codec = plain_codec);
    }

    mod plain_json {
        async fn make_store() -> session_sql::InteropStore {
            super::my_store(session_sql::InteropLayout::PlainJson).await
        }
        use super::super::plain_json_codec;
        session_conformance::store_suite!(make_store, codec = plain_json_codec);
    }
}
