#!/usr/bin/env bash
# The identity key file: pulld never follows a symbolic link to it (whoever controls the
# link's target would choose the node's key), and says so in one line instead of blaming
# permissions; it exits 2 (CONTRACT.md: a data dir or key problem). A key readable by
# others still gets the chmod advice.
source "$(dirname "$0")/cli_common.sh"

dir=$(node_dir 1)

# A real key, made by a first start.
start_nodes 1
stop_node 1
key="$dir/identity.key"
[ -f "$key" ] || fail "no identity key after the first start"

# The key moved elsewhere (0600, so a follower would find nothing wrong with it) and a
# symlink in its place.
mv "$key" "$IT_TMP/elsewhere.key"
ln -s "$IT_TMP/elsewhere.key" "$key"
rc=0
"$PULLD" --data-dir "$dir" --listen 127.0.0.1:0 --no-lan >"$IT_TMP/out" 2>&1 || rc=$?
assert_eq "$rc" 2 "pulld's exit status with a symlinked key"
out=$(cat "$IT_TMP/out")
assert_eq "$out" "pulld: $key is a symbolic link: pull refuses to follow it; replace it with the file itself" \
    "pulld's message"
[ ! -S "$dir/pulld.sock" ] || fail "pulld made a control socket with a symlinked key"

# A dangling symlink: the same (not a new key written through it).
rm "$key"
ln -s "$IT_TMP/nowhere.key" "$key"
rc=0
"$PULLD" --data-dir "$dir" --listen 127.0.0.1:0 --no-lan >"$IT_TMP/out" 2>&1 || rc=$?
assert_eq "$rc" 2 "pulld's exit status with a dangling symlink"
assert_contains "$(cat "$IT_TMP/out")" "is a symbolic link: pull refuses to follow it"
[ ! -e "$IT_TMP/nowhere.key" ] || fail "pulld wrote a key through the symlink"

# The file itself again: starts, with the same identity as before.
rm "$key"
mv "$IT_TMP/elsewhere.key" "$key"
restart_node 1

# Mode 0644: the permissions message, with its advice.
stop_node 1
chmod 644 "$key"
rc=0
"$PULLD" --data-dir "$dir" --listen 127.0.0.1:0 --no-lan >"$IT_TMP/out" 2>&1 || rc=$?
assert_eq "$rc" 2 "pulld's exit status with a key readable by others"
assert_contains "$(cat "$IT_TMP/out")" "chmod 600"
echo "ok"
