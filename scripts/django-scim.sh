#!/usr/bin/env bash
# Runs a second third-party SCIM 2.0 server for the interop tests: django-scim2 (PyPI) in the
# small Django project of scripts/django_scim/, on a PostgreSQL cluster of its own.
#
#   scripts/django-scim.sh start PORT [TOKEN]  install when needed, make a new PostgreSQL
#                                              cluster, migrate, start, wait until it answers,
#                                              print its base URL on stdout; PORT 0 lets the
#                                              server bind a free port itself
#   scripts/django-scim.sh stop PORT           stop the server started on PORT and its
#                                              cluster, and delete the cluster
#   scripts/django-scim.sh status PORT         print the base URL; exit 1 unless it answers
#   scripts/django-scim.sh install             only install (CI does this before the tests)
#
# TOKEN: the bearer token the server demands; none means it accepts anonymous requests.
# Each start has a new, empty database. PostgreSQL (initdb, pg_ctl on PATH) listens on a
# unix socket in the cluster's folder only, never on TCP. As root, the cluster runs as the
# user `postgres` (or `nobody` when there is none), since PostgreSQL refuses to run as root.
#
# Environment:
#   USERLOAD_PEERS         where the venv, the clusters and logs live
#                          (default ${TMPDIR:-/tmp}/userload-peers)
#   DJANGO_SCIM2_VERSION   the django-scim2 version to install (default 0.23.0)
set -euo pipefail

HOST=127.0.0.1
PEERS=${USERLOAD_PEERS:-${TMPDIR:-/tmp}/userload-peers}
VERSION=${DJANGO_SCIM2_VERSION:-0.23.0}
# Versions known to work with django-scim2 0.23.0.
DJANGO=5.2.20
PSYCOPG=3.3.9
VENV=$PEERS/django-scim2-$VERSION
RUNDIR=$PEERS/run
PROJECT=$(cd "$(dirname "$0")" && pwd)/django_scim

say() { printf 'django-scim: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }
usage() { sed -n '5,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

command=${1:-}
port=${2:-}
if [[ $command == install ]]; then
    port=1 # unused
fi
[[ -n $command && -n $port ]] || usage
[[ $port =~ ^[0-9]+$ ]] && ((port < 65536)) || fail "not a port number: $port"
((port > 0)) || [[ $command == start ]] || fail "port 0 is only for start"

# The folder of the server on PORT (its cluster, pid and log), recorded by start.
record_of() { printf '%s/django-%s.dir\n' "$RUNDIR" "$1"; }
base_url() { printf 'http://%s:%s/v2\n' "$HOST" "$1"; }

# Whether a SCIM server answers on PORT (its discovery endpoint needs no token).
answers() {
    local code
    code=$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 2 \
        "$(base_url "$1")/ServiceProviderConfig" 2>/dev/null) || return 1
    [[ $code == 200 ]]
}

ensure_installed() {
    local python=$VENV/bin/python
    local check='
import sys
from importlib.metadata import version
want = dict(zip(["django-scim2", "django", "psycopg"], sys.argv[1:]))
sys.exit(0 if all(version(p) == v for p, v in want.items()) else 1)
'
    if [[ -x $python ]] && "$python" -c "$check" "$VERSION" "$DJANGO" "$PSYCOPG" 2>/dev/null; then
        return 0
    fi
    command -v initdb >/dev/null && command -v pg_ctl >/dev/null ||
        fail "PostgreSQL's initdb and pg_ctl are not on PATH"
    mkdir -p "$PEERS"
    # Two starts at once (parallel test runs) must not build the same venv together.
    exec 9>"$PEERS/install.lock"
    command -v flock >/dev/null && flock 9
    if ! "$python" -c "$check" "$VERSION" "$DJANGO" "$PSYCOPG" 2>/dev/null; then
        say "installing django-scim2 $VERSION in $VENV"
        [[ -x $python ]] || python3 -m venv "$VENV"
        "$python" -m pip install --quiet --disable-pip-version-check \
            "django-scim2==$VERSION" "django==$DJANGO" "psycopg[binary]==$PSYCOPG" >&2 ||
            fail "pip could not install django-scim2==$VERSION"
    fi
    exec 9>&-
}

# Runs a PostgreSQL program as the unprivileged user that owns the clusters.
as_pg() {
    if (($(id -u) != 0)); then
        "$@"
    else
        (cd / && runuser -u "$PG_USER" -- "$@")
    fi
}
PG_USER=postgres
id -u "$PG_USER" >/dev/null 2>&1 || PG_USER=nobody

# Whether process PID still runs (a zombie left for a busy init to reap does not).
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [[ -n $state && $state != Z && $state != X ]]
}

# Stops what runs in the server folder DIR (Django, then PostgreSQL) and deletes it.
teardown() {
    local dir=$1 pid tries
    if [[ -r $dir/django.pid ]]; then
        pid=$(<"$dir/django.pid")
        if [[ $pid =~ ^[0-9]+$ ]] && grep -qa serve.py "/proc/$pid/cmdline" 2>/dev/null; then
            kill -TERM "$pid" 2>/dev/null || true
            for ((tries = 0; tries < 50; tries++)); do
                alive "$pid" || break
                sleep 0.1
            done
            ! alive "$pid" || kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    if [[ -f $dir/pg/PG_VERSION ]]; then
        as_pg pg_ctl -D "$dir/pg" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
}

start() {
    local token=${1:-}
    if ((port > 0)) && answers "$port"; then
        fail "port $port is already taken by another server"
    fi
    ensure_installed
    mkdir -p "$RUNDIR"
    local dir
    dir=$(mktemp -d "$RUNDIR/django.XXXXXX")
    chmod 755 "$dir"
    # Anything that fails from here on leaves nothing running.
    trap 'teardown "$dir"' EXIT
    mkdir "$dir/pg" "$dir/sock"
    (($(id -u) != 0)) || chown "$PG_USER" "$dir/pg" "$dir/sock"
    as_pg initdb -D "$dir/pg" -U userload --auth=trust --no-sync --no-locale -E UTF8 \
        >"$dir/initdb.log" 2>&1 || {
        tail -n 5 "$dir/initdb.log" >&2
        fail "initdb failed (as $PG_USER; log above)"
    }
    as_pg pg_ctl -D "$dir/pg" -l "$dir/sock/postgres.log" -w -t 30 \
        -o "-c listen_addresses= -k $dir/sock -p 5432 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null 2>&1 || {
        tail -n 5 "$dir/sock/postgres.log" >&2 || true
        fail "PostgreSQL did not start (log above)"
    }
    local port_file=$dir/port
    USERLOAD_PG_SOCKET=$dir/sock USERLOAD_PG_PORT=5432 USERLOAD_SCIM_TOKEN=$token \
        USERLOAD_SCIM_PORT_FILE=$port_file PYTHONDONTWRITEBYTECODE=1 \
        nohup "$VENV/bin/python" "$PROJECT/serve.py" "$HOST" "$port" \
        >"$dir/django.log" 2>&1 </dev/null &
    local pid=$!
    printf '%s\n' "$pid" >"$dir/django.pid"
    local tries bound
    for ((tries = 0; tries < 300; tries++)); do
        if [[ -s $port_file ]]; then
            bound=$(<"$port_file")
            if answers "$bound"; then
                printf '%s\n' "$dir" >"$(record_of "$bound")"
                trap - EXIT
                say "started pid $pid on port $bound (folder: $dir)"
                base_url "$bound"
                return 0
            fi
        fi
        if ! alive "$pid"; then
            tail -n 5 "$dir/django.log" >&2 || true
            fail "the server exited during start-up"
        fi
        sleep 0.1
    done
    tail -n 5 "$dir/django.log" >&2 || true
    fail "no answer from the server after 30 s"
}

stop() {
    local record dir
    record=$(record_of "$port")
    if [[ ! -r $record ]]; then
        say "nothing of ours runs on port $port"
        return 0
    fi
    dir=$(<"$record")
    rm -f "$record"
    [[ $dir == "$RUNDIR"/django.* ]] || fail "$record names a folder not ours: $dir"
    teardown "$dir"
    say "stopped the server on port $port and deleted its cluster"
}

status() {
    if [[ -r $(record_of "$port") ]] && answers "$port"; then
        say "running on port $port"
        base_url "$port"
        return 0
    fi
    say "not running on port $port"
    return 1
}

case $command in
install) ensure_installed ;;
start) start "${3:-}" ;;
stop) stop ;;
status) status ;;
*) usage ;;
esac
