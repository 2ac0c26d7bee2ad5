/* The parts of ident that reach the operating system: key files and fresh keys from the
 * system RNG. They live in pullcore, out of reach of proto/ (lib/CMakeLists.txt). */
#include "lib/ident.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"

#define SEED_BYTES crypto_sign_ed25519_SEEDBYTES

int
ident_generate(struct ident *id)
{
    memset(id, 0, sizeof(*id));
    if (sodium_init() < 0)
        return PULL_ERR_CRYPTO;
    if (crypto_sign_ed25519_keypair(id->pk, id->sk) != 0) {
        ident_wipe(id);
        return PULL_ERR_CRYPTO;
    }
    return 0;
}

/* Writes all n bytes to fd, retrying on EINTR and short writes. */
static int
write_all(int fd, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return PULL_ERR_IO;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Reads exactly n bytes from fd; PULL_ERR_BAD_KEY if the file ends early. */
static int
read_all(int fd, uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t r = read(fd, p, n);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            return PULL_ERR_IO;
        }
        if (r == 0)
            return PULL_ERR_BAD_KEY;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int
ident_save(const struct ident *id, const char *path)
{
    int fd = -1, rc = 0;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        /* With O_CREAT|O_EXCL an existing symlink also fails with EEXIST. */
        return errno == EEXIST || errno == ELOOP ? PULL_ERR_EXISTS : PULL_ERR_IO;
    }
    /* The umask may only remove bits from 0600; fchmod makes the mode exact anyway. */
    if (fchmod(fd, 0600) != 0 || (rc = write_all(fd, id->sk, SEED_BYTES)) != 0 || fsync(fd) != 0) {
        rc = PULL_ERR_IO;
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        rc = PULL_ERR_IO;
        goto out;
    }
    fd = -1;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        unlink(path); /* never leave a partial key file behind */
    return rc;
}

int
ident_load(const char *path, struct ident *id)
{
    uint8_t seed[SEED_BYTES];
    struct stat st;
    int fd = -1, rc = 0;

    memset(id, 0, sizeof(*id));
    /* O_NONBLOCK so that a FIFO planted at path can't hang us; it is refused below. */
    fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        if (errno == ENOENT)
            return PULL_ERR_NOT_FOUND;
        if (errno == ELOOP)
            return PULL_ERR_PERM; /* a symlink: someone else may control where it points */
        return errno == EACCES ? PULL_ERR_PERM : PULL_ERR_IO;
    }
    if (fstat(fd, &st) != 0) {
        rc = PULL_ERR_IO;
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = PULL_ERR_BAD_KEY;
        goto out;
    }
    if ((st.st_mode & 077) != 0) {
        rc = PULL_ERR_PERM;
        goto out;
    }
    if (st.st_size != (off_t)SEED_BYTES) {
        rc = PULL_ERR_BAD_KEY;
        goto out;
    }
    if ((rc = read_all(fd, seed, sizeof(seed))) != 0)
        goto out;
    rc = ident_from_seed(id, seed);
out:
    sodium_memzero(seed, sizeof(seed));
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        ident_wipe(id);
    return rc;
}
