#!/usr/bin/env bash
# A damaged store. n1 stores records and stops; copies of its data dir are damaged the
# ways the "strangers" issue measured (truncated to 8 KiB: SIGBUS in LMDB; to 0: started
# empty without a word; 512 random bytes in a data page: SIGSEGV building the search index)
# and a flipped byte in a meta page. pulld must refuse each with exit code 2 and a one-line
# reason, never die of a signal; random damage anywhere must never kill it with a signal.
source "$(dirname "$0")/cli_common.sh"

PULL_BENCH=${PULL_BENCH:-$PULL_BIN_DIR/bench/pull-bench}
[ -x "$PULL_BENCH" ] || fail "no pull-bench binary at $PULL_BENCH"

start_node 1
wait_node 1
"$PULL_BENCH" gen 3000 "$IT_TMP/bundle" >/dev/null
pull_n 1 import "$IT_TMP/bundle" >/dev/null
pull_n 1 offer add "Kept through the damage" --tag keep >/dev/null
stop_node 1
good=$(node_dir 1)

# run_damaged NAME: pulld on data dir NAME for at most 3 s; sets RC (128+N: signal N),
# ERR (pulld's last line on stderr).
run_damaged() {
    local d=$IT_TMP/$1 pid n=0
    "$PULLD" --data-dir "$d" --listen 127.0.0.1:0 --no-lan >"$d/out" 2>"$d/err" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null && [ "$n" -lt 30 ]; do
        sleep 0.1
        n=$((n + 1))
    done
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid"
    fi
    RC=0
    wait "$pid" || RC=$?
    ERR=$(tail -n 1 "$d/err")
}

# copy NAME: a fresh copy of n1's data dir (key, config, store).
copy() {
    rm -rf "${IT_TMP:?}/$1"
    cp -a "$good" "$IT_TMP/$1"
    rm -f "$IT_TMP/$1/pulld.sock" "$IT_TMP/$1/log"
    echo "$IT_TMP/$1/store/data.mdb"
}

# expect_refused NAME WHAT: exit 2, one line "pulld: ..." naming the damage.
expect_refused() {
    run_damaged "$1"
    [ "$RC" -lt 128 ] || fail "$1: pulld died of signal $((RC - 128))"
    [ "$RC" = 2 ] || fail "$1: pulld exited $RC, want 2 (last line: $ERR)"
    case "$ERR" in
    "pulld: the store"*damaged*"$2"*) ;;
    *) fail "$1: the reason does not say the store is damaged ($2): $ERR" ;;
    esac
    log "$1: exit 2: $ERR"
}

f=$(copy t8k)
truncate -s 8192 "$f"
expect_refused t8k truncated

f=$(copy t0)
truncate -s 0 "$f"
expect_refused t0 empty

# a flipped byte in each meta page's transaction id, and in the current one's main root
meta() { # FILE OFFSET: the u64 at OFFSET (little-endian, as LMDB writes it on x86/arm)
    python3 -c 'import struct,sys; f=open(sys.argv[1],"rb"); f.seek(int(sys.argv[2])); print(struct.unpack("<Q", f.read(8))[0])' "$@"
}
flip() { # FILE OFFSET: flip the bits of one byte
    python3 -c 'import sys; f=open(sys.argv[1],"r+b"); f.seek(int(sys.argv[2])); b=f.read(1); f.seek(int(sys.argv[2])); f.write(bytes([b[0] ^ 0xff]))' "$@"
}
ps=$(meta "$good/store/data.mdb" 40)
ps=$((ps & 0xffffffff))
t0=$(meta "$good/store/data.mdb" $((16 + 128)))
t1=$(meta "$good/store/data.mdb" $((ps + 16 + 128)))
cur=0
[ "$t1" -gt "$t0" ] && cur=1
for m in 0 1; do
    f=$(copy "meta$m")
    flip "$f" $((m * ps + 16 + 128 + 5))
    expect_refused "meta$m" "meta"
done
f=$(copy metaroot)
flip "$f" $((cur * ps + 16 + 72 + 40))
expect_refused metaroot ""

# 512 random bytes over the main tree's root page, then in random data pages: refused, or
# (the bytes hit a free page or a record's value) started and stopped cleanly
root=$(meta "$good/store/data.mdb" $((cur * ps + 16 + 72 + 40)))
f=$(copy rndroot)
dd if=/dev/urandom of="$f" bs=1 count=512 seek=$((root * ps + 16)) conv=notrunc status=none
expect_refused rndroot ""
pages=$(($(stat -c %s "$good/store/data.mdb") / ps))
refused=0
ran=0
for k in $(seq 1 ${DAMAGE_ROUNDS:-12}); do
    f=$(copy "rnd$k")
    pg=$((2 + RANDOM % (pages - 2)))
    dd if=/dev/urandom of="$f" bs=1 count=512 seek=$((pg * ps + RANDOM % (ps - 512))) \
        conv=notrunc status=none
    run_damaged "rnd$k"
    [ "$RC" -lt 128 ] || fail "rnd$k (page $pg): pulld died of signal $((RC - 128))"
    case "$RC" in
    2) refused=$((refused + 1)) ;;
    0) ran=$((ran + 1)) ;;
    *) fail "rnd$k (page $pg): pulld exited $RC: $ERR" ;;
    esac
    rm -rf "${IT_TMP:?}/rnd$k"
done
log "random damage: $refused refused, $ran started and stopped cleanly, no signal"

# the undamaged store still starts and has everything
restart_node 1
search_has 1 "$(pull_n 1 --json search kept | json_get 0.id)" kept || fail "the record is gone"
stop_node 1
echo "PASS: damaged stores refused with exit 2, never a signal"
