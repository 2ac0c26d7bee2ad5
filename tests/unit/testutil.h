/* Helpers shared by the unit tests (linked into every tests/unit/test_*.c). */
#ifndef PULL_TESTUTIL_H
#define PULL_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* tu_hex decodes a hex string (spaces allowed) into out; returns the byte count. */
size_t tu_hex(const char *hex, uint8_t *out, size_t max);

/* tu_tmpdir creates a fresh temporary directory and returns its path (static buffer per
 * call index: copy it if you need several). tu_rmrf removes a tree. */
char *tu_tmpdir(void);
void tu_rmrf(const char *path);

#endif
