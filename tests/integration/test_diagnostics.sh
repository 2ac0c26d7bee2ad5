#!/usr/bin/env bash
# When something goes wrong with the network or the node, pull says what and what to do
# (issue 15). Each failure is played for real and its message and exit code checked:
#   - start-up: a second pulld on a data dir (exit 2, its pid), a listen address in use
#     (exit 1), pull on a directory without a node (exit 3, "no pull node at", the default)
#     and on a node whose pulld is stopped (exit 3, how to start it);
#   - a dead bootstrap peer: one warning in the log (not one per retry) with the next try,
#     `pull peers` with its state, last_error, last_seen and next_retry, `pull status`
#     in at most 10 lines with the warning;
#   - pull connect, named on the dialing side: refused, wrong id, another network key,
#     cannot resolve, timeout (a listener that never answers), busy (BYE after the
#     handshake), this node's own id and an id that is no key (exit 2), already connected
#     (with the address in use, exit 0);
#   - pull doctor on a healthy node (exit 0), with a dead bootstrap, on another network key,
#     with a clock an hour off (through libpull-fakeclock; that check is skipped, saying
#     why, where the library could not be built), and with pulld stopped (exit 1);
#   - an ambiguous id prefix (two records made by pull-collide to share 6 characters):
#     `pull show PREFIX` lists both candidates; importing them with two copies whose
#     signature is broken: "2 new, 0 already present, 2 invalid (bad signature: 2)".
# With PULL_DOCTOR_EXAMPLES=FILE the doctor outputs of the healthy node, the dead bootstrap
# and the other network key are appended to FILE (docs/doctor-examples.txt was made so).
source "$(dirname "$0")/cli_common.sh"

find_tool() { # find_tool NAME: a test tool or preload library of the build, or nothing
    local p=$PULL_BIN_DIR/tests/$1
    [ -e "$p" ] || p=$(find "$PULL_BIN_DIR" -name "$1" -type f | head -n 1)
    [ -e "$p" ] && echo "$p"
    return 0
}

# show_doctor TITLE OUTPUT: print a doctor's output under the progress lines, and append it
# to $PULL_DOCTOR_EXAMPLES if set.
show_doctor() {
    printf '%s\n' "$2" | sed 's/^/   | /' >&2
    if [ -n "$1" ] && [ -n "${PULL_DOCTOR_EXAMPLES:-}" ]; then
        printf '%s\n\n$ pull doctor; echo $?\n%s\n%s\n\n' "$1" "$2" "$3" >>"$PULL_DOCTOR_EXAMPLES"
    fi
}

# expect_rc STATUS CMD...: run CMD (stdout and stderr together), which must exit with
# STATUS; prints the output.
expect_rc() {
    local want=$1 rc=0 out
    shift
    out=$("$@" 2>&1) || rc=$?
    [ "$rc" = "$want" ] || fail "$* exited $rc, want $want: $out"
    printf '%s\n' "$out"
}

peer_field() { # peer_field I ID FIELD: FIELD of peer ID in node I's `pull --json peers`
    pull_n "$1" --json peers | python3 -c '
import json, sys
for p in json.load(sys.stdin):
    if p["id"] == sys.argv[1]:
        v = p.get(sys.argv[2])
        print(v if isinstance(v, str) else json.dumps(v))
        sys.exit(0)
sys.exit(1)' "$2" "$3"
}

start_nodes 2
connect 1 2
id1=$(node_id 1)
id2=$(node_id 2)
addr1=$(node_addr 1)
addr2=$(node_addr 2)
hp2=${addr2#*@}

# ---- pull doctor on a healthy node ------------------------------------------------------
# (first, before the failures below leave known peers that no longer answer in n1's sample)
log "pull doctor on a healthy node: every check passes, exit 0"
out=$(expect_rc 0 pull_n 1 doctor)
show_doctor "A healthy node (n1, connected to n2):" "$out" 0
assert_contains "$out" "checks passed" "healthy doctor"
case "$out" in *"see the warnings"* | *FAIL*) fail "healthy doctor: a warning or a failure: $out" ;; esac
for c in pulld store disk lan peers listen clock; do
    printf '%s\n' "$out" | grep -Eq "^ok +$c " || fail "healthy doctor: no passing $c check: $out"
done
assert_contains "$out" "ok    peer       ${id2:0:8}@$hp2: ok, connected" "the peer checked"
assert_contains "$out" "ok    clock      within " "the clock against n2's"
pull_n 1 --json doctor | python3 -c '
import json, sys
checks = json.load(sys.stdin)
assert all(c["ok"] for c in checks), checks
assert all(set(("check", "ok", "detail")) <= set(c) for c in checks), checks
' || fail "healthy doctor --json"

# ---- start-up ----------------------------------------------------------------------------
log "a second pulld on a data dir stops at once, with the first one's pid"
out=$(expect_rc 2 "$PULLD" --data-dir "$(node_dir 1)" --listen 127.0.0.1:0 --no-lan)
assert_contains "$out" "pulld: pulld is already running on $(node_dir 1) (pid $(node_pid 1))" \
    "second pulld"
[ "$(printf '%s\n' "$out" | wc -l)" = 1 ] || fail "the second pulld said more than one line: $out"

log "a listen address in use is bad configuration (exit 1), said as such"
mkdir -m 700 "$IT_TMP/inuse"
out=$(expect_rc 1 "$PULLD" --data-dir "$IT_TMP/inuse" --listen "${addr1#*@}" --no-lan)
assert_contains "$out" "address already in use" "listen address in use"
assert_contains "$out" "--listen HOST:PORT" "what to do about it"

log "pull on a directory without a node says so and names the default"
mkdir -m 700 "$IT_TMP/nonode"
err=$(expect_fail 3 "$PULL" --data-dir "$IT_TMP/nonode" status)
assert_contains "$err" "no pull node at $IT_TMP/nonode" "no node"
assert_contains "$err" "the default is " "the default named"
case "$err" in *"start it"* | *"pulld --data-dir"*) fail "suggests creating a node there: $err" ;; esac

# ---- a dead bootstrap peer ---------------------------------------------------------------
log "a dead bootstrap peer: one warning, pull peers and pull status tell it"
start_node 3 --bootstrap "$id1@127.0.0.1:1"
wait_node 3
failed_dials() { [ "$(peer_field 3 "$id1" failed_dials)" -ge "$1" ]; }
wait_until 30 "n3 to fail 3 dials of its bootstrap" failed_dials 3
warns=$(grep -c "warn: cannot reach bootstrap peer ${id1:0:8}" "$(node_dir 3)/log" || true)
assert_eq "$warns" 1 "warnings for one dead bootstrap (rate-limited)"
line=$(grep "warn: cannot reach bootstrap peer ${id1:0:8}" "$(node_dir 3)/log")
assert_contains "$line" "nothing accepts connections at 127.0.0.1:1 (connection refused)" "warning"
assert_contains "$line" "next try in " "the next try in the warning"
assert_eq "$(peer_field 3 "$id1" state)" unreachable "state"
assert_eq "$(peer_field 3 "$id1" bootstrap)" true "bootstrap flag"
assert_eq "$(peer_field 3 "$id1" last_error_kind)" refused "last_error_kind"
assert_contains "$(peer_field 3 "$id1" last_error)" "connection refused" "last_error"
assert_eq "$(peer_field 3 "$id1" last_seen)" null "last_seen of a peer never met"
retry=$(peer_field 3 "$id1" next_retry)
[ "$retry" != null ] && [ "$retry" -ge $(($(date +%s) - 2)) ] ||
    fail "next_retry should be a time to come, got $retry"
out=$(pull_n 3 peers)
assert_contains "$out" "unreachable (bootstrap)" "pull peers: the state"
assert_contains "$out" "last errors:" "pull peers: the errors"
assert_contains "$out" "${id1:0:8}  nothing accepts connections at 127.0.0.1:1" "pull peers: the error"
out=$(pull_n 3 status)
[ "$(printf '%s\n' "$out" | wc -l)" -le 10 ] || fail "pull status is over 10 lines: $out"
assert_contains "$out" "warning   no peer connected" "status: alone"
assert_contains "$out" "bootstrap peer ${id1:0:8} at 127.0.0.1:1 unreachable: refused" "status"
[ "$(pull_n 3 status --verbose | wc -l)" -gt 40 ] || fail "status --verbose lost the counters"
pull_n 3 --json status | json_get counters.handshakes_failed >/dev/null
pull_n 3 --json status | json_get limits.max_conns >/dev/null

# ---- pull connect ------------------------------------------------------------------------
log "pull connect names each failure on the dialing side"
id3=$(node_id 3)
err=$(expect_fail 1 pull_n 1 connect "$id3@127.0.0.1:1")
assert_contains "$err" "nothing accepts connections at 127.0.0.1:1 (connection refused)" "refused"

err=$(expect_fail 1 pull_n 1 connect "$id3@$hp2")
assert_contains "$err" "the node at $hp2 is not ${id3:0:8}" "wrong id"
assert_contains "$err" "on our network key" "wrong id: the key is fine"

netkey=$(printf 'ab%.0s' $(seq 32))
start_node 4 --network-key "$netkey"
wait_node 4
addr4=$(node_addr 4)
err=$(expect_fail 1 pull_n 1 connect "$addr4")
assert_contains "$err" "without answering our hello: it is on another network key" "network key"

err=$(expect_fail 1 pull_n 1 connect "$id3@no-such-host.invalid:7450")
assert_contains "$err" "cannot resolve the host of no-such-host.invalid:7450" "cannot resolve"

# a listener that accepts and never says a word
python3 -c '
import socket, sys, time
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen(16)
print(s.getsockname()[1], flush=True)
held = []
s.settimeout(1)
end = time.time() + 120
while time.time() < end:
    try:
        held.append(s.accept()[0])
    except socket.timeout:
        pass
' >"$IT_TMP/silent.port" &
silent=$!
it_on_exit "kill $silent"
wait_until 10 "the silent listener" test -s "$IT_TMP/silent.port"
err=$(expect_fail 1 pull_n 1 connect "$id3@127.0.0.1:$(cat "$IT_TMP/silent.port")")
assert_contains "$err" "accepted the connection but did not answer the handshake within" "timeout"

start_node 5 --max-conns 1
wait_node 5
connect 1 5
addr5=$(node_addr 5)
err=$(expect_fail 1 pull_n 2 connect "$addr5")
assert_contains "$err" "the node at ${addr5#*@} is busy: it refused the session" "busy"

err=$(expect_fail 2 pull_n 1 connect "$addr1")
assert_contains "$err" "is this node's own id" "own id"
err=$(expect_fail 2 pull_n 1 connect "$(printf 'a%.0s' $(seq 52))@127.0.0.1:7450")
assert_contains "$err" "is not a valid node id" "not a key"
case "$err" in *"own id"*) fail "a bad key read as this node's own id: $err" ;; esac

out=$(expect_rc 0 pull_n 1 connect "$id2@127.0.0.1:9")
assert_contains "$out" "already connected to ${id2:0:8} at $hp2 (so 127.0.0.1:9 was not dialed)" \
    "already connected"
assert_eq "$(pull_n 1 --json connect "$id2@127.0.0.1:9" | json_get address)" "$hp2" \
    "the address in use"

# ---- pull doctor -------------------------------------------------------------------------
log "pull doctor with a dead bootstrap: FAIL with what to do, exit 1"
out=$(expect_rc 1 pull_n 3 doctor)
show_doctor "A node whose only bootstrap line is dead (n3, pulld --bootstrap ID@127.0.0.1:1):" "$out" 1
assert_contains "$out" "FAIL  bootstrap  ${id1:0:8}@127.0.0.1:1: nothing accepts connections" "dead"
assert_contains "$out" "-- fix: check the port in the bootstrap line" "what to do"
assert_contains "$out" "FAIL  peers      alone" "alone"
expect_rc 1 pull_n 3 --json doctor | python3 -c '
import json, sys
b = [c for c in json.load(sys.stdin) if c["check"] == "bootstrap"]
assert len(b) == 1 and not b[0]["ok"] and b[0]["result"] == "refused" and b[0]["hint"], b
' || fail "dead bootstrap doctor --json"

log "pull doctor on another network key than its bootstrap: FAIL, exit 1"
start_node 6 --network-key "$netkey" --bootstrap "$addr1"
wait_node 6
out=$(expect_rc 1 pull_n 6 doctor)
show_doctor "A node on another network key than its bootstrap (n6, pulld --network-key KEY --bootstrap n1):" "$out" 1
assert_contains "$out" "FAIL  bootstrap  ${id1:0:8}@${addr1#*@}: the node at ${addr1#*@} closed the connection without answering our hello: it is on another network key" \
    "other network key"
assert_contains "$out" "-- fix: both nodes need the same --network-key" "what to do"
expect_rc 1 pull_n 6 --json doctor | python3 -c '
import json, sys
b = [c for c in json.load(sys.stdin) if c["check"] == "bootstrap"]
assert len(b) == 1 and b[0]["result"] == "other_network", b
' || fail "other network doctor --json"

log "pull doctor on a node whose clock is an hour ahead: FAIL clock, exit 1"
preload=$(find_tool libpull-fakeclock.so)
if [ -z "$preload" ]; then
    log "SKIP the clock check: no libpull-fakeclock.so in $PULL_BIN_DIR (built only on Linux, where shared libraries can be built)"
else
    export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0"
    PULL_FAKE_CLOCK_OFFSET_S=3600 LD_PRELOAD=$preload start_node 7
    wait_node 7
    connect 7 1
    out=$(expect_rc 1 pull_n 7 doctor)
    show_doctor "" "$out"
    assert_contains "$out" "FAIL  clock      this node's clock is 3" "skewed clock"
    assert_contains "$out" "s ahead of its peers'" "ahead"
    assert_contains "$out" "-- fix: set this host's clock" "what to do"
    id7=$(node_id 7)
    out=$(pull_n 1 doctor || true)
    assert_contains "$out" "warn  clock      within " "n1's own clock is fine"
    assert_contains "$out" "clocks far off: ${id7:0:8} +3" "n1 names the peer whose clock is off"
fi

# ---- import and ambiguous prefixes -------------------------------------------------------
log "import: new, already present and invalid counted with the reason"
collide=$(find_tool pull-collide)
[ -n "$collide" ] || fail "no pull-collide in $PULL_BIN_DIR"
prefix=$("$collide" "$IT_TMP/pair.bdl")
[ "${#prefix}" = 6 ] || fail "pull-collide printed '$prefix', not a 6-character prefix"
# the bundle again, with a copy of each record whose signature lost a bit
python3 - "$IT_TMP/pair.bdl" "$IT_TMP/mixed.bdl" <<'EOF'
import struct, sys
data = open(sys.argv[1], "rb").read()
assert data[:8] == b"PULLBDL1", data[:8]
envs, off = [], 8
while off < len(data):
    (n,) = struct.unpack(">I", data[off:off + 4])
    envs.append(data[off + 4:off + 4 + n])
    off += 4 + n
assert len(envs) == 2, len(envs)
out = bytearray(b"PULLBDL1")
for e in envs + [e[:-1] + bytes([e[-1] ^ 1]) for e in envs]:  # the signature ends it
    out += struct.pack(">I", len(e)) + e
open(sys.argv[2], "wb").write(out)
EOF
out=$(expect_rc 0 pull_n 1 import "$IT_TMP/mixed.bdl")
printf '%s\n' "$out" | sed 's/^/   | /' >&2
assert_contains "$out" "2 new, 0 already present, 2 invalid (bad signature: 2)" "import summary"
out=$(expect_rc 0 pull_n 1 import "$IT_TMP/pair.bdl")
assert_contains "$out" "0 new, 2 already present, 0 invalid" "import again"

log "an ambiguous id prefix lists its candidates"
ids=$(pull_n 1 --json search collision --limit 10 | python3 -c '
import json, sys
print(" ".join(sorted(r["id"] for r in json.load(sys.stdin))))')
read -r c1 c2 rest <<<"$ids"
[ -n "$c2" ] && [ -z "$rest" ] || fail "search collision: want the 2 records, got: $ids"
[ "${c1:0:6}" = "$prefix" ] && [ "${c2:0:6}" = "$prefix" ] || fail "ids $ids do not start with $prefix"
err=$(expect_rc 1 pull_n 1 show "$prefix")
printf '%s\n' "$err" | sed 's/^/   | /' >&2
assert_contains "$err" "pull: " "the error line"
assert_contains "$err" "the candidates are:" "candidates"
for id in "$c1" "$c2"; do
    printf '%s\n' "$err" | grep -Eq "^  ${id:0:8}.*offer +collision [0-9]+ +\(by " ||
        fail "candidate $id not listed: $err"
done
assert_contains "$(pull_n 1 show "${c1:0:12}")" "collision" "a longer prefix names one"

log "pull doctor and pull with pulld stopped"
stop_node 2
out=$(expect_rc 1 pull_n 2 doctor)
assert_contains "$out" "FAIL  pulld      pulld is not running on $(node_dir 2)" "doctor, pulld down"
err=$(expect_fail 3 pull_n 2 status)
assert_contains "$err" "pulld is not running on $(node_dir 2); start it with: pulld --data-dir $(node_dir 2)" \
    "not running"
log "every failure named, with its exit code"
