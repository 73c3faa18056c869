#!/bin/sh
# Creates (if missing) a throwaway virtualenv with the real Django and psycopg, for the
# Django interop tests of session-signed / session-sql, and prints its python path.
#
#   PY=$(scripts/django-venv.sh)            # default dir: $SESSION_DJANGO_VENV or /tmp/session-django-venv
#   PY=$(scripts/django-venv.sh /some/dir)
#
# Installs from PyPI: django>=4.0 (the newest that supports this machine's Python),
# psycopg[binary] (PostgreSQL) and PyMySQL (MySQL/MariaDB, standing in for mysqlclient). Progress goes to stderr; stdout is only the interpreter path.
set -eu
DIR="${1:-${SESSION_DJANGO_VENV:-/tmp/session-django-venv}}"
PY="$DIR/bin/python"
if ! "$PY" -c "import django, psycopg, pymysql" >/dev/null 2>&1; then
    echo "django-venv: creating $DIR" >&2
    if ! python3 -m venv "$DIR" >&2; then
        # Debian's python3 needs the python3-venv package for `-m venv`.
        echo "django-venv: python3 -m venv failed; installing python3-venv" >&2
        rm -rf "$DIR"
        (apt-get install -y python3-venv >&2 || { apt-get update >&2 && apt-get install -y python3-venv >&2; })
        python3 -m venv "$DIR" >&2
    fi
    "$PY" -m pip install --quiet --disable-pip-version-check "django>=4.0" "psycopg[binary]" pymysql >&2
fi
"$PY" -c "import django, sys; sys.stderr.write('django-venv: Django %s\n' % django.get_version())"
echo "$PY"
