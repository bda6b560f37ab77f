#!/usr/bin/env bash
# The headless browser the HTML report tests drive: Debian's chromium.
#
#   scripts/browser.sh install   install chromium with apt-get when /usr/bin/chromium is
#                                missing (needs root, as on CI and the test machines)
#   scripts/browser.sh path      print the browser's path; exit 1 when it is not installed
#
# Environment:
#   USERLOAD_CHROMIUM   the browser to use instead of /usr/bin/chromium
set -euo pipefail

BROWSER=${USERLOAD_CHROMIUM:-/usr/bin/chromium}
PEERS=${USERLOAD_PEERS:-${TMPDIR:-/tmp}/userload-peers}

say() { printf 'browser: %s\n' "$*" >&2; }
fail() { say "$*"; exit 1; }
usage() { sed -n '4,10p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

install() {
    [[ -x $BROWSER ]] && return 0
    mkdir -p "$PEERS"
    # Two test binaries at once must not run apt-get together.
    exec 9>"$PEERS/browser-install.lock"
    command -v flock >/dev/null && flock 9
    if [[ ! -x $BROWSER ]]; then
        command -v apt-get >/dev/null || fail "no $BROWSER and no apt-get to install chromium"
        say "installing chromium with apt-get"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2 || fail "apt-get update failed"
        apt-get install -y -qq chromium >&2 || fail "apt-get could not install chromium"
        [[ -x $BROWSER ]] || fail "chromium installed but $BROWSER is missing"
    fi
    exec 9>&-
}

case ${1:-} in
install) install ;;
path)
    [[ -x $BROWSER ]] || fail "$BROWSER is not installed (scripts/browser.sh install)"
    printf '%s\n' "$BROWSER"
    ;;
*) usage ;;
esac
