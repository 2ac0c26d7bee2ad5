#!/usr/bin/env bash
# The shell completions against what the CLI accepts (no pulld needed):
#  - every command, verb and option the help texts name (`pull --help`, `pull CMD --help`)
#    is completed by bash, at its place (command, verb, option of that command), and by
#    fish; the zsh script names it;
#  - every command and verb runs its option parsing (`pull CMD [VERB] --help`) without the
#    "internal:" line cli_getopt prints when a getopt table and the command table differ,
#    so an option added to a command but not to the table fails here (test_cli checks
#    that the check does speak on each kind of difference);
#  - bash completes for real: COMP_WORDS/COMP_CWORD through _pull give the expected words,
#    option values (--kind choices, --data-dir directories) and files for export;
#  - fish (`complete -C`) and zsh (a real interactive zsh on a pty) complete too, when
#    installed (scripts/deps.sh installs both).
source "$(dirname "$0")/cli_common.sh"

comp=$IT_TMP/comp
mkdir -p "$comp"
"$PULL" completion bash >"$comp/pull.bash"
"$PULL" completion zsh >"$comp/_pull"
"$PULL" completion fish >"$comp/pull.fish"
bash -n "$comp/pull.bash" || fail "the bash script does not parse"

# bash_complete WORDS...: what _pull offers for the last word.
bash_complete() {
    bash -c 'source "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _pull
        printf "%s\n" "${COMPREPLY[@]}"' _ "$comp/pull.bash" "$@"
}
# has_word LIST WORD: LIST (one per line) holds WORD.
has_word() {
    printf '%s\n' "$1" | has -xF -- "$2"
}

log "commands: pull --help against the completions"
commands=$("$PULL" --help | awk '/^commands:/{on=1; next} /^$/{on=0} on {print $1}')
[ "$(echo "$commands" | wc -l)" -ge 10 ] || fail "could not read the commands of pull --help"
top=$(bash_complete pull "")
for c in $commands; do
    has_word "$top" "$c" || fail "bash does not complete the command '$c'"
done
for c in $top; do
    has_word "$commands" "$c" || fail "bash completes '$c', which pull --help does not list"
done
has_word "$top" completion && fail "the hidden command 'completion' is completed"

log "verbs and options: pull CMD --help against the completions"
checked=0
for c in $commands; do
    help=$("$PULL" "$c" --help 2>"$IT_TMP/err") || fail "pull $c --help failed"
    [ ! -s "$IT_TMP/err" ] || fail "pull $c --help wrote on stderr: $(cat "$IT_TMP/err")"
    # Verbs: the lowercase word after "pull CMD" in the synopsis lines (a|b|c for several).
    verbs=$(printf '%s\n' "$help" | sed -n "s/^\(usage:\)\? *pull $c \([a-z|]*\)\( .*\)\?$/\2/p" |
        tr '|' '\n' | sed '/^$/d' | sort -u)
    scopes=""
    if [ -n "$verbs" ]; then
        got=$(bash_complete pull "$c" "")
        for v in $verbs; do
            has_word "$got" "$v" || fail "bash does not complete the verb '$c $v'"
            scopes="$scopes $v"
        done
        for v in $got; do
            has_word "$verbs" "$v" || fail "bash completes '$c $v', which the help does not name"
        done
    fi
    # Options: every --name in the help must be completed for the command (for one of its
    # verbs at least), and running each verb's option parser must stay silent.
    opts=$(printf '%s\n' "$help" | grep -o -- '--[a-z][a-z-]*' | sort -u)
    all=""
    for v in ${scopes:-""}; do
        if [ -n "$v" ]; then
            "$PULL" "$c" "$v" --help >/dev/null 2>"$IT_TMP/err" || fail "pull $c $v --help failed"
            got=$(bash_complete pull "$c" "$v" --)
        else
            got=$(bash_complete pull "$c" --)
        fi
        [ ! -s "$IT_TMP/err" ] || fail "pull $c $v: $(cat "$IT_TMP/err")"
        all=$(printf '%s\n%s\n' "$all" "$got")
        for o in --json --data-dir --help; do
            has_word "$got" "$o" || fail "bash does not complete '$c $v $o'"
        done
    done
    for o in $opts; do
        has_word "$all" "$o" || fail "bash does not complete '$o' of 'pull $c'"
        grep -qE -- "'(\*|\(- \*\))?$o[=[']" "$comp/_pull" || fail "the zsh script lacks $o"
        grep -q -- " -l ${o#--}\b" "$comp/pull.fish" || fail "the fish script lacks $o"
        checked=$((checked + 1))
    done
done
[ "$checked" -ge 20 ] || fail "only $checked options found in the help texts"
log "$checked options of $(echo "$commands" | wc -l) commands completed"

log "unknown verbs; pull completion"
# A verb the table doesn't know is refused before any option parsing ...
out=$("$PULL" offer frobnicate --help 2>&1 >/dev/null) || true
assert_contains "$out" "unknown verb" "pull offer frobnicate"
# ... and `pull completion` itself goes through the same check: silent.
"$PULL" completion bash --help >/dev/null 2>"$IT_TMP/err"
[ ! -s "$IT_TMP/err" ] || fail "pull completion --help: $(cat "$IT_TMP/err")"
expect_fail 2 "$PULL" completion tcsh >/dev/null

log "bash completes for real"
assert_eq "$(bash_complete pull of | tr '\n' ' ')" "offer " "pull of"
assert_eq "$(bash_complete pull --json --data-dir /tmp dyad ac | tr '\n' ' ')" "accept ack " \
    "pull --json --data-dir /tmp dyad ac"
assert_eq "$(bash_complete pull offer add --expires "" | wc -w)" 0 "the value of --expires"
assert_eq "$(bash_complete pull search --kind "" | tr '\n' ' ')" \
    "offer need profile attestation " "pull search --kind"
assert_eq "$(bash_complete pull watch --kind "" | tr '\n' ' ')" "offer need " "pull watch --kind"
assert_eq "$(bash_complete pull help st | tr '\n' ' ')" "status " "pull help st"
mkdir -p "$IT_TMP/files/somedir"
touch "$IT_TMP/files/records.bundle"
assert_eq "$(bash_complete pull export "$IT_TMP/files/rec")" "$IT_TMP/files/records.bundle" \
    "pull export FILE"
assert_eq "$(bash_complete pull --data-dir "$IT_TMP/files/s")" "$IT_TMP/files/somedir" \
    "pull --data-dir DIR"
assert_eq "$(bash_complete pull - | tr '\n' ' ')" "--data-dir --json --help --version " "pull -"
assert_eq "$(bash_complete pull offer add --b)" "--body" "pull offer add --b"
assert_eq "$(bash_complete pull offer edit --ti)" "--title" "pull offer edit --ti"
assert_eq "$(bash_complete pull offer add --ti | wc -w)" 0 "--title is not for add"

if command -v fish >/dev/null; then
    log "fish completes"
    fish_complete() {
        HOME=$IT_TMP fish -c "source $comp/pull.fish; complete -C '$1'" | cut -f1 | tr '\n' ' '
    }
    fish -n "$comp/pull.fish" || fail "the fish script does not parse"
    assert_eq "$(fish_complete "pull of")" "offer " "fish: pull of"
    assert_eq "$(fish_complete "pull --data-dir /tmp dyad ac")" "accept ack " "fish: dyad ac"
    assert_eq "$(fish_complete "pull search --kind ")" "attestation need offer profile " \
        "fish: search --kind"
    assert_eq "$(fish_complete "pull offer edit --ti")" "--title " "fish: offer edit --ti"
    for c in $commands; do
        assert_contains "$(fish_complete "pull ")" "$c " "fish: the commands"
    done
else
    log "fish is not installed: its script is not run"
fi

if command -v zsh >/dev/null; then
    log "zsh completes (an interactive zsh on a pty)"
    zsh -n "$comp/_pull" || fail "the zsh script does not parse"
    # Types a line and TAB into an interactive zsh, and waits for the expected text.
    cat >"$IT_TMP/zpty.zsh" <<'EOF'
zmodload zsh/zpty
dir=$1
shift
zpty z "env -i HOME=$dir TERM=dumb PATH=/usr/bin:/bin zsh -f -i"
zpty -w z "PS1='P> '; fpath=($dir \$fpath); autoload -Uz compinit; compinit -u -d $dir/.zcd; unsetopt beep"
while (( $# >= 2 )); do
    line=$1 want=$2
    shift 2
    zpty -w -n z "$line"$'\t'
    all=''
    for i in {1..100}; do
        zpty -r -t z out && all+=$out
        [[ $all == *$want* ]] && break
        sleep 0.05
    done
    if [[ $all != *$want* ]]; then
        print -r -- "zsh: '$line<TAB>' did not show '$want': ${all//$'\r'/}" >&2
        exit 1
    fi
    zpty -w -n z $'\C-u'
done
zpty -d z
EOF
    cp "$comp/_pull" "$IT_TMP/_pull"
    timeout 60 zsh -f "$IT_TMP/zpty.zsh" "$IT_TMP" \
        "pull of" "pull offer " \
        "pull offer a" "pull offer add " \
        "pull search --kind " "attestation" \
        "pull dyad ac" "accept" ||
        fail "zsh completion (above)"
else
    log "zsh is not installed: its script is not run"
fi
log "ok"
