#!/usr/bin/env bash
# The systemd user unit under a real user manager: `cmake --install --prefix /usr` into a
# scratch root, laid over /usr in a private mount namespace, then a `systemd --user` of its
# own for an unprivileged user (nobody, with a home on a tmpfs and a delegated cgroup), and
#  - `systemctl --user enable --now pulld` returns once pulld is ready (Type=notify) and
#    the unit is active; the installed `pull`, as that user with no flags, talks to it;
#  - every sandboxing option took effect in pulld's process: no new privileges, seccomp
#    filters, its own user and mount namespaces, / read-only but the data directory
#    writable, a private /tmp;
#  - kill -9 restarts it (Restart=on-failure), `systemctl --user stop` stops it cleanly.
# Needs root (mount namespace, cgroup delegation); exit 77 with the reason where the machine
# can't host a user manager.
source "$(dirname "$0")/cli_common.sh"

[ "$(id -u)" = 0 ] || skip "needs root: a mount namespace and a cgroup to delegate"
command -v systemctl >/dev/null && [ -x /lib/systemd/systemd ] ||
    skip "systemd is not installed (scripts/deps.sh installs it)"
unshare --mount --propagation private true 2>/dev/null || skip "no mount namespaces here"

log "cmake --install --prefix /usr into a scratch root"
root=$IT_TMP/root
DESTDIR=$root cmake --install "$PULL_BIN_DIR" --prefix /usr >"$IT_TMP/install.log" 2>&1 ||
    { cat "$IT_TMP/install.log" >&2; fail "cmake --install failed"; }
[ -f "$root/usr/lib/systemd/user/pulld.service" ] || fail "no unit installed"
assert_contains "$(cat "$root/usr/lib/systemd/user/pulld.service")" \
    "ExecStart=/usr/bin/pulld" "ExecStart under --prefix /usr"
unshare --mount --propagation private \
    mount -t overlay overlay -o "lowerdir=$root/usr:/usr" /usr 2>/dev/null ||
    skip "no overlayfs in a mount namespace here"

cat >"$IT_TMP/inner.sh" <<'EOF'
set -euo pipefail
root=$1 tmp=$2
uid=65534
U=(setpriv --reuid=$uid --regid=$uid --clear-groups)
mgr=""
cgs=()
say() { echo "-- $*" >&2; }
die() {
    echo "FAIL: $*" >&2
    [ -s "${HOME:-/nonexistent}/pulld.stderr" ] && tail -n 60 "$HOME/pulld.stderr" | sed 's/^/    pulld| /' >&2
    exit 1
}
skip() { echo "SKIP: $*" >&2; exit 77; }
has() { local all; all=$(cat); grep -q "$@" <<<"$all"; } # as in cli_common.sh
cleanup() {
    local rc=$? c
    set +e
    if [ -n "$mgr" ]; then
        "${U[@]}" systemctl --user stop pulld >/dev/null 2>&1
        kill -TERM "$mgr" 2>/dev/null
        for _ in $(seq 50); do kill -0 "$mgr" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$mgr" 2>/dev/null
    fi
    for c in "${cgs[@]}"; do
        echo $$ >"$(dirname "$c")/cgroup.procs" 2>/dev/null
        find "$c" -depth -type d -exec rmdir {} + 2>/dev/null
    done
    exit "$rc"
}
trap cleanup EXIT

mount -t overlay overlay -o "lowerdir=$root/usr:/usr" /usr
# A user manager refuses to start unless the system runs systemd.
mount -t tmpfs tmpfs /run/systemd 2>/dev/null || mount -t tmpfs tmpfs /run
mkdir -p /run/systemd/system
mount -t tmpfs tmpfs /home
mkdir -p /run/user
mount -t tmpfs tmpfs /run/user
export HOME=/home/pulltest XDG_RUNTIME_DIR=/run/user/$uid USER=nobody LOGNAME=nobody
mkdir -p -m 700 "$HOME" "$XDG_RUNTIME_DIR"
chown $uid:$uid "$HOME" "$XDG_RUNTIME_DIR"
unset DBUS_SESSION_BUS_ADDRESS NOTIFY_SOCKET

# A cgroup of our own for the user's manager: cgroup v2, or v1's name=systemd plus the
# hybrid's unified tree.
if [ -f /sys/fs/cgroup/cgroup.controllers ]; then
    trees=(/sys/fs/cgroup)
else
    trees=()
    for t in /sys/fs/cgroup/systemd /sys/fs/cgroup/unified; do
        [ -d "$t" ] && trees+=("$t")
    done
fi
[ ${#trees[@]} -gt 0 ] || skip "no cgroup tree systemd can use here"
for t in "${trees[@]}"; do
    c=$t/pull-test.$$
    mkdir "$c" 2>/dev/null || skip "cannot make a cgroup in $t (read-only cgroupfs?)"
    cgs+=("$c")
    chown -R $uid:$uid "$c"
    echo $$ >"$c/cgroup.procs" || skip "cannot move into a cgroup of $t"
done

say "systemd --user as uid $uid"
"${U[@]}" /lib/systemd/systemd --user >"$tmp/manager.log" 2>&1 &
mgr=$!
state=""
for _ in $(seq 100); do
    state=$("${U[@]}" systemctl --user is-system-running 2>/dev/null || true)
    case $state in running | degraded) break ;; esac
    kill -0 "$mgr" 2>/dev/null || break
    sleep 0.1
done
case $state in
running | degraded) ;;
*) skip "a systemd user manager does not come up here (state '$state'): $(tail -5 "$tmp/manager.log")" ;;
esac

asan=0
if case "$(ldd /usr/bin/pulld)" in *libasan*) true ;; *) false ;; esac; then
    asan=1
    # A sanitizer build: LeakSanitizer stops the process with ptrace at exit, which the
    # unit's SystemCallFilter= refuses (as it should). Leak checks run in the other tests.
    mkdir -p "$HOME/.config/systemd/user/pulld.service.d"
    printf '[Service]\nEnvironment=ASAN_OPTIONS=detect_leaks=0\n' \
        >"$HOME/.config/systemd/user/pulld.service.d/asan.conf"
    chown -R $uid:$uid "$HOME/.config"
fi
# pulld's own output (its log, a sanitizer's report) into a file the test shows on failure
mkdir -p "$HOME/.config/systemd/user/pulld.service.d"
: >"$HOME/pulld.stderr"
chown $uid:$uid "$HOME/pulld.stderr"
printf '[Service]\nStandardError=append:%s\n' "$HOME/pulld.stderr" \
    >"$HOME/.config/systemd/user/pulld.service.d/stderr.conf"
chown -R $uid:$uid "$HOME/.config"

say "systemctl --user enable --now pulld"
"${U[@]}" systemctl --user enable --now pulld 2>"$tmp/enable.log" ||
    { "${U[@]}" systemctl --user status pulld >&2 || true; die "enable --now: $(cat "$tmp/enable.log")"; }
[ "$("${U[@]}" systemctl --user is-active pulld)" = active ] || die "pulld is not active"
[ -L "$HOME/.config/systemd/user/default.target.wants/pulld.service" ] ||
    die "enable did not link the unit into default.target.wants"
pid=$("${U[@]}" systemctl --user show -p MainPID --value pulld)
[ "$pid" -gt 0 ] || die "no MainPID"
type=$("${U[@]}" systemctl --user show -p Type --value pulld)
if [ "$type" = notify ]; then
    status=$("${U[@]}" systemctl --user show -p StatusText --value pulld)
    case $status in "node "*) ;; *) die "StatusText is '$status', want the READY status" ;; esac
fi

say "the installed pull, as the same user with no flags, talks to it"
"${U[@]}" /usr/bin/pull id >"$tmp/id.out" 2>&1 || die "pull id: $(cat "$tmp/id.out")"
id=$("${U[@]}" /usr/bin/pull --json offer add "Unit test offer" --tag unit |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"${U[@]}" /usr/bin/pull --json search --tag unit | has "$id" || die "search does not list the offer"
[ -S "$HOME/.local/share/pull/pulld.sock" ] || die "no socket in ~/.local/share/pull"

say "the sandbox, seen from pulld's process $pid"
st=/proc/$pid/status
grep -q '^NoNewPrivs:[[:space:]]*1' "$st" || die "NoNewPrivileges: $(grep NoNewPrivs "$st")"
grep -q '^Seccomp:[[:space:]]*2' "$st" || die "no seccomp filter: $(grep Seccomp: "$st")"
[ "$(readlink /proc/$pid/ns/user)" != "$(readlink /proc/$mgr/ns/user)" ] ||
    die "PrivateUsers: pulld shares the manager's user namespace"
[ "$(readlink /proc/$pid/ns/mnt)" != "$(readlink /proc/$mgr/ns/mnt)" ] ||
    die "no mount namespace: ProtectSystem= and PrivateTmp= did not apply"
[ "$(readlink /proc/$pid/ns/uts)" != "$(readlink /proc/$mgr/ns/uts)" ] ||
    die "ProtectHostname: pulld shares the manager's UTS namespace"
touch /tmp/pull-unit-marker.$$
nsenter -t "$pid" -m sh -c "
    touch $HOME/probe 2>/dev/null && { echo 'home is writable' >&2; exit 1; }
    touch $XDG_RUNTIME_DIR/probe 2>/dev/null && { echo '/run/user is writable' >&2; exit 1; }
    touch /usr/probe 2>/dev/null && { echo '/usr is writable' >&2; exit 1; }
    touch $HOME/.local/share/pull/probe || { echo 'the data dir is read-only' >&2; exit 1; }
    rm $HOME/.local/share/pull/probe
    [ ! -e /tmp/pull-unit-marker.$$ ] || { echo '/tmp is not private' >&2; exit 1; }
" || die "the file-system sandbox (above)"
rm -f /tmp/pull-unit-marker.$$
for p in NoNewPrivileges PrivateUsers ProtectSystem PrivateTmp PrivateDevices \
    ProtectKernelModules ProtectKernelLogs ProtectClock ProtectHostname RestrictNamespaces \
    RestrictRealtime RestrictSUIDSGID LockPersonality MemoryDenyWriteExecute; do
    v=$("${U[@]}" systemctl --user show -p "$p" --value pulld)
    case $v in yes | strict) ;; *) die "$p is '$v'" ;; esac
done
for p in ProtectHome=read-only UMask=0077 \
    "RestrictAddressFamilies=AF_INET AF_INET6 AF_NETLINK AF_UNIX" \
    SystemCallArchitectures=native; do
    v=$("${U[@]}" systemctl --user show -p "${p%%=*}" --value pulld)
    [ "$v" = "${p#*=}" ] || die "${p%%=*} is '$v', want '${p#*=}'"
done

say "kill -9: Restart=on-failure brings it back"
kill -KILL "$pid"
for _ in $(seq 200); do
    npid=$("${U[@]}" systemctl --user show -p MainPID --value pulld)
    [ "$npid" != 0 ] && [ "$npid" != "$pid" ] &&
        [ "$("${U[@]}" systemctl --user is-active pulld)" = active ] && break
    sleep 0.1
done
[ "$npid" != 0 ] && [ "$npid" != "$pid" ] || die "pulld was not restarted after kill -9"
"${U[@]}" /usr/bin/pull --json show "${id:0:10}" | has "Unit test offer" ||
    die "the restarted pulld lost the offer"

say "systemctl --user stop: a clean exit"
"${U[@]}" systemctl --user stop pulld
st=$("${U[@]}" systemctl --user show -p ExecMainStatus --value pulld)
if [ "$st" != 0 ] && [ "$asan" = 1 ] && grep -q ' info: stopped$' "$HOME/pulld.stderr" &&
    grep -q 'LeakSanitizer has encountered a fatal error' "$HOME/pulld.stderr"; then
    # Seen about once in four sanitized runs under load, although the unit's environment
    # holds ASAN_OPTIONS=detect_leaks=0 (checked in /proc/PID/environ): pulld's own stop
    # ended ("stopped"), then the sanitizer's runtime failed to stop the world at exit
    # (ptrace, refused by SystemCallFilter=) and aborted. Not pulld's exit: said, not failed.
    say "sanitizer build: pulld stopped cleanly, then LeakSanitizer's exit check aborted (status $st)"
else
    [ "$st" = 0 ] || die "pulld's exit status on stop: $st"
    [ "$("${U[@]}" systemctl --user show -p Result --value pulld)" = success ] ||
        die "Result is not success"
fi
say "ok"
EOF

rc=0
unshare --mount --propagation private bash "$IT_TMP/inner.sh" "$root" "$IT_TMP" || rc=$?
[ "$rc" = 77 ] && exit 77
[ "$rc" = 0 ] || fail "the user unit (see above)"
