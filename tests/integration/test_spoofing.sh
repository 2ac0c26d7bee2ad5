#!/usr/bin/env bash
# Display spoofing: a title with a right-to-left override (U+202E) or zero-width characters
# shows as something it is not. Text rule 2 (proto/PROTOCOL.md, "Characters") refuses them
# in new records - made here, imported, or from peers - and the CLI never prints peer text
# raw: a record stored before the rule (planted by pull-legacy, as an older pulld stored
# it) is shown escaped by `pull search` and `pull show`, and \uXXXX in --json. (`pull watch`
# of such a record: tests/unit/test_cli.c, with a fake pulld.)
source "$(dirname "$0")/cli_common.sh"

LEGACY=${PULL_LEGACY:-$PULL_BIN_DIR/tests/pull-legacy}
[ -x "$LEGACY" ] || fail "no pull-legacy at $LEGACY"
RLO=$'\xe2\x80\xae'
ZWSP=$'\xe2\x80\x8b'
ZWJ=$'\xe2\x80\x8d'
BOM=$'\xef\xbb\xbf'
LRI=$'\xe2\x81\xa6'

# no_raw TEXT WHAT: TEXT holds none of the hidden characters raw (nor any escape byte).
no_raw() {
    python3 -c '
import sys
t = sys.stdin.buffer.read()
bad = [c for c in ("\u202e", "\u200b", "\u200d", "\ufeff", "\u2066", "\x1b") if c.encode() in t]
sys.exit("%s: raw %r in the output" % (sys.argv[1], bad) if bad else 0)' "$2" <<<"$1"
}

start_nodes 2
stop_node 1
planted=$("$LEGACY" "$(node_dir 1)" offer "free bike${RLO}ekib eerf" "ask${ZWSP}me, ${BOM}quickly${LRI}" bikes)
id=${planted#PLANTED }
[ ${#id} = 52 ] || fail "pull-legacy: $planted"
restart_node 1

log "search and show print the planted record escaped"
out=$(pull_n 1 search bike)
no_raw "$out" "pull search"
assert_contains "$out" "free bike<U+202E>ekib eerf" "pull search"
out=$(pull_n 1 show "$id")
no_raw "$out" "pull show"
assert_contains "$out" "free bike<U+202E>ekib eerf" "pull show: title"
assert_contains "$out" "ask<U+200B>me, <U+FEFF>quickly<U+2066>" "pull show: body"
out=$(pull_n 1 --json show "$id")
no_raw "$out" "pull --json show"
assert_contains "$out" '"title":"free bike\u202eekib eerf"' "pull --json show"
assert_eq "$(printf '%s' "$out" | json_get title)" "free bike${RLO}ekib eerf" "the JSON reads back"
out=$(pull_n 1 --json search bike)
no_raw "$out" "pull --json search"
assert_contains "$out" '\u202e' "pull --json search"

log "new records with hidden or control characters are refused"
for bad in "free bike${RLO}ekib eerf" "pay${ZWSP}pal" "b${ZWJ}ike" "${BOM}bike" "bike${LRI}x" \
    $'bell\x07' $'esc\x1b[31mred'; do
    err=$(expect_fail 2 pull_n 1 offer add "$bad")
    case "$bad" in
    *$'\x07'* | *$'\x1b'*) assert_contains "$err" "control character" ;;
    *) assert_contains "$err" "invisible or direction-changing character" ;;
    esac
done
expect_fail 2 pull_n 1 offer add "Bike" --body "fine${ZWSP}" >/dev/null
expect_fail 2 pull_n 1 offer add "Bike" --terms "fine${RLO}" >/dev/null
expect_fail 2 pull_n 1 offer add "Bike" --tag "b"$'\xd1\x96'"ke" >/dev/null # Cyrillic i
ok=$(pull_n 1 --json offer add "Caf"$'\xc3\xa9'" "$'\xe2\x9d\xa4\xef\xb8\x8f' --tag "v"$'\xc3\xa9'"lo" | json_get id)
[ ${#ok} = 52 ] || fail "an accented title with an emoji was refused"

log "nor taken in from a bundle or from a peer"
pull_n 1 export --all "$IT_TMP/all.bundle" >/dev/null
out=$(pull_n 2 --json import "$IT_TMP/all.bundle")
assert_eq "$(printf '%s' "$out" | json_get rejected)" 1 "n2 rejects the planted record"
assert_eq "$(printf '%s' "$out" | json_get imported)" 1 "n2 imports the other one"
connect 1 2
sleep 3
if search_has 2 "$id"; then fail "n2 took the planted record from n1"; fi
echo "ok"
