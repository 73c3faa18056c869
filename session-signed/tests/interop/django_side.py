"""The Django half of the session interop tests: the REAL Django db SessionStore against a
given database, driven by the Rust tests.

    PY=$(scripts/django-venv.sh)
    $PY django_side.py migrate DB_URL
    $PY django_side.py write   DB_URL OUT.json     # Django writes the standard sessions
    $PY django_side.py read    DB_URL KEY...       # Django loads sessions (JSON on stdout)
    $PY django_side.py update  DB_URL KEY JSON     # Django loads, merges JSON, saves
    $PY django_side.py delete  DB_URL KEY...       # Django deletes sessions
    $PY django_side.py decode  IN.json             # Django decodes session_data strings
    $PY django_side.py sign    IN.json             # Django signs JSON texts (compress=True)

DB_URL is `sqlite:///ABSOLUTE/PATH.db`, `postgres://USER:PASS@HOST:PORT/DB[?schema=NAME]`
(with `schema`, the schema is created if missing and used as the search_path, so each test
run gets its own `django_session` table) or `mysql://USER:PASS@HOST:PORT/DB[?database=NAME]`
(with `database`, that database is created if missing and used instead; MySQL goes through
PyMySQL standing in for mysqlclient, so no C build is needed). The table is created by
Django's own migrations.

Secrets: DJANGO_SECRET_KEY and DJANGO_SECRET_KEY_FALLBACKS (comma-separated) from the
environment, defaulting to the constants below, which the Rust tests use too. Output is
strict JSON on stdout; anything else goes to stderr. Exit status 0 on success.
"""

import datetime as dt
import json
import math
import os
import sys
import urllib.parse

import django
from django.conf import settings

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "django-insecure-interop-secret-key")
FALLBACKS = [
    s for s in os.environ.get("DJANGO_SECRET_KEY_FALLBACKS", "interop-old-secret-key").split(",") if s
]
DJANGO_SALT = "django.contrib.sessions.SessionStore"
COOKIE_AGE = 1209600


def database(url):
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parsed.path}, None
    if parsed.scheme in ("postgres", "postgresql"):
        query = urllib.parse.parse_qs(parsed.query)
        schema = query.get("schema", [None])[0]
        db = {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": parsed.path.lstrip("/") or "postgres",
            "USER": urllib.parse.unquote(parsed.username or ""),
            "PASSWORD": urllib.parse.unquote(parsed.password or ""),
            "HOST": parsed.hostname or "127.0.0.1",
            "PORT": str(parsed.port or 5432),
        }
        if schema:
            db["OPTIONS"] = {"options": "-c search_path=%s" % schema}
        return db, schema
    if parsed.scheme in ("mysql", "mariadb"):
        import pymysql

        try:
            import MySQLdb  # noqa: F401  (mysqlclient, if installed)
        except ImportError:
            pymysql.version_info = (2, 2, 1, "final", 0)  # Django checks mysqlclient's version
            pymysql.install_as_MySQLdb()
        query = urllib.parse.parse_qs(parsed.query)
        name = query.get("database", [parsed.path.lstrip("/")])[0]
        conn = dict(
            host=parsed.hostname or "127.0.0.1",
            port=parsed.port or 3306,
            user=urllib.parse.unquote(parsed.username or ""),
            password=urllib.parse.unquote(parsed.password or ""),
        )
        with pymysql.connect(**conn) as c, c.cursor() as cur:
            cur.execute("CREATE DATABASE IF NOT EXISTS `%s`" % name.replace("`", ""))
        db = {
            "ENGINE": "django.db.backends.mysql",
            "NAME": name,
            "USER": conn["user"],
            "PASSWORD": conn["password"],
            "HOST": conn["host"],
            "PORT": str(conn["port"]),
            "OPTIONS": {"charset": "utf8mb4"},
        }
        return db, None
    raise SystemExit("unsupported DB_URL scheme: %r" % parsed.scheme)


def setup(url):
    db, schema = database(url) if url else ({"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}, None)
    settings.configure(
        SECRET_KEY=SECRET_KEY,
        SECRET_KEY_FALLBACKS=FALLBACKS,
        INSTALLED_APPS=["django.contrib.sessions"],
        DATABASES={"default": db},
        USE_TZ=True,
        TIME_ZONE="UTC",
        SESSION_COOKIE_AGE=COOKIE_AGE,
    )
    django.setup()
    if schema:
        import psycopg

        conninfo = dict(db)
        with psycopg.connect(
            dbname=conninfo["NAME"], user=conninfo["USER"], password=conninfo["PASSWORD"],
            host=conninfo["HOST"], port=conninfo["PORT"], autocommit=True,
        ) as conn:
            conn.execute('CREATE SCHEMA IF NOT EXISTS "%s"' % schema.replace('"', ""))


def migrate():
    from django.core.management import call_command

    call_command("migrate", "sessions", verbosity=0, interactive=False)


def jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def describe(store):
    """What Django sees in a loaded SessionStore."""
    from django.contrib.sessions.models import Session

    data = store.load()
    key = store.session_key
    row = Session.objects.filter(session_key=key).first() if key else None
    out = {
        "exists": key is not None,
        "data": jsonable(data),
        "expiry_raw": jsonable(data.get("_session_expiry")),
        "browser_close": store.get_expire_at_browser_close(),
        "row_expire_date": row.expire_date.isoformat() if row else None,
    }
    return out


def cmd_write(out_path):
    """Writes the standard set of sessions with Django's own SessionStore; the Rust side must
    read each with equal data and expiry."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.core import signing

    absolute = dt.datetime(2030, 1, 15, 12, 30, 0, 123456, tzinfo=dt.timezone.utc)
    cases = {
        "simple": ({"user_id": 42, "cart": ["apple", "pear"], "theme": "dark"}, None),
        "unicode": ({"name": "Zo\u00eb", "emoji": "\U0001f389", "cjk": "\u65e5\u672c", "ctl": "a\tb\u007f"}, None),
        "nested": ({"auth": {"user": {"id": 7, "roles": ["admin"], "meta": {"x": None}}}, "f": [1.5, 1e16, -0.0]}, None),
        "large": ({"blob": "lorem ipsum dolor sit amet " * 200, "items": list(range(500))}, None),
        "expiry_int": ({"user_id": 1}, 3600),
        "expiry_zero": ({"user_id": 2}, 0),
        "expiry_iso": ({"user_id": 3}, absolute),
        "empty": ({}, None),
    }
    result = {}
    for name, (data, expiry) in cases.items():
        s = SessionStore()
        for k, v in data.items():
            s[k] = v
        if expiry is not None:
            s.set_expiry(expiry)
        if not data:
            s.create()  # Django writes encode({}) for a brand-new session
        s.save()
        row = Session.objects.get(session_key=s.session_key)
        result[name] = {
            "key": s.session_key,
            "session_data": row.session_data,
            "expire_date": row.expire_date.isoformat(),
            **describe(SessionStore(s.session_key)),
        }

    def raw_row(name, session_data, data):
        s = SessionStore()
        s.create()
        Session.objects.filter(session_key=s.session_key).update(session_data=session_data)
        row = Session.objects.get(session_key=s.session_key)
        result[name] = {
            "key": s.session_key,
            "session_data": session_data,
            "expire_date": row.expire_date.isoformat(),
            "expected": data,
            **describe(SessionStore(s.session_key)),
        }

    signed = {"user_id": 9, "via": "fallback"}
    raw_row("fallback_key", signing.dumps(signed, key=FALLBACKS[0], salt=DJANGO_SALT, compress=True), signed)
    good = SessionStore().encode({"user_id": 10, "is_admin": False})
    payload, ts, sig = good.split(":")
    tampered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + ":" + ts + ":" + sig
    raw_row("tampered", tampered, {})
    raw_row(
        "wrong_salt",
        signing.dumps({"user_id": 11}, salt="django.contrib.sessions.backends.signed_cookies", compress=True),
        {},
    )
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)


def cmd_read(keys):
    from django.contrib.sessions.backends.db import SessionStore

    json.dump({k: describe(SessionStore(k)) for k in keys}, sys.stdout)


def cmd_update(key, patch):
    from django.contrib.sessions.backends.db import SessionStore

    s = SessionStore(key)
    s.load()
    if s.session_key is None:
        raise SystemExit("no live session %s" % key[:4])
    for k, v in json.loads(patch).items():
        if v is None:
            s.pop(k, None)
        else:
            s[k] = v
    s.save()
    json.dump(describe(SessionStore(key)), sys.stdout)


def cmd_delete(keys):
    from django.contrib.sessions.backends.db import SessionStore

    for k in keys:
        SessionStore(k).delete()
    json.dump({"deleted": len(keys)}, sys.stdout)


def cmd_decode(in_path):
    """Decodes session_data strings with Django's SessionStore.decode (and classifies the
    failure through signing.loads), and reports the expiry Django derives from each."""
    from django.contrib.sessions.backends.db import SessionStore
    from django.core import signing

    with open(in_path) as f:
        items = json.load(f)
    out = []
    for data in items:
        try:
            signing.loads(data, salt=DJANGO_SALT, serializer=signing.JSONSerializer, max_age=None)
            outcome = "ok"
        except signing.BadSignature:
            outcome = "bad_signature"
        except Exception as exc:  # noqa: BLE001
            outcome = "error:" + type(exc).__name__
        s = SessionStore()
        s._session_cache = s.decode(data)
        exp = s._session_cache.get("_session_expiry")
        out.append(
            {
                "outcome": outcome,
                "data": jsonable(s._session_cache),
                "json": signing.JSONSerializer().dumps(s._session_cache).decode("latin-1"),
                "expiry_raw": jsonable(exp),
                "expiry_date": s.get_expiry_date().isoformat(),
                "expiry_age": s.get_expiry_age(),
                "browser_close": s.get_expire_at_browser_close(),
            }
        )
    json.dump(out, sys.stdout)


def cmd_sign(in_path):
    """Signs each JSON text of IN.json as the session store does (signing.dumps with
    compress=True), and reports what zlib.compress makes of its serialization."""
    import zlib

    from django.core import signing

    with open(in_path) as f:
        items = json.load(f)
    out = []
    for text in items:
        obj = json.loads(text)
        serialized = signing.JSONSerializer().dumps(obj)
        signed = signing.dumps(obj, salt=DJANGO_SALT, serializer=signing.JSONSerializer, compress=True)
        out.append(
            {
                "signed": signed,
                "json_len": len(serialized),
                "zlib_len": len(zlib.compress(serialized)),
                "compressed": signed.startswith("."),
            }
        )
    json.dump(out, sys.stdout)


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "decode":
        setup(None)
        return cmd_decode(args[0])
    if cmd == "sign":
        setup(None)
        return cmd_sign(args[0])
    setup(args[0])
    migrate()
    if cmd == "migrate":
        return None
    if cmd == "write":
        return cmd_write(args[1])
    if cmd == "read":
        return cmd_read(args[1:])
    if cmd == "update":
        return cmd_update(args[1], args[2])
    if cmd == "delete":
        return cmd_delete(args[1:])
    raise SystemExit("unknown command %r" % cmd)


if __name__ == "__main__":
    main(sys.argv)
