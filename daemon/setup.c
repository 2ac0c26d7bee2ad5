#include "daemon/setup.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/paths.h"

/* mkdir_p creates every missing component of path, the new ones with mode 0700. */
static int
mkdir_p(const char *path)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);

    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, path, n + 1);
    for (size_t i = 1; i < n; i++) {
        if (buf[i] != '/')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return -1;
        buf[i] = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

int
setup_data_dir(const char *dir, char *err, size_t errlen)
{
    struct stat st;

    if (dir == NULL || dir[0] == '\0') {
        snprintf(err, errlen, "no data directory");
        return PULL_ERR_IO;
    }
    if (lstat(dir, &st) != 0) {
        if (errno != ENOENT || mkdir_p(dir) != 0 || lstat(dir, &st) != 0) {
            snprintf(err, errlen, "cannot create data directory %s: %s", dir, strerror(errno));
            return PULL_ERR_IO;
        }
    }
    if (S_ISLNK(st.st_mode) && stat(dir, &st) != 0) {
        snprintf(err, errlen, "data directory %s: %s", dir, strerror(errno));
        return PULL_ERR_IO;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "data directory %s is not a directory", dir);
        return PULL_ERR_IO;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, errlen, "data directory %s belongs to another user (uid %u)", dir,
                 (unsigned)st.st_uid);
        return PULL_ERR_PERM;
    }
    if ((st.st_mode & 077) != 0) {
        if (chmod(dir, st.st_mode & 0700) != 0) {
            snprintf(err, errlen,
                     "data directory %s is accessible by others and chmod 700 "
                     "failed: %s",
                     dir, strerror(errno));
            return PULL_ERR_PERM;
        }
        log_warn("data directory %s was accessible by group or others (mode %03o): now 0700", dir,
                 (unsigned)(st.st_mode & 0777));
    }
    return 0;
}

int
setup_lock(const char *dir, int *fd, char *err, size_t errlen)
{
    char path[PATH_MAX], buf[32];
    ssize_t got;
    long pid = 0;
    int f;

    *fd = -1;
    if (paths_join(dir, PATHS_LOCK_NAME, path, sizeof(path)) != 0) {
        snprintf(err, errlen, "lock file path too long");
        return PULL_ERR_IO;
    }
    if ((f = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600)) < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return PULL_ERR_IO;
    }
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        if (e == EWOULDBLOCK) {
            /* the holder writes its pid right after locking: read what is there */
            if ((got = pread(f, buf, sizeof(buf) - 1, 0)) > 0) {
                buf[got] = '\0';
                pid = strtol(buf, NULL, 10);
            }
            if (pid > 0)
                snprintf(err, errlen, "pulld is already running on %s (pid %ld)", dir, pid);
            else
                snprintf(err, errlen, "pulld is already running on %s", dir);
            close(f);
            return PULL_ERR_EXISTS;
        }
        snprintf(err, errlen, "cannot lock %s: %s", path, strerror(e));
        close(f);
        return PULL_ERR_IO;
    }
    snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
    if (ftruncate(f, 0) != 0 || pwrite(f, buf, strlen(buf), 0) != (ssize_t)strlen(buf))
        log_warn("cannot write the pid into %s: %s", path, strerror(errno)); /* still locked */
    *fd = f;
    return 0;
}

int
setup_identity(const char *dir, struct ident *id, bool *created, char *err, size_t errlen)
{
    char path[PATH_MAX];
    struct stat st;
    int rc;

    *created = false;
    if ((rc = paths_join(dir, PATHS_KEY_NAME, path, sizeof(path))) != 0) {
        snprintf(err, errlen, "key file path too long");
        return PULL_ERR_IO;
    }
    /* A symlink is never followed (ident_load opens with O_NOFOLLOW): whoever controls
     * where it points would choose our key. Said as such, not as a permissions problem. */
    if (lstat(path, &st) == 0 && S_ISLNK(st.st_mode)) {
        snprintf(err, errlen,
                 "%s is a symbolic link: pull refuses to follow it; replace it with the file "
                 "itself",
                 path);
        return PULL_ERR_PERM;
    }
    rc = ident_load(path, id);
    if (rc == PULL_ERR_NOT_FOUND) {
        if ((rc = ident_generate(id)) != 0) {
            snprintf(err, errlen, "cannot generate an identity: %s", pull_strerror(rc));
            goto out;
        }
        if ((rc = ident_save(id, path)) != 0) {
            snprintf(err, errlen, "cannot write identity key %s: %s", path, pull_strerror(rc));
            goto out;
        }
        *created = true;
        return 0;
    }
    if (rc == PULL_ERR_PERM) {
        snprintf(err, errlen,
                 "identity key %s is readable or writable by group or others: "
                 "refusing to use it (chmod 600 %s if it has not leaked)",
                 path, path);
    } else if (rc == PULL_ERR_BAD_KEY) {
        snprintf(err, errlen, "identity key %s is not a valid key file", path);
    } else if (rc != 0) {
        snprintf(err, errlen, "cannot read identity key %s: %s", path, pull_strerror(rc));
        rc = PULL_ERR_IO;
    }
out:
    if (rc != 0)
        ident_wipe(id);
    return rc;
}
