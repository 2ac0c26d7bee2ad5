#!/usr/bin/env bash
# proto/ is sans-I/O: no sockets, no event loop, no LMDB or store, no files, no environment,
# no wall clock, no direct randomness, no libc allocator. Engines get time as now_ms, and
# randomness and memory through struct pull_env (lib/env.h).
#
# usage: check_boundary.sh SRC_ROOT [PROTO_ARCHIVE BASE_ARCHIVE]
#
# 1. Sources: proto/*.c and *.h with their comments stripped by the C preprocessor and string literals emptied
#    (-fpreprocessed: comments only, no includes or macros), searched for calls that
#    proto/ must not make.
# 2. Objects (when the two archives are given, as the build and ctest do): every symbol
#    that proto/'s objects leave undefined must be defined by proto/ itself or by pullbase,
#    or come from libsodium (not its RNG), msgpack-c, or the short libc/libm allowlist
#    below. This also catches calls hidden behind macros or written in ways a grep misses.
#
# Exit status 1 with the offending lines or symbols; 0 with "proto boundary ok".
set -eu
root=${1:-$(dirname "$0")/..}
proto_a=${2:-}
base_a=${3:-}
cc=${CC:-cc}
nm=${NM:-nm}
fail=0

# Calls proto/ must not make, as an extended regex over comment-free source.
forbidden='(^|[^A-Za-z0-9_.>])(((store|search|paths|bundle|uv|mdb|log)_[a-z0-9_]+)|ident_(load|save|generate)|env_system|randombytes[a-z0-9_]*|(fopen|fdopen|freopen|open|openat|creat|fread|fwrite|read|write|close|unlink|mkdir|stat|fstat|getenv|secure_getenv|setenv|time|clock_gettime|gettimeofday|clock|getrandom|rand|srand|random|socket|connect|bind|listen|accept|send|sendto|sendmsg|recv|recvfrom|recvmsg|malloc|calloc|realloc|free|strdup|strndup|aligned_alloc|posix_memalign|sodium_malloc|sodium_free|printf|fprintf|puts|perror|exit|abort|system|popen|fork|sleep|usleep|nanosleep)[[:space:]]*\()'

for f in "$root"/proto/*.c "$root"/proto/*.h; do
    # -fpreprocessed -dD -E: strip comments, keep directives, expand nothing. Line markers
    # ("# N") keep the original line numbers.
    hits=$("$cc" -fpreprocessed -dD -E -x c "$f" 2>/dev/null |
        awk -v file="$f" -v re="$forbidden" '
            /^# [0-9]+ / { line = $2 - 1; next }
            { line++; code = $0; gsub(/"([^"\\]|\\.)*"/, "\"\"", code) }
            code ~ re { printf "%s:%d: %s\n", file, line, $0 }')
    if [ -n "$hits" ]; then
        [ $fail -eq 1 ] || echo "proto/ must stay sans-I/O; offending lines:"
        echo "$hits"
        fail=1
    fi
done

if [ -n "$proto_a" ]; then
    # libc and libm functions proto/ may use: memory and string helpers, formatting into
    # buffers, sorting, math, byte order (msgpack-c's inline packers call ntohl & co. when
    # not optimised; clang turns memcmp() == 0 into bcmp). Nothing that reaches the system or
    # the heap.
    allow_libc='memcpy memmove memset memcmp bcmp memchr strlen strnlen strcmp strncmp strchr
        strrchr strstr snprintf vsnprintf qsort bsearch sqrt exp log log1p log2 pow floor
        ceil fabs abs labs llabs lround htonl htons ntohl ntohs __assert_fail __stack_chk_fail'
    defined=$( { "$nm" -P -g --defined-only "$proto_a"; "$nm" -P -g --defined-only "$base_a"; } 2>/dev/null |
        awk 'NF >= 2 && $1 !~ /:$/ && $1 !~ /\]$/ { print $1 }' | sort -u)
    # A fortified call (__memcpy_chk) counts as the call itself (memcpy).
    undefined=$("$nm" -P -g -u "$proto_a" | awk 'NF >= 2 && $1 !~ /:$/ && $1 !~ /\]$/ { print $1 }' |
        sed -E 's/^__([a-z0-9_]+)_chk$/\1/' | sort -u)
    if [ -z "$undefined" ]; then
        echo "no undefined symbols read from $proto_a (is NM=$nm right?)"
        exit 1
    fi
    bad=$(comm -23 <(echo "$undefined") <(echo "$defined") |
        grep -vxE '(crypto|sodium)_[a-z0-9_]+' |
        grep -vxE 'msgpack_[a-z0-9_]+' |
        grep -vxF -f <(tr -s ' \n' '\n' <<<"$allow_libc" | grep .) |
        grep -vxE '_GLOBAL_OFFSET_TABLE_' |
        grep -vxE '__(asan|ubsan|sanitizer|lsan|msan|tsan)_[A-Za-z0-9_]+|__(start|stop)___sancov_[a-z_]+|__sancov_[a-z_]+' ||
        true)
    # libsodium's RNG and the key pair generators that draw from it are not for proto/:
    # its randomness comes from the env (crypto_*_seed_keypair is fine).
    rng=$(echo "$undefined" | grep -xE 'randombytes_[a-z0-9_]+|crypto_[a-z0-9_]+_keypair|crypto_box_seal|sodium_malloc|sodium_allocarray|sodium_free' |
        grep -vE '_seed_keypair$' || true)
    if [ -n "$bad$rng" ]; then
        echo "proto/ references symbols outside pullbase, libsodium, msgpack-c and the libc allowlist:"
        for s in $bad $rng; do
            echo "  $s (in: $("$nm" -P -g -u -A "$proto_a" | awk -v s="$s" '$2 == s || $2 == "__" s "_chk" { sub(/:$/, "", $1); print $1 }' | sed 's/.*\[//; s/\]//' | tr '\n' ' '))"
        done
        fail=1
    fi
fi

if [ $fail -ne 0 ]; then
    exit 1
fi
echo "proto boundary ok"
