#!/usr/bin/env bash
# The install, end to end: cpack makes the .deb from this build, dpkg installs it into a
# scratch root (its own dpkg database, --force-depends: the libraries are the host's), and
# the test then uses only what the package installed.
#  - the package: exactly the expected files (binaries, man pages, completions, user unit,
#    README), Depends met on this machine, the README's "Install" section naming each file;
#  - the installed pulld and pull: two nodes, connect, a record spreads; READY=1 and
#    STOPPING=1 on $NOTIFY_SOCKET when the unit says Type=notify (READY only once `pull id`
#    answers); the user's config file $XDG_CONFIG_HOME/pull/config under DATA_DIR/config
#    under the flags;
#  - the installed completions are what the installed `pull completion` prints, the man
#    pages are doc/'s;
#  - at the real paths (the package's /usr overlaid on this machine's, in a private mount
#    namespace): `systemd-analyze --user verify` on the unit passes without a word, and
#    bash-completion, zsh, fish and man find their files. Without mount namespaces the
#    unit is verified from the scratch root instead (ExecStart pointed there);
#  - dpkg -r removes every file.
source "$(dirname "$0")/cli_common.sh"

for t in cpack dpkg dpkg-deb dpkg-shlibdeps python3 systemd-analyze; do
    command -v "$t" >/dev/null || fail "$t is missing (scripts/deps.sh installs it)"
done
[ -f "$PULL_BIN_DIR/CPackConfig.cmake" ] || fail "no CPackConfig.cmake in $PULL_BIN_DIR"

log "cpack -G DEB"
cpack --config "$PULL_BIN_DIR/CPackConfig.cmake" -G DEB -B "$IT_TMP/pkg" >"$IT_TMP/cpack.log" 2>&1 ||
    { cat "$IT_TMP/cpack.log" >&2; fail "cpack failed"; }
deb=$(echo "$IT_TMP"/pkg/pull_*.deb)
[ -f "$deb" ] || fail "cpack made no pull_*.deb: $(ls "$IT_TMP/pkg")"
version=$("$PULL_BIN_DIR/cli/pull" --version | awk '{print $2}')
assert_eq "$(dpkg-deb -f "$deb" Package)" pull "Package"
assert_eq "$(dpkg-deb -f "$deb" Version)" "$version" "Version"
assert_eq "$(dpkg-deb -f "$deb" Architecture)" "$(dpkg --print-architecture)" "Architecture"

log "Depends are met on this machine"
deps=$(dpkg-deb -f "$deb" Depends)
assert_contains "$deps" libuv1 "Depends"
assert_contains "$deps" libsodium "Depends"
assert_contains "$deps" liblmdb "Depends"
for d in $(printf '%s\n' "$deps" | tr ',' '\n' | sed 's/(.*)//; s/|.*//' | tr -d ' '); do
    dpkg-query -W -f='${Status}' "$d" 2>/dev/null | has "install ok installed" ||
        fail "the package depends on $d, which is not installed here"
done

log "dpkg --root: install into a scratch root"
root=$IT_TMP/root
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates"
touch "$root/var/lib/dpkg/status"
dpkg --root="$root" --force-depends -i "$deb" >"$IT_TMP/dpkg.log" 2>&1 ||
    { cat "$IT_TMP/dpkg.log" >&2; fail "dpkg -i failed"; }
assert_contains "$(dpkg --root="$root" -s pull)" "install ok installed" "dpkg -s pull"

expected="/usr/bin/pull
/usr/bin/pull-bench
/usr/bin/pulld
/usr/lib/systemd/user/pulld.service
/usr/share/bash-completion/completions/pull
/usr/share/doc/pull/README.md
/usr/share/fish/vendor_completions.d/pull.fish
/usr/share/man/man1/pull.1.gz
/usr/share/man/man8/pulld.8.gz
/usr/share/zsh/vendor-completions/_pull"
files=$(dpkg --root="$root" -L pull | while read -r f; do
    [ -f "$root$f" ] && echo "$f"
done | sort)
[ "$files" = "$expected" ] || fail "installed files differ:
$(diff <(echo "$expected") <(echo "$files"))"
for f in /usr/bin/pull /usr/bin/pulld /usr/bin/pull-bench; do
    [ -x "$root$f" ] || fail "$f is not executable"
done

log "README's Install section names every installed file"
install_section=$(awk '/^## /{on = ($0 == "## Install")} on' "$IT_SRC_DIR/README.md")
[ -n "$install_section" ] || fail "README.md has no '## Install' section"
for f in $files; do
    assert_contains "$install_section" "$f" "README.md's Install section"
done
assert_contains "$install_section" "systemctl --user enable --now pulld" "README.md's Install section"

log "the installed completions and man pages"
P=$root/usr/bin/pull
cmp -s <("$P" completion bash) "$root/usr/share/bash-completion/completions/pull" ||
    fail "installed bash completion differs from 'pull completion bash'"
cmp -s <("$P" completion zsh) "$root/usr/share/zsh/vendor-completions/_pull" ||
    fail "installed zsh completion differs from 'pull completion zsh'"
cmp -s <("$P" completion fish) "$root/usr/share/fish/vendor_completions.d/pull.fish" ||
    fail "installed fish completion differs from 'pull completion fish'"
cmp -s <(zcat "$root/usr/share/man/man1/pull.1.gz") "$IT_SRC_DIR/doc/pull.1" || fail "pull.1 differs"
cmp -s <(zcat "$root/usr/share/man/man8/pulld.8.gz") "$IT_SRC_DIR/doc/pulld.8" || fail "pulld.8 differs"
unit=$root/usr/lib/systemd/user/pulld.service
assert_contains "$(cat "$unit")" "ExecStart=/usr/bin/pulld" "the unit's ExecStart"
assert_eq "$("$root/usr/bin/pulld" --version)" "pulld $version" "installed pulld --version"

# From here on the nodes are the installed pulld, driven by the installed pull.
PULLD=$root/usr/bin/pulld
PULL=$root/usr/bin/pull
# The user's config file is looked up under a home of the test's own.
export HOME=$IT_TMP/home XDG_CONFIG_HOME=$IT_TMP/xdg
mkdir -p "$HOME" "$XDG_CONFIG_HOME/pull"

notify_type=$(sed -n 's/^Type=//p' "$unit")
if [ "$notify_type" = notify ]; then
    log "Type=notify: READY=1 once the control socket answers"
    python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(60)
with open(sys.argv[2], "a") as out:
    while True:
        m = s.recv(4096).decode()
        out.write(m.replace("\n", " ") + "\n")
        out.flush()
        if "STOPPING=1" in m:
            break
' "$IT_TMP/notify.sock" "$IT_TMP/notify.log" &
    listener=$!
    n=0
    until [ -S "$IT_TMP/notify.sock" ]; do
        sleep 0.05
        n=$((n + 1))
        [ $n -lt 100 ] || fail "the notify listener did not start"
    done
    touch "$IT_TMP/notify.log"
    export NOTIFY_SOCKET=$IT_TMP/notify.sock
    start_node 1
    unset NOTIFY_SOCKET
    wait_until 10 "READY=1 from pulld" grep -q "READY=1" "$IT_TMP/notify.log"
    pull_n 1 id >/dev/null || fail "READY=1 came before the control socket answered"
    assert_contains "$(cat "$IT_TMP/notify.log")" "STATUS=node $(node_id 1 | cut -c1-8)" "status"
else
    log "Type=$notify_type (built without libsystemd): no readiness to check"
    start_node 1
    wait_node 1
fi

log "two installed nodes: connect, a record spreads"
start_node 2
wait_node 2
connect 1 2
id=$(pull_n 1 --json offer add "Packaged bike repair" --tag bike | json_get id)
wait_until 10 "n2 has n1's offer" search_has 2 "$id" bike
assert_eq "$(pull_n 2 --json show "${id:0:10}" | json_get title)" "Packaged bike repair" "show"

stop_node 1
if [ "$notify_type" = notify ]; then
    wait_until 10 "STOPPING=1 from pulld" grep -q "STOPPING=1" "$IT_TMP/notify.log"
    wait "$listener" || true
fi

log "config precedence: flags > DATA_DIR/config > \$XDG_CONFIG_HOME/pull/config > defaults"
printf 'max-conns 21\nmax-handshakes 22\nmail-max-items 23\n' >"$XDG_CONFIG_HOME/pull/config"
printf 'max-handshakes 32\nmail-max-items 33\n' >"$(node_dir 1)/config"
start_node 1 --mail-max-items 43
wait_node 1
limits=$(pull_n 1 --json status | json_get limits)
assert_eq "$(printf '%s' "$limits" | json_get max_conns)" 21 "max_conns (the user's file)"
assert_eq "$(printf '%s' "$limits" | json_get max_handshakes)" 32 "max_handshakes (data dir)"
assert_eq "$(printf '%s' "$limits" | json_get mail_max_items)" 43 "mail_max_items (flag)"
assert_eq "$(printf '%s' "$limits" | json_get ctl_max_clients)" 64 "ctl_max_clients (default)"
stop_node 1
log "a bad line in the user's file stops pulld with the file and line"
printf 'max-conns 21\nfrobnicate 1\n' >"$XDG_CONFIG_HOME/pull/config"
rc=0
"$PULLD" --data-dir "$(node_dir 1)" --listen 127.0.0.1:0 --no-lan >"$IT_TMP/bad.log" 2>&1 || rc=$?
assert_eq "$rc" 1 "pulld's exit code on a bad user config"
assert_contains "$(cat "$IT_TMP/bad.log")" "$XDG_CONFIG_HOME/pull/config:2: unknown key" "error"
rm "$XDG_CONFIG_HOME/pull/config"
stop_node 2

# ---- At the real paths, in a private mount namespace ----------------------------------
# The package's /usr is laid over this machine's (overlayfs, read-only), so the unit,
# completions and man pages sit where systemd, the shells and man look for them.
cat >"$IT_TMP/at_real_paths.sh" <<'EOF'
set -euo pipefail
root=$1 tmp=$2
mount -t overlay overlay -o "lowerdir=$root/usr:/usr" /usr
[ -x /usr/bin/pulld ] || { echo "no /usr/bin/pulld after the overlay" >&2; exit 1; }
export XDG_RUNTIME_DIR=$tmp/runtime
mkdir -p -m 700 "$XDG_RUNTIME_DIR"
out=$(systemd-analyze --user verify /usr/lib/systemd/user/pulld.service 2>&1) ||
    { echo "systemd-analyze verify failed: $out" >&2; exit 1; }
[ -z "$out" ] || { echo "systemd-analyze verify said: $out" >&2; exit 1; }
echo "verify ok"
[ "$(man -w pull)" = /usr/share/man/man1/pull.1.gz ] || { echo "man -w pull: $(man -w pull)" >&2; exit 1; }
[ "$(man -w 8 pulld)" = /usr/share/man/man8/pulld.8.gz ] || { echo "man -w pulld" >&2; exit 1; }
if [ -f /usr/share/bash-completion/bash_completion ]; then
    got=$(bash -c 'source /usr/share/bash-completion/bash_completion
        __load_completion pull || exit 1
        COMP_WORDS=(pull dyad ac); COMP_CWORD=2; _pull; echo "${COMPREPLY[*]}"')
    [ "$got" = "accept ack" ] || { echo "bash-completion's loader: got '$got'" >&2; exit 1; }
    echo "bash-completion ok"
fi
if command -v zsh >/dev/null; then
    got=$(HOME=$tmp zsh -fc 'autoload -Uz compinit; compinit -u -d $HOME/.zcompdump; print -r -- $_comps[pull]')
    [ "$got" = _pull ] || { echo "zsh: _comps[pull] is '$got'" >&2; exit 1; }
    echo "zsh ok"
fi
if command -v fish >/dev/null; then
    got=$(HOME=$tmp fish -c 'complete -C "pull of"' | cut -f1)
    [ "$got" = offer ] || { echo "fish: 'pull of' completes to '$got'" >&2; exit 1; }
    echo "fish ok"
fi
EOF
if unshare --mount --propagation private true 2>/dev/null &&
    unshare --mount --propagation private \
        mount -t overlay overlay -o "lowerdir=$root/usr:/usr" /usr 2>/dev/null; then
    log "at the real paths: systemd-analyze verify, completion loaders, man"
    unshare --mount --propagation private bash "$IT_TMP/at_real_paths.sh" "$root" "$IT_TMP" >&2 ||
        fail "the package at its real paths (see above)"
else
    log "no private mount namespace with overlayfs here: verifying the unit from the scratch root"
    sed "s|=/usr/bin/|=$root/usr/bin/|" "$unit" >"$IT_TMP/pulld.service"
    mkdir -p -m 700 "$IT_TMP/runtime"
    out=$(XDG_RUNTIME_DIR=$IT_TMP/runtime systemd-analyze --user --man=no verify \
        "$IT_TMP/pulld.service" 2>&1) || fail "systemd-analyze verify: $out"
    [ -z "$out" ] || fail "systemd-analyze verify said: $out"
fi

log "dpkg -r removes every file"
dpkg --root="$root" --force-depends -r pull >"$IT_TMP/dpkg-r.log" 2>&1 ||
    { cat "$IT_TMP/dpkg-r.log" >&2; fail "dpkg -r failed"; }
left=$(find "$root" -path "$root/var" -prune -o -type f -print)
[ -z "$left" ] || fail "files left after dpkg -r: $left"
log "ok"
