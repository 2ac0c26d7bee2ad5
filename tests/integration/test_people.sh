#!/usr/bin/env bash
# People, not ids: four real pulld nodes on loopback, driven by the real CLI.
#   1. Ada (n1), Bob (n2), Lin (n3) and Dan (n4, who also calls himself "Bob") set
#      profiles; Ada finds them by name, gives Bob a petname, and the second "Bob" is never
#      shown alone.
#   2. Ada proposes on Bob's offer by his petname; Bob renews the offer while the dyad is
#      open; the old id still finds it; they talk (accept "Yes, 6pm", a message), finish,
#      and Ada reads the conversation and "waiting for Bobby to ack" in human output.
#   3. Bob and Lin complete a dyad too: Ada sees the trust path you -> Bobby -> Lin;
#      --trusted keeps Bob and Lin and leaves Dan out; Lin ranks above Dan's same offer.
#   4. watch --mine on Ada's node showed only her dyads' steps (each its own event, the ack
#      too) and the one need that matches her offer, once.
#   5. A self-attesting pair of keys (pull-attestforge, imported) gets no trust, and its
#      attestation about no record counts for nothing.
# With PULL_PEOPLE_SHOW=1 every human output checked is also printed on stderr.
source "$(dirname "$0")/cli_common.sh"

FORGE=${PULL_BIN_DIR}/tests/pull-attestforge
[ -x "$FORGE" ] || FORGE=$(find "$PULL_BIN_DIR" -name pull-attestforge -type f | head -n 1)
[ -x "$FORGE" ] || fail "no pull-attestforge in $PULL_BIN_DIR"

# human I ARGS...: the human output of `pull ARGS` on node I (shown with PULL_PEOPLE_SHOW=1).
human() {
    local i=$1 out
    shift
    out=$(pull_n "$i" "$@") || fail "pull $* on n$i failed: $out"
    if [ "${PULL_PEOPLE_SHOW:-0}" = 1 ]; then
        printf '\n$ pull %s    # on n%s\n%s\n' "$*" "$i" "$out" >&2
    fi
    printf '%s\n' "$out"
}
dyad_field() { pull_n "$1" --json dyad show "$2" | json_get "$3"; }
dyad_state_is() { [ "$(dyad_field "$1" "$2" state)" = "$3" ]; }
has_profile() { pull_n "$1" --json profile show "$2" >/dev/null 2>&1; }
distance_is() { [ "$(pull_n "$1" --json show "$2" | json_get trust.distance)" = "$3" ]; }
counted() { [ "$(pull_n "$1" --json show "$2" | json_get dyads_completed)" -ge "$3" ]; }

start_nodes 4
A=$(node_id 1)
B=$(node_id 2)
C=$(node_id 3)
D=$(node_id 4)
connect 1 2
connect 2 3
connect 3 4
connect 4 1

# ---- 1. profiles, names, petnames ----------------------------------------------------------
human 1 profile set --name "Ada" --about "I write C and fix bikes" --tag c >/dev/null
human 2 profile set --name "Bob" --about "Bike repair in Lyon" --tag bike >/dev/null
human 3 profile set --name "Lin" --tag music >/dev/null
human 4 profile set --name "BOB" --tag sofa >/dev/null # reads like Bob's name
for who in "$B" "$C" "$D"; do
    wait_until 30 "Ada has the profile of ${who:0:8}" has_profile 1 "$who"
done
out=$(human 1 search --kind profile)
assert_contains "$out" "Bob (${B:0:8})" "profiles by name"
assert_contains "$out" "BOB (${D:0:8})" "the other Bob, with his key"
err=$(expect_fail 1 pull_n 1 show Bob)
assert_contains "$err" "2 people chose the name 'Bob'" "an ambiguous name"
out=$(human 1 show Lin) # a unique name finds her
assert_contains "$out" "Lin (${C:0:8})"
assert_contains "$out" "no path from you" "Lin before any dyad"
out=$(human 1 name "${B:0:8}" Bobby)
assert_contains "$out" "Bobby is your name for ${B:0:8} (who calls themselves Bob)"
err=$(expect_fail 1 pull_n 1 name "${D:0:8}" BOBBY)
assert_contains "$err" "already your petname" "petnames are unique"
out=$(human 1 names)
assert_contains "$out" "Bobby"
assert_eq "$(pull_n 1 --json names | json_get 0.author)" "$B" "names --json"
out=$(human 1 profile show Bobby)
assert_contains "$out" "Bobby (${B:0:8})"
assert_contains "$out" "Bike repair in Lyon" "Bob's about"
# the impostor's name now reads like neither petname nor unique name: always with its key
assert_eq "$(pull_n 1 --json show "${D:0:8}" | json_get author_label)" "BOB (${D:0:8})" "Dan's label"
assert_eq "$(pull_n 1 --json show Bobby | json_get author_label)" "Bobby" "Bob's label"
log "profiles and petnames"

# ---- 4 (started now). watch --mine on Ada's node --------------------------------------------
mine_offer=$(pull_n 1 --json offer add "C code review" --tag c --body "an hour a week" | json_get id)
pull_n 1 watch --mine >"$IT_TMP/watch1.txt" 2>/dev/null &
watch_pid=$!
watching() { [ "$(pull_n 1 --json status | json_get control.watchers)" -ge 1 ]; }
wait_until 15 "Ada's watch is registered" watching

# ---- 2. a dyad on a record renewed while it is open ----------------------------------------
offer=$(pull_n 2 --json offer add "Bike repair in Lyon" --tag bike --body "I fix bikes" | json_get id)
wait_until 30 "Ada has Bob's offer" search_has 1 "$offer" bike
out=$(human 1 search bike)
assert_contains "$out" "Bobby (${B:0:8})" "search shows the author by petname"
d1=$(pull_n 1 --json dyad propose Bobby --message "my back wheel is bent" | json_get id)
assert_eq "$(dyad_field 1 "$d1" record)" "$offer" "proposed on Bob's only offer, by name"
wait_until 30 "Bob receives the proposal" dyad_state_is 2 "$d1" proposed
renewed=$(pull_n 2 --json offer renew "$offer" --expires 60d | json_get id)
[ "$renewed" != "$offer" ] || fail "renew kept the id"
assert_eq "$(pull_n 2 --json show "$offer" | json_get id)" "$renewed" "the old id finds the live version"
assert_eq "$(pull_n 2 --json show "$offer" | json_get handle)" \
    "$(pull_n 2 --json show "$renewed" | json_get handle)" "renew keeps the handle"
out=$(human 2 show "${offer:0:8}")
assert_contains "$out" "superseded by ${renewed:0:8}"
human 2 dyad accept Ada --message "Yes, 6pm" >/dev/null # Ada: her unique chosen name
wait_until 30 "Ada sees the accept" dyad_state_is 1 "$d1" accepted
wait_until 30 "Ada has the renewed offer" search_has 1 "$renewed" bike
out=$(human 1 show "${offer:0:8}")
assert_contains "$out" "superseded by ${renewed:0:8}" "Ada: the old id"
assert_eq "$(dyad_field 1 "$d1" record_live)" "$renewed" "the dyad follows the handle"
human 1 dyad message Bobby --message "bring the lock" >/dev/null
human 1 dyad done "$d1" >/dev/null
wait_until 30 "Bob sees done" dyad_state_is 2 "$d1" done
human 1 dyad ack "$d1" >/dev/null
out=$(human 1 dyad show "$d1")
assert_contains "$out" "waiting for Bobby to ack" "next action after my ack"
out=$(human 1 dyad list)
assert_contains "$out" "Bike repair in Lyon" "dyad list: the record's title"
assert_contains "$out" "Bobby (${B:0:8})" "dyad list: the counterpart"
assert_contains "$out" "proposer" "dyad list: my role"
assert_contains "$out" "waiting for Bobby to ack" "dyad list: the next action"
human 2 dyad ack Ada >/dev/null
wait_until 30 "Ada: completed" dyad_state_is 1 "$d1" completed
out=$(human 1 dyad show "$d1")
assert_contains "$out" "my back wheel is bent"
assert_contains "$out" "Yes, 6pm"
assert_contains "$out" "bring the lock"
assert_contains "$out" "nothing: completed"
printf '%s\n' "$out" | grep -E "^  .*Bobby +accept +Yes, 6pm" >/dev/null || fail "the accept line: $out"
printf '%s\n' "$out" | grep -E "^  .*you +message +bring the lock" >/dev/null || fail "my message: $out"
msgs=$(pull_n 1 --json dyad show "$d1" | python3 -c '
import json, sys
d = json.load(sys.stdin)
print(" ".join("%s:%s:%s" % (m["step"], "me" if m["from"] == "me" else "peer", m["text"].replace(" ", "_")) for m in d["messages"]))')
assert_eq "$msgs" "propose:me:my_back_wheel_is_bent accept:peer:Yes,_6pm note:me:bring_the_lock done:me: ack:me: ack:peer:" "messages, oldest first"
log "dyad on a renewed record completed; the conversation reads"

# ---- 3. trust: you -> Bobby -> Lin ------------------------------------------------------------
guitar=$(pull_n 3 --json offer add "Guitar lessons in Lyon" --tag music | json_get id)
wait_until 30 "Bob has Lin's offer" search_has 2 "$guitar" guitar
d2=$(pull_n 2 --json dyad propose "$guitar" --message "Saturday?" | json_get id)
wait_until 30 "Lin receives it" dyad_state_is 3 "$d2" proposed
pull_n 3 dyad accept "$d2" >/dev/null
wait_until 30 "Bob sees the accept" dyad_state_is 2 "$d2" accepted
pull_n 2 dyad done "$d2" >/dev/null
wait_until 30 "Lin sees done" dyad_state_is 3 "$d2" done
pull_n 2 dyad ack "$d2" >/dev/null
pull_n 3 dyad ack "$d2" >/dev/null
wait_until 30 "Bob: completed" dyad_state_is 2 "$d2" completed
wait_until 30 "Lin: completed" dyad_state_is 3 "$d2" completed
wait_until 60 "Ada counts Lin's dyad" counted 1 "$C" 1
wait_until 30 "Lin 2 hops from Ada" distance_is 1 "$C" 2
out=$(human 1 show Lin)
assert_contains "$out" "you → Bobby → Lin" "the trust path by name"
assert_contains "$out" "2 hops from you"
assert_contains "$out" "with Bobby (${B:0:8})" "Lin's counterpart by name"
assert_contains "$out" "Guitar lessons in Lyon" "Lin's live offers listed"
out=$(human 1 show Bobby)
assert_contains "$out" "you → Bobby" "Bob: 1 hop"
assert_contains "$out" "2 completed dyads with 2 people"
assert_contains "$out" "with you" "Bob's counterparts: me"
assert_eq "$(pull_n 1 --json show Lin | json_get trust.paths.0.1)" "$C" "the path's keys"
# the same offer by Dan, who nobody dealt with: Lin's ranks first, Dan's is not trusted
dan=$(pull_n 4 --json offer add "Guitar lessons in Lyon" --tag music | json_get id)
wait_until 30 "Ada has Dan's offer" search_has 1 "$dan" guitar
assert_eq "$(pull_n 1 --json search guitar lessons | json_get 0.id)" "$guitar" "nearer ranks first"
out=$(human 1 search guitar lessons --trusted)
assert_contains "$out" "Lin (${C:0:8})"
case "$out" in *"${D:0:8}"*) fail "--trusted kept Dan: $out" ;; esac
assert_eq "$(pull_n 1 --json search guitar --trusted 1 | json_get length)" 0 "Lin is 2 hops away"
log "trust path you -> Bobby -> Lin"

# ---- 4. what watch --mine showed --------------------------------------------------------------
pull_n 4 need add "Looking for C code review" --tag c >/dev/null # matches Ada's offer
pull_n 4 need add "Need a sofa in Paris" --tag sofa >/dev/null   # matches nothing of hers
match_seen() { grep -q "Looking for C code review" "$IT_TMP/watch1.txt"; }
wait_until 30 "Ada's watch shows the match" match_seen
sleep 2
kill "$watch_pid" 2>/dev/null || true
wait "$watch_pid" 2>/dev/null || true
[ "${PULL_PEOPLE_SHOW:-0}" = 1 ] && { echo; echo '$ pull watch --mine    # on n1'; cat "$IT_TMP/watch1.txt"; } >&2
w=$(cat "$IT_TMP/watch1.txt")
assert_eq "$(grep -c "Looking for C code review" <<<"$w")" 1 "the match, once"
assert_contains "$w" "(matches your ${mine_offer:0:8} \"C code review\")"
case "$w" in *sofa* | *Sofa* | *"Guitar lessons"*) fail "watch --mine showed a stranger's record: $w" ;; esac
assert_contains "$w" "accept by Bobby" "the accept as an event"
assert_contains "$w" "\"Yes, 6pm\"" "the latest message in the event"
assert_contains "$w" "ack by you" "my ack, its own event"
assert_contains "$w" "ack by Bobby" "Bob's ack, its own event"
assert_contains "$w" "message by you" "my message"
assert_contains "$w" "next: waiting for Bobby to ack"
log "watch --mine"

# ---- 5. a self-attesting pair gets no trust ---------------------------------------------------
forged=$("$FORGE" "$IT_TMP/pair.bundle") || fail "pull-attestforge failed"
X1=$(sed -n 's/^X1 //p' <<<"$forged")
X2=$(sed -n 's/^X2 //p' <<<"$forged")
sofa=$(sed -n 's/^OFFER //p' <<<"$forged")
assert_eq "$(pull_n 1 --json import "$IT_TMP/pair.bundle" | json_get imported)" 3 "the pair's records import"
out=$(human 1 show "$X1")
assert_contains "$out" "no path from you" "the pair: no trust"
assert_contains "$out" "1 completed dyad with 1 person (as they say: no path from you, no weight)" \
    "the attestation about a real record, worth nothing to me"
assert_eq "$(pull_n 1 --json show "$X1" | json_get trust.distance)" null "no distance"
assert_eq "$(pull_n 1 --json show "$X2" | json_get dyads_completed)" 1 "the one about no record counts for nothing"
search_has 1 "$sofa" sofa || fail "the pair's offer is searchable"
if pull_n 1 --json search sofa --trusted 6 | has "$sofa"; then
    fail "--trusted kept the self-attesting pair"
fi
[ "$(pull_n 1 --json status | json_get people.attestations_waiting)" = 1 ] ||
    fail "the attestation about no record should wait for a record that never comes"
log "self-attesting pair: no trust"

# ---- petnames survive a restart; removing one ----------------------------------------------
stop_node 1
restart_node 1
assert_eq "$(pull_n 1 --json show Bobby | json_get author)" "$B" "the petname after a restart"
wait_until 30 "Lin still 2 hops away after a restart" distance_is 1 "$C" 2
out=$(human 1 name --remove Bobby)
assert_contains "$out" "Bobby is no longer your name for ${B:0:8}"
assert_eq "$(pull_n 1 --json names | json_get length)" 0 "no petnames left"
log "ok"
