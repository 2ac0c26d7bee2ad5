#!/usr/bin/env bash
# Search end to end, through real pulld nodes and the real `pull`:
#   - the README's examples (its "Using it" block) run as written against a node whose peer
#     offers Rust mentoring, and `pull search rust mentoring --kind offer` finds that offer;
#   - words match whatever their case and accents (CAFÉ, Straße / STRASSE), tags are folded
#     when a record is made (--tag CAFÉ is "cafe", found by --tag café), a record in German
#     (--tag lang-de) is stemmed in German, typos are forgiven (mentr, rsut);
#   - counts: human output ends with "N of M shown", `--json search --count` prints
#     {"total": M}, `--json search` still prints the array;
#   - limits are told in characters and bytes (a title of 70 x "é").
source "$(dirname "$0")/cli_common.sh"

start_nodes 2
connect 1 2
peer_offer=$(pull_n 2 --json offer add "Rust mentor for beginners" --tag rust \
    --body "Weekly calls, ownership and borrowing" | json_get id)
wait_until 15 "n1 has n2's offer" search_has 1 "$peer_offer"

log "the README's examples, as written"
peer_key=$(node_id 2)
readme="$IT_SRC_DIR/README.md"
block=$(awk '/^## Using it/ {u = 1} u && /^```sh/ {b = 1; next} b && /^```/ {exit} b' "$readme")
[ -n "$block" ] || fail "no sh block under 'Using it' in README.md"
ran=0
mkdir -p "$IT_TMP/readme"
while IFS= read -r line; do
    cmd=${line%%#*}                         # the comment is not part of the command
    cmd=$(printf '%s' "$cmd" | sed 's/[[:space:]]*$//')
    [ -n "$cmd" ] || continue
    case "$cmd" in
    pull\ *) ;;
    *) fail "README example is not a pull command: $cmd" ;;
    esac
    # Placeholders: a record id prefix is n2's offer, a peer to dial is n2, a dyad id is
    # the one just proposed; "a|b|c" lists alternatives: the first, run by n2 (the
    # responder, who accepts); a person's key prefix is n2's key.
    node=1
    cmd=${cmd//q4rt7x/${peer_offer:0:8}}
    cmd=${cmd//k3vq7a/${peer_key:0:8}}
    cmd=${cmd//ID@192.0.2.7:7450/$(node_addr 2)}
    if [[ "$cmd" == *pull1-...* ]]; then
        # an invite of n2's, redeemed by a node of its own (n1 is connected to n2 already)
        start_node 3
        wait_node 3
        code=$(pull_n 2 --json invite | json_get code)
        cmd=${cmd//pull1-.../$code}
        node=3
    fi
    if [[ "$cmd" == *DYAD* ]]; then
        dyad=$(pull_n 1 --json dyad list | json_get 0.id)
        wait_until 15 "n2 has the dyad" pull_n 2 dyad show "${dyad:0:8}"
        cmd=${cmd//DYAD/${dyad:0:8}}
        cmd=$(printf '%s' "$cmd" | sed -E 's/ ([a-z]+)\|[a-z|]+ / \1 /')
        node=2
    fi
    args=${cmd#pull }
    out="$IT_TMP/readme/out.$ran"
    case "$args" in
    watch*) # a stream: it runs until stopped
        rc=0
        (cd "$IT_TMP/readme" && eval "timeout 1 \"\$PULL\" --data-dir \"\$(node_dir $node)\" $args") \
            >"$out" 2>&1 || rc=$?
        [ "$rc" = 124 ] || fail "README example '$cmd' exited $rc: $(cat "$out")"
        ;;
    *)
        (cd "$IT_TMP/readme" && eval "\"\$PULL\" --data-dir \"\$(node_dir $node)\" $args") \
            >"$out" 2>&1 || fail "README example '$cmd' failed: $(cat "$out")"
        ;;
    esac
    if [ "$args" = "search rust mentoring --kind offer" ]; then
        assert_contains "$(cat "$out")" "Rust mentor for beginners" "README search"
        assert_contains "$(cat "$out")" "shown" "README search footer"
    fi
    ran=$((ran + 1))
done <<<"$block"
[ "$ran" -ge 10 ] || fail "only $ran README examples ran"
grep -q '^pull search rust mentoring --kind offer' <<<"$block" ||
    fail "the README no longer shows pull search rust mentoring --kind offer"

log "case, accents, folded tags"
cafe=$(pull_n 1 --json offer add "Café in der Straße" --tag CAFÉ --tag Straße --tag café | json_get id)
assert_eq "$(pull_n 1 --json show "${cafe:0:10}" | json_get tags)" '["cafe", "strasse"]' "folded tags"
for w in CAFÉ Café cafe STRASSE strasse Straße; do
    search_has 1 "$cafe" "$w" || fail "search $w misses 'Café in der Straße'"
done
search_has 1 "$cafe" --tag café || fail "--tag café misses the record tagged CAFÉ"
search_has 1 "$cafe" --tag CAFE || fail "--tag CAFE misses the record tagged CAFÉ"

log "stems, languages, typos"
bike=$(pull_n 1 --json offer add "Bicycle repair" --body "flat tyres" | json_get id)
de=$(pull_n 1 --json offer add "Fahrräder reparieren" --tag lang-de | json_get id)
search_has 1 "$bike" bicycles || fail "bicycles misses 'Bicycle repair'"
search_has 1 "$de" fahrrad || fail "fahrrad misses the German 'Fahrräder reparieren'"
for w in mentoring mentr rsut mentors; do
    search_has 1 "$peer_offer" "$w" || fail "search $w misses 'Rust mentor for beginners'"
done
assert_eq "$(pull_n 1 --json search mentr --kind offer | json_get 0.id)" "$peer_offer" "typo: best hit"

log "counts"
for i in 1 2 3 4 5; do
    pull_n 1 need add "Garden help $i" --tag garden >/dev/null
done
assert_eq "$(pull_n 1 --json search garden --count)" '{"total":5}' "--json --count"
assert_eq "$(pull_n 1 --json search garden | json_get length)" 5 "--json search is the array"
assert_eq "$(pull_n 1 --json search garden --limit 2 | json_get length)" 2 "--limit 2"
assert_contains "$(pull_n 1 search garden --limit 2 | tail -n 1)" "2 of 5 shown (--limit N for more)" \
    "human footer"
assert_contains "$(pull_n 1 search garden | tail -n 1)" "5 of 5 shown" "human footer, all shown"
assert_contains "$(pull_n 1 search garden --count)" "5 matching records" "human --count"
assert_eq "$(pull_n 1 --json search zzznothing --count)" '{"total":0}' "--count of nothing"

log "limits in characters"
long=$(printf 'é%.0s' $(seq 70))
err=$(expect_fail 2 pull_n 1 offer add "$long")
assert_contains "$err" "70 characters (140 bytes)" "title limit"
assert_contains "$err" "at most 120 bytes" "title limit"
pull_n 1 offer add "$(printf 'é%.0s' $(seq 60))" >/dev/null || fail "60 x é (120 bytes) refused"

log "ok"
