//! The `.sql` files in `session-sql/sql/` are exactly what `schema_sql` produces for the
//! default tables (run with `SESSION_SQL_BLESS=1` to rewrite them after a DDL change).
//! Each dialect is checked when its feature is enabled (all of them with
//! `--all-features`).

use session_sql::{Dialect, InteropLayout, InteropStore, SqlStore, TableName};

fn check(dialect: Dialect, dir: &str) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("sql")
        .join(dir);
    let native = TableName::new(session_sql::DEFAULT_TABLE_NAME).expect("default table");
    let mut files = vec![(
        "native.sql",
        SqlStore::schema_sql(dialect, &native).expect("native DDL"),
    )];
    for (name, layout, table) in [
        ("django.sql", InteropLayout::Django, "django_session"),
        (
            "plain_signed.sql",
            InteropLayout::PlainSigned,
            "plainsessions_session",
        ),
        (
            "plain_json.sql",
            InteropLayout::PlainJson,
            "plainsessions_session",
        ),
    ] {
        let table = TableName::new(table).expect("table");
        files.push((
            name,
            InteropStore::schema_sql(dialect, layout, &table).expect("interop DDL"),
        ));
    }
    for (name, text) in files {
        let path = root.join(name);
        assert!(
            text.contains("CREATE TABLE IF NOT EXISTS"),
            "{name}: {text}"
        );
        if std::env::var_os("SESSION_SQL_BLESS").is_some() {
            std::fs::create_dir_all(&root).expect("create sql dir");
            std::fs::write(&path, &text).expect("write");
        }
        let on_disk = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (SESSION_SQL_BLESS=1 writes it)", path.display()));
        assert_eq!(on_disk, text, "{} is out of date", path.display());
    }
}

#[cfg(feature = "sqlite")]
#[test]
fn sqlite_files_match() {
    check(Dialect::Sqlite, "sqlite");
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_files_match() {
    check(Dialect::Postgres, "postgres");
}

#[cfg(feature = "mysql")]
#[test]
fn mysql_files_match() {
    check(Dialect::MySql, "mysql");
}
