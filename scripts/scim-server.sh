#!/usr/bin/env bash
# Runs the third-party SCIM 2.0 server `scim2-server` (PyPI) on 127.0.0.1, so that the SCIM
# target can be tested against an implementation that userload's authors did not write.
#
#   scripts/scim-server.sh start PORT [TOKEN]  install when needed, start, wait until it
#                                              answers, print its base URL on stdout; PORT 0
#                                              lets the server bind a free port itself (no
#                                              race with another process), and the URL names it
#   scripts/scim-server.sh stop PORT           stop the server this script started on PORT
#   scripts/scim-server.sh status PORT         print the base URL; exit 1 unless it answers
#   scripts/scim-server.sh install             only install (CI does this before the tests)
#
# TOKEN: the bearer token the server demands; none means it accepts anonymous requests.
# The server keeps its users in memory, so every start begins with none.
#
# Environment:
#   USERLOAD_PEERS         where the venv, pid files and logs live
#                          (default ${TMPDIR:-/tmp}/userload-peers)
#   SCIM2_SERVER_VERSION   the PyPI version to install (default 0.8.3)
set -euo pipefail

HOST=127.0.0.1
PEERS=${USERLOAD_PEERS:-${TMPDIR:-/tmp}/userload-peers}
VERSION=${SCIM2_SERVER_VERSION:-0.8.3}
VENV=$PEERS/scim2-server-$VERSION
RUNDIR=$PEERS/run

say() { printf 'scim-server: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }
usage() { sed -n '5,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

command=${1:-}
port=${2:-}
if [[ $command == install ]]; then
    port=1 # unused
fi
[[ -n $command && -n $port ]] || usage
[[ $port =~ ^[0-9]+$ ]] && ((port < 65536)) || fail "not a port number: $port"
((port > 0)) || [[ $command == start ]] || fail "port 0 is only for start"

# Sets the files and the URL that belong to PORT.
use_port() {
    port=$1
    pid_file=$RUNDIR/$port.pid
    log_file=$RUNDIR/$port.log
    base_url=http://$HOST:$port/v2
}
use_port "$port"

# Prints the pid recorded for PORT when that process still runs scim2-server.
running_pid() {
    [[ -r $pid_file ]] || return 1
    local pid
    pid=$(<"$pid_file")
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    grep -qa scim2_server "/proc/$pid/cmdline" 2>/dev/null || return 1
    printf '%s\n' "$pid"
}

# Whether a SCIM server answers on PORT (its discovery endpoint needs no token).
answers() {
    local code
    code=$(curl --silent --output /dev/null --write-out '%{http_code}' --max-time 2 \
        "$base_url/ServiceProviderConfig" 2>/dev/null) || return 1
    [[ $code == 200 ]]
}

ensure_installed() {
    local python=$VENV/bin/python
    if [[ -x $python ]] && "$python" - "$VERSION" 2>/dev/null <<'PY'
import sys
from importlib.metadata import version
sys.exit(0 if version("scim2-server") == sys.argv[1] else 1)
PY
    then
        return 0
    fi
    mkdir -p "$PEERS"
    # Two starts at once (parallel test runs) must not build the same venv together.
    exec 9>"$PEERS/install.lock"
    command -v flock >/dev/null && flock 9
    if ! "$python" -c 'import scim2_server' 2>/dev/null; then
        say "installing scim2-server $VERSION in $VENV"
        [[ -x $python ]] || python3 -m venv "$VENV"
        "$python" -m pip install --quiet --disable-pip-version-check "scim2-server==$VERSION" >&2 ||
            fail "pip could not install scim2-server==$VERSION"
    fi
    exec 9>&-
}

# Starts the server on $port (0: a port the server binds itself, reported through a file).
# The launcher wraps the CLI's make_server to write the bound port once it is listening.
launch() {
    local listen=$1 token=$2 port_file=$3
    local options=(--hostname "$HOST" --port "$listen")
    [[ -n $token ]] && options+=(--bearer-token "$token")
    # TERM is turned into KeyboardInterrupt so that the server shuts down the way it does
    # on Ctrl-C.
    USERLOAD_SCIM_PORT_FILE=$port_file nohup "$VENV/bin/python" -c '
import os, signal, sys
signal.signal(signal.SIGTERM, signal.default_int_handler)
from scim2_server.testserver import cli
bind = cli.make_server
def make_server(*args, **kwargs):
    server = bind(*args, **kwargs)
    path = os.environ["USERLOAD_SCIM_PORT_FILE"]
    with open(path + ".tmp", "w") as f:
        f.write(str(server.server_port))
    os.replace(path + ".tmp", path)
    return server
cli.make_server = make_server
sys.argv[0] = "scim2-server"
cli.main()
' "${options[@]}" >"$log_file" 2>&1 </dev/null &
    printf '%s\n' "$!"
}

start() {
    local token=${1:-}
    mkdir -p "$RUNDIR"
    local pid
    if ((port > 0)) && pid=$(running_pid); then
        answers || fail "pid $pid runs but $base_url does not answer (log: $log_file)"
        say "already running as pid $pid"
        printf '%s\n' "$base_url"
        return 0
    fi
    ((port > 0)) && answers && fail "port $port is already taken by another server"
    ensure_installed
    local port_file
    port_file=$(mktemp "$RUNDIR/port.XXXXXX")
    rm -f "$port_file"
    local listen=$port
    ((port > 0)) || use_port "pending-$$"
    pid=$(launch "$listen" "$token" "$port_file")
    local tries
    for ((tries = 0; tries < 150; tries++)); do
        if [[ -s $port_file ]] && [[ $port == pending-* ]]; then
            local pending_log=$log_file
            use_port "$(<"$port_file")"
            mv "$pending_log" "$log_file"
        fi
        if [[ -s $port_file ]] && answers; then
            rm -f "$port_file"
            printf '%s\n' "$pid" >"$pid_file"
            say "started pid $pid (log: $log_file)"
            printf '%s\n' "$base_url"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$port_file"
            tail -n 5 "$log_file" >&2 || true
            fail "the server exited during start-up"
        fi
        sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    rm -f "$port_file"
    tail -n 5 "$log_file" >&2 || true
    fail "no answer from $base_url after 15 s"
}

stop() {
    local pid
    if ! pid=$(running_pid); then
        rm -f "$pid_file"
        say "nothing of ours runs on port $port"
        return 0
    fi
    kill -TERM "$pid" 2>/dev/null || true
    local tries
    for ((tries = 0; tries < 50; tries++)); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null || true
        say "pid $pid did not stop in 5 s; killed it"
    else
        say "stopped pid $pid"
    fi
    rm -f "$pid_file" "$log_file"
}

status() {
    local pid
    if pid=$(running_pid) && answers; then
        say "running as pid $pid"
        printf '%s\n' "$base_url"
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
