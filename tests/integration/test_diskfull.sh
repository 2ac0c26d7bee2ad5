#!/usr/bin/env bash
# A full disk. n1's store directory (DATA_DIR/store) is a small tmpfs (8 MiB) mounted in a
# private mount namespace; a filler file takes most of it. Records are added until the
# store is full:
#   - the CLI gets one clear line on stderr (store full) and a non-zero exit;
#   - pulld keeps running and serving reads (search, show);
#   - once the filler is deleted, writes work again;
#   - nothing that was acknowledged is lost, also across a restart.
# Skipped (77) if mount namespaces or tmpfs mounts are not permitted.
if [ -z "${PULL_IT_MNTNS:-}" ]; then
    if unshare -m --propagation private true >/dev/null 2>&1; then
        PULL_IT_MNTNS=1 exec unshare -m --propagation private bash "$0" "$@"
    fi
    echo "SKIP: cannot create a mount namespace (unshare -m) to mount a small tmpfs" >&2
    exit 77
fi
source "$(dirname "$0")/cli_common.sh"

dir=$(node_dir 1)
mkdir -p "$dir/store"
chmod 700 "$dir" "$dir/store"
mount -t tmpfs -o size=8m,mode=0700 pull-it-full "$dir/store" ||
    skip "cannot mount a tmpfs here"
it_on_exit "umount -l '$dir/store'"

avail_kb() {
    df -k --output=avail "$dir/store" | tail -n 1 | tr -d ' '
}

start_node 1 --max-per-author 100000
wait_node 1
# tmpfs overwrites in place: LMDB writes through its map, whose blocks the store reserves
# before the map reaches them (a write into a hole of a full tmpfs would be SIGBUS)
grep -q "store: writes go through the map" "$(node_dir 1)/log" ||
    fail "the store on tmpfs does not write through its map"

acked=()
for k in 1 2 3 4 5; do
    acked+=("$(pull_n 1 --json offer add "Acknowledged before the disk filled $k" --tag keep | json_get id)")
done

# leave about 1.5 MiB for the store to grow into
filler="$dir/store/filler"
free_kb=$(avail_kb)
fallocate -l $(((free_kb - 1536) * 1024)) "$filler" 2>/dev/null ||
    dd if=/dev/zero of="$filler" bs=1024 count=$((free_kb - 1536)) status=none
log "tmpfs: $(avail_kb) KiB left after the filler"

body=$(python3 -c 'print(("lorem ipsum dolor sit amet " * 200)[:2900])')
err=""
n_ok=0
for k in $(seq 1 3000); do
    if out=$(pull_n 1 --json offer add "Filling offer $k" --body "$body" --tag fill 2>"$IT_TMP/err"); then
        acked+=("$(printf '%s' "$out" | json_get id)")
        n_ok=$((n_ok + 1))
    else
        err=$(cat "$IT_TMP/err")
        break
    fi
done
[ -n "$err" ] || fail "3000 offers of 3 KB fit into 1.5 MiB: the store never got full"
log "store full after $n_ok more offers; the CLI said: $err"
[ "$(printf '%s\n' "$err" | wc -l)" = 1 ] || fail "more than one line on stderr: $err"
case "$err" in
pull:*full*) ;;
*) fail "the error does not say the store is full: $err" ;;
esac

# pulld still runs and serves reads
node_alive 1 || fail "pulld died when the disk filled"
ms=$(timed_ms pull_n 1 status)
pull_n 1 status >/dev/null || fail "pull status fails with a full disk"
log "disk full: pull status answers in $ms ms"
search_has 1 "${acked[0]}" acknowledged || fail "search lost an acknowledged record"
pull_n 1 show "${acked[1]}" >/dev/null || fail "pull show fails with a full disk"
# still full: a second write fails the same way, and pulld stays up
if pull_n 1 offer add "Still full" --body "$body" >/dev/null 2>&1; then
    log "note: one more write fit after the first refusal"
fi
node_alive 1 || fail "pulld died after a second write on a full disk"
commit_errors=$(status_counter 1 commit_errors)
log "commit_errors counter: $commit_errors"

# free space: writes work again
rm -f "$filler"
log "filler deleted: $(avail_kb) KiB free"
after=""
for k in 1 2 3 4 5 6 7 8 9 10; do
    if after=$(pull_n 1 --json offer add "After the disk was freed" --tag keep 2>"$IT_TMP/err" | json_get id); then
        break
    fi
    after=""
    sleep 0.5
done
[ -n "$after" ] || fail "writes still fail after space was freed: $(cat "$IT_TMP/err")"
acked+=("$after")

# nothing acknowledged is lost, now and after a restart
check_all() {
    pull_n 1 --json search --limit 10000 >"$IT_TMP/all.json"
    printf '%s\n' "${acked[@]}" | python3 -c '
import json, sys
have = {r["id"] for r in json.load(open(sys.argv[1]))}
want = [l.strip() for l in sys.stdin if l.strip()]
lost = [w for w in want if w not in have]
print("%d acknowledged, %d live, %d lost" % (len(want), len(have), len(lost)))
sys.exit(1 if lost else 0)' "$IT_TMP/all.json"
}
check_all >&2 || fail "acknowledged records were lost"
stop_node 1
restart_node 1
check_all >&2 || fail "acknowledged records were lost across the restart"
stop_node 1
echo "PASS: store full handled, $n_ok offers before full, writes resumed after freeing space"
