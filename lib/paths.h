/*
 * paths: where a node keeps its files. pulld and pull resolve the data directory the same
 * way (CONTRACT.md): --data-dir, else $PULL_HOME, else $XDG_DATA_HOME/pull, else
 * ~/.local/share/pull.
 */
#ifndef PULL_PATHS_H
#define PULL_PATHS_H

#include <stddef.h>

#define PATHS_SOCKET_NAME "pulld.sock"
#define PATHS_KEY_NAME "identity.key"
#define PATHS_STORE_NAME "store"
#define PATHS_CONFIG_NAME "config"
#define PATHS_LOCK_NAME "pulld.lock" /* held (flock) by the running pulld, holds its pid */

/* paths_data_dir writes the data directory into out (size n): `flag` if not NULL, else the
 * environment defaults. Returns 0, or PULL_ERR_INVAL if no directory can be determined or
 * it doesn't fit. */
int paths_data_dir(const char *flag, char *out, size_t n);

/* paths_join writes dir/name into out; PULL_ERR_TOO_BIG if it doesn't fit. */
int paths_join(const char *dir, const char *name, char *out, size_t n);

#endif
