/*
 * setup: the data directory and the identity key, before anything else runs.
 *
 * The data directory holds the identity key, the store and the control socket, so it must
 * be private: setup_data_dir creates it (and missing parents) with mode 0700, and if it
 * exists with group or other permission bits it removes them and logs a warning. The key
 * file is refused (never repaired) when group or others may read it: a key that others
 * could read must be considered leaked, and the person must decide.
 *
 * Both functions write a one-line reason into err on failure; pulld then exits with code 2.
 */
#ifndef PULL_SETUP_H
#define PULL_SETUP_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/ident.h"

/* setup_data_dir creates dir (0700) or repairs its permissions. Returns 0, PULL_ERR_IO
 * (cannot create, not a directory) or PULL_ERR_PERM (owned by another user). */
int setup_data_dir(const char *dir, char *err, size_t errlen);

/* setup_lock takes the data directory's lock, DIR/pulld.lock (an exclusive flock held
 * until the process exits; the file holds the pid), so that a second pulld on the same
 * directory stops before it touches anything. Returns 0 with *fd the open lock file (keep
 * it open), PULL_ERR_EXISTS if another process holds it (err: "pulld is already running
 * on DIR (pid N)"), or PULL_ERR_IO. */
int setup_lock(const char *dir, int *fd, char *err, size_t errlen);

/* setup_identity loads DIR/identity.key, or creates it (0600) when it does not exist
 * (*created is then true). Returns 0, PULL_ERR_PERM (a symbolic link, never followed: the
 * message says to put the file itself there; or readable by group or others: the message
 * says chmod 600), PULL_ERR_BAD_KEY or PULL_ERR_IO. On failure id is wiped. */
int setup_identity(const char *dir, struct ident *id, bool *created, char *err, size_t errlen);

#endif
