#!/usr/bin/env bash
# Runs the shs1-test suite (https://github.com/AljoschaMeyer/shs1-testsuite, npm package
# shs1-test) against our handshake adapters: shs1testclient drives shs1_client,
# shs1testserver drives shs1_server. Each suite runs 45 cases (20 good handshakes, 25 with
# a misbehaving peer that we must refuse without writing anything more).
#
#   run.sh PATH/shs1_client PATH/shs1_server
#
# Exit 77 (ctest: skipped) if node or the suite is missing, unless PULL_REQUIRE_SHS1=1.
# The suite is found on PATH, in $SHS1_TEST_DIR/node_modules/.bin, or in npm's global bin.
set -uo pipefail
client=$1
server=$2

skip() {
    if [ "${PULL_REQUIRE_SHS1:-0}" = 1 ]; then
        echo "FAIL: $1 (PULL_REQUIRE_SHS1=1)"
        exit 1
    fi
    echo "SKIP: $1; install it with: npm install -g shs1-test"
    exit 77
}

command -v node >/dev/null || skip "node is not installed"
dirs=()
[ -n "${SHS1_TEST_DIR:-}" ] && dirs+=("$SHS1_TEST_DIR/node_modules/.bin")
if command -v npm >/dev/null; then
    gbin=$(npm prefix -g 2>/dev/null)/bin
    dirs+=("$gbin")
fi
PATH="$PATH$(printf ':%s' "${dirs[@]}")"
command -v shs1testclient >/dev/null && command -v shs1testserver >/dev/null ||
    skip "the shs1-test suite is not installed"

status=0
# A fixed seed makes a failure reproducible; a fresh one covers more keys over time.
for seed in pull-shs1-seed "$RANDOM$RANDOM"; do
    echo "== shs1testclient (our client), seed $seed"
    if ! timeout 120 shs1testclient "$client" "$seed"; then
        echo "FAIL: client suite, seed $seed"
        status=1
    fi
    echo "== shs1testserver (our server), seed $seed"
    if ! timeout 120 shs1testserver "$server" "$seed"; then
        echo "FAIL: server suite, seed $seed"
        status=1
    fi
done
[ $status = 0 ] && echo "shs1-test: both suites passed"
exit $status
