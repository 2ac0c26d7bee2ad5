#!/usr/bin/env bash
# The control socket end to end: real pulld nodes on loopback driven by the real `pull`.
# Every non-dyad command with and without --json, the error paths (unknown command, bad
# flags, unknown id, pulld not running, a record refused by a rule), watch events from
# another node (record and match), withdraw reaching other nodes' search, export/import,
# and garbage on the control socket closing only that connection.
source "$(dirname "$0")/cli_common.sh"

# json_py EXPR: evaluate a python expression over the JSON value on stdin (bound to v).
json_py() {
    python3 -c 'import json, sys; v = json.load(sys.stdin); r = eval(sys.argv[1]); print(r if isinstance(r, str) else json.dumps(r))' "$1"
}

# watch_has FILE WHAT ID: the watch output FILE has an event WHAT for record ID.
watch_has() {
    python3 -c '
import json, sys
for line in open(sys.argv[1]):
    line = line.strip()
    if line:
        e = json.loads(line)
        if e.get("event") == sys.argv[2] and e.get("id") == sys.argv[3]:
            sys.exit(0)
sys.exit(1)' "$1" "$2" "$3"
}

# search_lacks I ID [WORDS...]: `pull search WORDS` on node I does not list ID.
search_lacks() {
    ! search_has "$@"
}

start_nodes 3

log "pulld refuses a second instance on the same data dir"
rc=0
"$PULLD" --data-dir "$(node_dir 1)" --listen 127.0.0.1:0 --no-lan >"$IT_TMP/second.log" 2>&1 || rc=$?
[ "$rc" != 0 ] || fail "a second pulld on n1's data dir started"
assert_contains "$(cat "$IT_TMP/second.log")" "already running" "second pulld's error"
pull_n 1 id >/dev/null || fail "n1 stopped answering after the second pulld gave up"
mode=$(stat -c %a "$(node_dir 1)/pulld.sock")
assert_eq "$mode" 600 "socket mode"

log "id and status"
id1=$(node_id 1)
assert_eq "${#id1}" 52 "id length"
assert_contains "$(pull_n 1 id)" "$id1@127.0.0.1:" "pull id"
st=$(pull_n 1 --json status)
for f in id uptime_s peers records network version data_dir limits counters; do
    printf '%s' "$st" | json_get "$f" >/dev/null || fail "status --json lacks $f"
done
assert_eq "$(printf '%s' "$st" | json_get network)" public "network"
assert_eq "$(printf '%s' "$st" | json_get limits.ctl_max_clients)" 64 "limits.ctl_max_clients"
assert_contains "$(pull_n 1 status)" "$id1" "pull status"

log "connect and peers"
connect 1 2
connect 2 3
wait_until 10 "n2 has two active peers" test "$(peer_count 2)" = 2
assert_eq "$(pull_n 1 --json peers | json_py 'v[0]["id"]')" "$(node_id 2)" "n1's peer"
assert_contains "$(pull_n 1 peers)" active "pull peers"
assert_eq "$(pull_n 1 --json connect "$(node_addr 2)" | json_get ok)" true "connect again"
expect_fail 2 pull_n 1 connect nonsense >/dev/null
expect_fail 2 pull_n 1 connect "${id1:0:20}@127.0.0.1:1" >/dev/null

log "record add, list, show"
rec=$(pull_n 1 --json offer add Rust mentoring in Lyon --tag rust --tag Mentoring \
    --body "Evenings, online or in a cafe" --expires 10d --location u05kq)
oid=$(printf '%s' "$rec" | json_get id)
assert_eq "$(printf '%s' "$rec" | json_get kind)" offer "kind"
assert_eq "$(printf '%s' "$rec" | json_get title)" "Rust mentoring in Lyon" "title"
assert_eq "$(printf '%s' "$rec" | json_get tags)" '["rust", "mentoring"]' "tags"
assert_eq "$(printf '%s' "$rec" | json_get author)" "$id1" "author"
assert_eq "$(printf '%s' "$rec" | json_py 'v["expires"] - v["created"]')" 864000 "lifetime"
assert_contains "$(pull_n 1 offer add Bike repair --tag bike)" "published offer" "offer add"
assert_eq "$(pull_n 1 --json offer list | json_get length)" 2 "offer list"
assert_eq "$(pull_n 1 --json need list | json_get length)" 0 "need list"
assert_contains "$(pull_n 1 offer list)" "Rust mentoring in Lyon" "offer list"
assert_eq "$(pull_n 1 --json show "${oid:0:8}" | json_get id)" "$oid" "show by prefix"
assert_contains "$(pull_n 1 show "${oid:0:10}")" "Evenings, online" "show"

log "search"
search_has 1 "$oid" rust || fail "n1 does not find its offer"
search_has 1 "$oid" --tag rust --kind offer || fail "n1 does not find it by tag"
search_has 1 "$oid" --author "${id1:0:8}" || fail "n1 does not find it by author"
assert_eq "$(pull_n 1 --json search rust mentoring | json_py 'v[0]["id"]')" "$oid" "best hit"
assert_eq "$(pull_n 1 --json search zzzunknownword | json_get length)" 0 "no hits"
assert_contains "$(pull_n 1 search rust)" "Rust mentoring" "human search"
assert_contains "$(pull_n 1 search nothingmatches)" "no matching records" "human empty"
wait_until 15 "n3 has the offer (via n2)" search_has 3 "$oid" mentoring

log "watch on another node: record and match events"
pull_n 3 --json watch rust >"$IT_TMP/watch3" 2>"$IT_TMP/watch3.err" &
wpid=$!
pull_n 1 --json watch --mine >"$IT_TMP/watch1" 2>"$IT_TMP/watch1.err" &
wpid1=$!
wait_until 5 "watch ready" grep -q watching "$IT_TMP/watch3.err"
wait_until 5 "watch ready" grep -q watching "$IT_TMP/watch1.err"
nid=$(pull_n 2 --json need add Looking for Rust mentoring --tag rust | json_get id)
wait_until 15 "n3's watch shows n2's need" watch_has "$IT_TMP/watch3" record "$nid"
wait_until 15 "n1's watch shows the match with its offer" watch_has "$IT_TMP/watch1" match "$nid"
assert_eq "$(grep '"match"' "$IT_TMP/watch1" | head -n 1 | json_get mine)" "$oid" "match.mine"
kill "$wpid" "$wpid1" 2>/dev/null || true
wait "$wpid" "$wpid1" 2>/dev/null || true

log "renew and withdraw reach the other nodes"
rid=$(pull_n 1 --json offer renew "${oid:0:8}" --expires 20d | json_get id)
[ "$rid" != "$oid" ] || fail "renew kept the id"
wait_until 15 "n3 has the renewed offer" search_has 3 "$rid" rust
search_has 3 "$oid" rust && fail "n3 still shows the old version"
expect_fail 2 pull_n 1 need renew "${rid:0:8}" | has "is an offer, not a need" ||
    fail "renewing an offer as a need"
assert_contains "$(pull_n 1 offer withdraw "${rid:0:8}")" withdrew "withdraw"
search_has 1 "$rid" rust && fail "n1 still finds the withdrawn offer"
wait_until 15 "the withdrawal reaches n3" search_lacks 3 "$rid" rust
expect_fail 1 pull_n 1 offer withdraw "${rid:0:8}" | has "no live or expired offer" ||
    fail "withdrawing twice"

log "errors"
err=$(expect_fail 2 "$PULL" --data-dir "$(node_dir 1)" serch rust)
assert_contains "$err" "search" "unknown command suggestion"
expect_fail 2 pull_n 1 search --bogus >/dev/null
expect_fail 2 pull_n 1 offer add >/dev/null
expect_fail 2 pull_n 1 show '!!' >/dev/null # neither an id nor a name
err=$(expect_fail 1 pull_n 1 show abc)          # could be someone's name: nobody's here
assert_contains "$err" "no record or author 'abc'" "show abc"
err=$(expect_fail 1 pull_n 1 show zzzzzzzz)
assert_contains "$err" "no record" "show unknown"
err=$(expect_fail 2 pull_n 1 offer add A title --tag "not a tag")
assert_contains "$err" "tag" "refused tag"
err=$(expect_fail 2 pull_n 1 offer add A title --location "not!geo")
assert_contains "$err" "geohash" "refused location"
mkdir -m 700 "$IT_TMP/empty"
err=$(expect_fail 3 "$PULL" --data-dir "$IT_TMP/empty" id)
assert_contains "$err" "no pull node at $IT_TMP/empty" "no node there"

log "export and import"
pull_n 1 offer add Sourdough starter to share --tag food >/dev/null
n_mine=$(pull_n 1 --json offer list | json_get length)
out=$(pull_n 1 --json export "$IT_TMP/mine.bdl")
assert_eq "$(printf '%s' "$out" | json_get records)" "$n_mine" "export my records"
all=$(pull_n 2 --json export --all "$IT_TMP/all.bdl" | json_get records)
[ "$all" -ge 3 ] || fail "export --all wrote $all records"
start_node 4
wait_node 4
imp=$(pull_n 4 --json import "$IT_TMP/all.bdl")
assert_eq "$(printf '%s' "$imp" | json_get imported)" "$all" "imported"
assert_eq "$(printf '%s' "$imp" | json_get rejected)" 0 "rejected"
imp=$(pull_n 4 --json import "$IT_TMP/all.bdl")
assert_eq "$(printf '%s' "$imp" | json_get rejected)" "$all" "re-import rejected"
assert_eq "$(printf '%s' "$imp" | json_get already)" "$all" "re-import: all already present"
assert_eq "$(printf '%s' "$imp" | json_get invalid)" 0 "re-import: none invalid"
assert_contains "$(pull_n 4 import "$IT_TMP/mine.bdl")" "0 new, " "human import"
assert_eq "$(pull_n 4 --json status | json_get records)" "$(pull_n 2 --json status | json_get records)" \
    "n4 has n2's live records"

log "garbage on the control socket closes only that connection"
python3 - "$(node_dir 1)/pulld.sock" <<'EOF'
import socket, struct, sys, time
path = sys.argv[1]
def closed(s):
    s.settimeout(5)
    try:
        while True:
            d = s.recv(65536)
            if not d:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False
keep = socket.socket(socket.AF_UNIX); keep.connect(path)
for payload in [struct.pack(">I", 0xFFFFFFFF), struct.pack(">I", 0),
                struct.pack(">I", 5) + b"\xc1\xc1\xc1\xc1\xc1",
                struct.pack(">I", 3) + b"\x93\x01\x02"]:
    s = socket.socket(socket.AF_UNIX); s.connect(path)
    s.sendall(payload)
    if not closed(s):
        sys.exit("pulld kept a connection open after garbage %r" % payload)
# an unknown command keeps the connection open and is answered
req = b"\x83\xa3cmd\xa4nope\xa3seq\x07\xa4args\x80"
keep.sendall(struct.pack(">I", len(req)) + req)
keep.settimeout(5)
hdr = keep.recv(4)
n = struct.unpack(">I", hdr)[0]
body = b""
while len(body) < n:
    body += keep.recv(n - len(body))
if b"unknown command" not in body:
    sys.exit("no unknown-command reply: %r" % body)
EOF
assert_eq "$(pull_n 1 --json id | json_get id)" "$id1" "n1 answers after garbage"
bad=$(pull_n 1 --json status | json_get counters.ctl_bad)
[ "$bad" -ge 4 ] || fail "ctl_bad is $bad after 4 bad connections"

log "a watcher that never reads lags (its events left out), pulld keeps serving"
python3 - "$(node_dir 2)/pulld.sock" <<'EOF' &
import socket, struct, sys, time
s = socket.socket(socket.AF_UNIX)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(sys.argv[1])
req = b"\x83\xa3cmd\xa5watch\xa3seq\x01\xa4args\x80"
s.sendall(struct.pack(">I", len(req)) + req)
time.sleep(30)
EOF
slow=$!
sleep 0.5
watchers_are() {
    test "$(pull_n 2 --json status | json_get control.watchers)" = "$1"
}
wait_until 20 "the slow watcher is registered" watchers_are 1
"${PULL_BENCH:-$PULL_BIN_DIR/bench/pull-bench}" gen 5000 "$IT_TMP/gen.bdl" >/dev/null
pull_n 2 import "$IT_TMP/gen.bdl" >/dev/null || fail "n2's import failed"
# ctl_watch_queue_bytes (2 MiB) of unsent events at most, the rest counted as dropped;
# it is closed only after ctl_idle_ms (60 s) without reading (test_ctl_limits.sh).
watch_dropped() {
    test "$(pull_n 2 --json status | json_get control.watch_dropped)" -gt 0
}
wait_until 10 "n2 leaves out the events of the watcher that does not read" watch_dropped
wb=$(pull_n 2 --json status | json_get control.watch_bytes)
[ "$wb" -le $((4 * 1024 * 1024)) ] || fail "the slow watcher holds $wb bytes"
kill "$slow" 2>/dev/null || true
wait "$slow" 2>/dev/null || true

log "show AUTHOR: counts of an author's records"
# n1's live records: "Bike repair" and "Sourdough starter" (the Rust offer was withdrawn)
a1=$(pull_n 1 --json show "$id1")
assert_eq "$(printf '%s' "$a1" | json_get author)" "$id1" "show AUTHOR: author"
assert_eq "$(printf '%s' "$a1" | json_get records)" 2 "show AUTHOR: records"
assert_eq "$(printf '%s' "$a1" | json_get offers)" 2 "show AUTHOR: offers"
assert_eq "$(printf '%s' "$a1" | json_get needs)" 0 "show AUTHOR: needs"
assert_eq "$(printf '%s' "$a1" | json_get dyads_completed)" 0 "show AUTHOR: dyads"
assert_eq "$(printf '%s' "$a1" | json_get dyads_counterparts)" 0 "show AUTHOR: counterparts"
assert_eq "$(printf '%s' "$a1" | json_get mine)" true "show AUTHOR: mine"
h=$(pull_n 1 show "$id1")
assert_contains "$h" "${id1:0:8} (you)" "human show AUTHOR: who"
assert_contains "$h" "$id1" "human show AUTHOR: the key"
assert_contains "$h" "2 live (2 offers, 0 needs)" "human show AUTHOR"
assert_contains "$h" "no completed dyads yet" "human show AUTHOR"
sid=$(pull_n 1 --json search sourdough | json_get 0.id)
assert_contains "$(pull_n 1 show "$sid")" "no completed dyads yet" "human show of a record"
# another node, by a prefix of the key
n1_offers_on_3() { [ "$(pull_n 3 --json show "${id1:0:10}" | json_get offers)" = 2 ]; }
wait_until 15 "n3 counts n1's two offers" n1_offers_on_3
a1=$(pull_n 3 --json show "${id1:0:10}")
assert_eq "$(printf '%s' "$a1" | json_get author)" "$id1" "show AUTHOR prefix on n3"
assert_eq "$(printf '%s' "$a1" | json_get mine)" false "show AUTHOR on n3: mine"
a2=$(pull_n 3 --json show "$(node_id 2)")
assert_eq "$(printf '%s' "$a2" | json_get needs)" 1 "n2's needs seen by n3"
assert_eq "$(printf '%s' "$a2" | json_get offers)" 0 "n2's offers seen by n3"
# a record id prefix still shows the record (records win)
assert_eq "$(pull_n 3 --json show "${sid:0:8}" | json_get id)" "$sid" "show record on n3"
# a key nobody here knows
err=$(expect_fail 1 pull_n 1 show "$(node_id 4)")
assert_contains "$err" "no record or author" "show unknown author"

# ---- search lists every stored record after a kill -9 while a peer keeps pushing:
# n5 holds a bundle and keeps adding offers; n6 syncs from it and is killed and restarted
# in the middle. Once nothing moves, n6's search must list exactly what it stored (the
# count in status) and exactly n5's records.
PULL_BENCH=${PULL_BENCH:-$PULL_BIN_DIR/bench/pull-bench}
search_ids() {
    pull_n "$1" --json search --limit 10000 |
        python3 -c 'import json,sys; print("\n".join(sorted(r["id"] for r in json.load(sys.stdin))))'
}
start_node 5 --max-per-author 100000
wait_node 5
"$PULL_BENCH" gen 3000 "$IT_TMP/bundle5" >/dev/null
pull_n 5 import "$IT_TMP/bundle5" >/dev/null
start_node 6 --max-per-author 100000 --bootstrap "$(node_addr 5)"
wait_node 6
STOP5=$IT_TMP/stop-writer5
(
    k=0
    while [ ! -e "$STOP5" ] && [ "$k" -lt 400 ]; do
        k=$((k + 1))
        pull_n 5 offer add "pushed while n6 restarts $k" --tag restart >/dev/null 2>&1 || sleep 0.02
    done
) &
WRITER5=$!
for r in 1 2 3; do
    sleep "0.$((RANDOM % 3))$((RANDOM % 10))"
    kill_node 6 2>/dev/null
    restart_node 6
    # what n6 lists right after the restart is what it stored (nothing lost on the way)
    n_st=$(pull_n 6 --json status | json_get records)
    n_se=$(search_count 6)
    [ "$n_se" -ge "$n_st" ] || fail "round $r: n6 lists $n_se records after a restart, stores $n_st"
done
touch "$STOP5"
wait "$WRITER5" || true
want=$(pull_n 5 --json status | json_get records)
n6_caught_up() { [ "$(pull_n 6 --json status | json_get records)" = "$want" ]; }
wait_until 30 "n6 has n5's $want records" n6_caught_up
assert_eq "$(search_count 6)" "$want" "n6 search lists every stored record"
[ "$(search_ids 6)" = "$(search_ids 5)" ] || fail "n6 lists other records than n5"
stop_node 6
stop_node 5

log "ok"
