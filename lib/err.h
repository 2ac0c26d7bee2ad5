/*
 * err: error codes of libpull.
 *
 * Every fallible function in pull returns int: 0 on success or a negative PULL_ERR_* code.
 * Codes from libsodium, LMDB and libuv are translated where they are called, so a caller
 * only ever sees these. pull_strerror() gives a short, lower-case, one-line message that
 * the CLI prints after "pull: ". Codes are stable: they cross the control socket.
 */
#ifndef PULL_ERR_H
#define PULL_ERR_H

#define PULL_ERR_LIST(X)                                                       \
    X(NOMEM, 1, "out of memory")                                               \
    X(INVAL, 2, "invalid argument")                                            \
    X(TRUNCATED, 3, "truncated input")                                         \
    X(TOO_BIG, 4, "input larger than allowed")                                 \
    X(MALFORMED, 5, "malformed encoding")                                      \
    X(NONCANONICAL, 6, "non-canonical encoding")                               \
    X(TRAILING, 7, "trailing bytes after the value")                           \
    X(UTF8, 8, "string is not valid UTF-8")                                    \
    X(DEPTH, 9, "nesting too deep")                                            \
    X(VERSION, 10, "unsupported version")                                      \
    X(KIND, 11, "unknown record kind")                                         \
    X(TITLE, 12, "title too long or empty")                                    \
    X(BODY, 13, "body too long")                                               \
    X(TAGS, 14, "too many tags")                                               \
    X(TAG, 15, "tag empty, too long or not lowercase")                         \
    X(EXPIRY, 16, "expiry out of bounds")                                      \
    X(CLOCK_SKEW, 17, "record created too far in the future")                  \
    X(EXPIRED, 18, "record has expired")                                       \
    X(BAD_SIG, 19, "bad signature")                                            \
    X(BAD_KEY, 20, "bad key")                                                  \
    X(FIELD, 21, "field has the wrong type or size")                           \
    X(LOCATION, 22, "location is not a geohash")                               \
    X(STALE, 23, "a newer version of this record is already stored")          \
    X(DUPLICATE, 24, "record already stored")                                  \
    X(NOT_FOUND, 25, "not found")                                              \
    X(AMBIGUOUS, 26, "ambiguous id prefix")                                    \
    X(STORE, 27, "store error")                                                \
    X(STORE_FULL, 28, "store is full (disk or map size)")                      \
    X(IO, 29, "input/output error")                                            \
    X(PERM, 30, "file permissions are unsafe")                                 \
    X(EXISTS, 31, "already exists")                                            \
    X(CRYPTO, 32, "cryptographic operation failed")                            \
    X(HANDSHAKE, 33, "handshake failed")                                       \
    X(PROTOCOL, 34, "protocol violation")                                      \
    X(CLOSED, 35, "connection closed")                                          \
    X(TIMEOUT, 36, "timed out")                                                \
    X(QUOTA, 37, "quota exceeded")                                             \
    X(STATE, 38, "not allowed in the current state")                           \
    X(SCHEMA, 39, "store schema version not supported")                        \
    X(UNSUPPORTED, 40, "not supported")                                        \
    X(AGAIN, 41, "try again")                                                  \
    X(NOT_RUNNING, 42, "pulld is not running")                                 \
    X(UNKNOWN_CMD, 43, "unknown command")                                      \
    X(ARITY, 44, "wrong number of arguments")                                  \
    X(ATTEST, 45, "attestation fields invalid")                                \
    X(CONTROL, 46, "text contains a control character")                        \
    X(TAG_DUP, 47, "duplicate tag")                                            \
    X(INVISIBLE, 48, "text contains an invisible or direction-changing character")

enum pull_err {
    PULL_OK = 0,
#define PULL_ERR_ENUM(name, num, msg) PULL_ERR_##name = -(num),
    PULL_ERR_LIST(PULL_ERR_ENUM)
#undef PULL_ERR_ENUM
};

/* pull_strerror returns a static one-line message for a PULL_ERR_* code (or 0). */
const char *pull_strerror(int err);

/* pull_errname returns the code's symbolic name without prefix ("BAD_SIG"), for JSON. */
const char *pull_errname(int err);

#endif
