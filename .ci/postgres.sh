#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite: initdb in a temporary folder (trust
# authentication, superuser `postgres`), listening on 127.0.0.1 only on a free port, with
# GITEE_RELAY_TEST_PG exported for the tests. Stopped and deleted when the shell exits.
#
#   source .ci/postgres.sh            # .ci/run does this; so can a developer's shell
#   .ci/postgres.sh cargo test store  # or run one command with the cluster, then stop it
#
# PostgreSQL comes from Debian's packages (`apt-get install postgresql`, as root) when no
# `initdb` is found on PATH or in /usr/lib/postgresql/<version>/bin. As root, the cluster runs
# as the user `postgres` (PostgreSQL refuses to run as root).

_pg_find_bin() {
    local dir
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(command -v initdb)"
        return 0
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -t/ -k5,5 -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            echo "$dir"
            return 0
        fi
    done
    return 1
}

_pg_as_owner() {
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

_pg_stop() {
    if [ -n "${_PG_DIR:-}" ] && [ -d "$_PG_DIR" ]; then
        _pg_as_owner "$_PG_BIN/pg_ctl" -D "$_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$_PG_DIR"
    fi
    _PG_DIR=
}

_pg_start() {
    local bin dir port tries log
    if ! bin=$(_pg_find_bin); then
        if [ "$(id -u)" != 0 ]; then
            echo "postgres.sh: PostgreSQL is not installed; run: sudo apt-get install -y postgresql" >&2
            return 1
        fi
        echo "== installing PostgreSQL from Debian's packages"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null || return 1
        bin=$(_pg_find_bin) || {
            echo "postgres.sh: apt-get installed postgresql but no initdb was found" >&2
            return 1
        }
    fi
    if [ "$(id -u)" = 0 ] && ! id postgres >/dev/null 2>&1; then
        useradd --system --no-create-home --shell /usr/sbin/nologin postgres || return 1
    fi

    dir=$(mktemp -d "${TMPDIR:-/tmp}/gitee-relay-pg.XXXXXX") || return 1
    chmod 700 "$dir"
    if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
    _PG_DIR=$dir
    _PG_BIN=$bin

    if ! _pg_as_owner "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C \
        --no-sync >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        _pg_stop
        return 1
    fi

    # A free port: one nobody listens on, and that the server then manages to bind.
    log="$dir/server.log"
    for tries in 1 2 3 4 5 6 7 8 9 10; do
        port=$((20000 + RANDOM % 40000))
        if (: <"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then continue; fi
        # Durability settings off: nothing here outlives the tests.
        if _pg_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$log" -w -t 60 -s start -o \
            "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"; then
            export GITEE_RELAY_TEST_PG="postgres://postgres@127.0.0.1:$port/postgres"
            echo "== PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $dir/data); GITEE_RELAY_TEST_PG=$GITEE_RELAY_TEST_PG"
            return 0
        fi
    done
    echo "postgres.sh: the server did not start; its log:" >&2
    cat "$log" >&2 2>/dev/null
    _pg_stop
    return 1
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
    # Sourced: start (replacing a cluster this shell started before), and stop at the shell's
    # exit, then run any exit trap it already had.
    _pg_stop
    _pg_start || return 1
    if [ -z "${_PG_TRAP_SET:-}" ]; then
        _PG_PREV_TRAP=$(trap -p EXIT | sed -e "s/^trap -- '//" -e "s/' EXIT\$//")
        trap '_pg_stop; eval "$_PG_PREV_TRAP"' EXIT
        _PG_TRAP_SET=1
    fi
else
    set -euo pipefail
    trap _pg_stop EXIT
    _pg_start
    if [ $# -gt 0 ]; then
        "$@"
    else
        echo "usage: source .ci/postgres.sh, or: .ci/postgres.sh <command> [args...]" >&2
    fi
fi
