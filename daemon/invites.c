/* invites: the invitations this node handed out (invites.h is the manual). */
#include "daemon/invites.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "lib/err.h"
#include "lib/log.h"
#include "lib/paths.h"

#define LINE_MAX_BYTES 200

struct invite_entry {
    uint8_t hash[32];
    uint32_t uses, taken;
    uint64_t created_s, expires_s;
};

struct invites {
    char path[PATH_MAX];
    struct invite_entry e[INVITES_MAX];
    size_t n;
};

#define HASH_KEY "pull/invite/v1/hash" /* BLAKE2b's key: a domain, at least 16 bytes */

/* secret_hash: what the table keeps of a secret. BLAKE2b cannot fail with these sizes. */
static void
secret_hash(const uint8_t secret[INVITE_SECRET_BYTES], uint8_t out[32])
{
    int rc = crypto_generichash(out, 32, secret, INVITE_SECRET_BYTES, (const uint8_t *)HASH_KEY,
                                sizeof(HASH_KEY) - 1);

    assert(rc == 0);
    (void)rc;
}

/* ended: used up or expired at now_s. */
static bool
ended(const struct invite_entry *e, uint64_t now_s)
{
    return e->taken >= e->uses || e->expires_s <= now_s;
}

/* end_of: when the invitation stopped being usable (for keeping and dropping). */
static uint64_t
end_of(const struct invite_entry *e)
{
    return e->expires_s;
}

/* parse_line reads "v1 HASH USES TAKEN CREATED EXPIRES". */
static int
parse_line(const char *line, struct invite_entry *e)
{
    char hex[65];
    unsigned long uses, taken;
    unsigned long long created, expires;
    size_t bin_len = 0;
    int used = 0;

    if (sscanf(line, "v1 %64[0-9a-f] %lu %lu %llu %llu%n", hex, &uses, &taken, &created, &expires,
               &used) != 5 ||
        line[used] != '\0' || strlen(hex) != 64)
        return PULL_ERR_INVAL;
    if (sodium_hex2bin(e->hash, 32, hex, 64, NULL, &bin_len, NULL) != 0 || bin_len != 32)
        return PULL_ERR_INVAL;
    if (uses < 1 || uses > INVITES_USES_MAX || taken > uses)
        return PULL_ERR_INVAL;
    e->uses = (uint32_t)uses;
    e->taken = (uint32_t)taken;
    e->created_s = created;
    e->expires_s = expires;
    return 0;
}

int
invites_open(const char *data_dir, struct invites **out)
{
    struct invites *iv = NULL;
    char line[LINE_MAX_BYTES];
    FILE *f = NULL;
    unsigned lineno = 0;
    int rc = 0;

    *out = NULL;
    if ((iv = calloc(1, sizeof(*iv))) == NULL)
        return PULL_ERR_NOMEM;
    if ((rc = paths_join(data_dir, INVITES_FILE, iv->path, sizeof(iv->path))) != 0)
        goto out;
    if ((f = fopen(iv->path, "re")) == NULL) {
        if (errno != ENOENT) {
            log_error("cannot read %s: %s", iv->path, strerror(errno));
            rc = PULL_ERR_IO;
        }
        goto out;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        size_t len = strlen(line);
        lineno++;
        if (len > 0 && line[len - 1] == '\n')
            line[--len] = '\0';
        else if (!feof(f)) {
            int ch;
            while ((ch = fgetc(f)) != EOF && ch != '\n')
                ;
            log_warn("%s:%u: line too long, skipped", iv->path, lineno);
            continue;
        }
        if (len == 0 || line[0] == '#')
            continue;
        if (iv->n >= INVITES_MAX) {
            log_warn("%s: more than %d invitations, the rest skipped", iv->path, INVITES_MAX);
            break;
        }
        if (parse_line(line, &iv->e[iv->n]) != 0) {
            log_warn("%s:%u: not an invitation, skipped", iv->path, lineno);
            continue;
        }
        iv->n++;
    }
out:
    if (f != NULL)
        fclose(f);
    if (rc != 0) {
        invites_free(iv);
        return rc;
    }
    *out = iv;
    return 0;
}

void
invites_free(struct invites *iv)
{
    if (iv == NULL)
        return;
    sodium_memzero(iv, sizeof(*iv));
    free(iv);
}

/* save writes the table to a temporary file and renames it over the old one. */
static int
save(const struct invites *iv)
{
    char tmp[PATH_MAX + 8], hex[65];
    FILE *f = NULL;
    int fd = -1, rc = PULL_ERR_IO;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp", iv->path) >= (int)sizeof(tmp))
        return PULL_ERR_IO;
    (void)unlink(tmp);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
        log_error("cannot write %s: %s", tmp, strerror(errno));
        return PULL_ERR_IO;
    }
    if ((f = fdopen(fd, "w")) == NULL) {
        close(fd);
        goto out;
    }
    fprintf(f, "# pulld invitations (pull invite): v1 HASH USES TAKEN CREATED EXPIRES\n");
    for (size_t i = 0; i < iv->n; i++) {
        const struct invite_entry *e = &iv->e[i];
        sodium_bin2hex(hex, sizeof(hex), e->hash, 32);
        fprintf(f, "v1 %s %u %u %llu %llu\n", hex, (unsigned)e->uses, (unsigned)e->taken,
                (unsigned long long)e->created_s, (unsigned long long)e->expires_s);
    }
    if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
        log_error("cannot write %s: %s", tmp, strerror(errno));
        goto out;
    }
    if (fclose(f) != 0) {
        f = NULL;
        goto out;
    }
    f = NULL;
    if (rename(tmp, iv->path) != 0) {
        log_error("cannot rename %s: %s", tmp, strerror(errno));
        goto out;
    }
    rc = 0;
out:
    if (f != NULL)
        fclose(f);
    if (rc != 0)
        (void)unlink(tmp);
    return rc;
}

/* prune drops the invitations that ended more than INVITES_KEEP_S ago; with make_room,
 * if the table is still full, the one that ended first. */
static void
prune(struct invites *iv, uint64_t now_s, bool make_room)
{
    size_t j = 0;

    for (size_t i = 0; i < iv->n; i++) {
        const struct invite_entry *e = &iv->e[i];
        if (ended(e, now_s) && end_of(e) + INVITES_KEEP_S <= now_s)
            continue;
        iv->e[j++] = *e;
    }
    iv->n = j;
    if (make_room && iv->n >= INVITES_MAX) {
        size_t oldest = iv->n;
        for (size_t i = 0; i < iv->n; i++) {
            if (ended(&iv->e[i], now_s) &&
                (oldest == iv->n || iv->e[i].created_s < iv->e[oldest].created_s))
                oldest = i;
        }
        if (oldest < iv->n)
            iv->e[oldest] = iv->e[--iv->n];
    }
}

int
invites_add(struct invites *iv, const uint8_t secret[static INVITE_SECRET_BYTES], uint32_t uses,
            uint64_t now_s, uint64_t expires_s)
{
    struct invite_entry *e;
    int rc;

    if (uses < 1 || uses > INVITES_USES_MAX || expires_s <= now_s)
        return PULL_ERR_INVAL;
    prune(iv, now_s, true);
    if (iv->n >= INVITES_MAX)
        return PULL_ERR_QUOTA;
    e = &iv->e[iv->n];
    memset(e, 0, sizeof(*e));
    secret_hash(secret, e->hash);
    e->uses = uses;
    e->created_s = now_s;
    e->expires_s = expires_s;
    iv->n++;
    if ((rc = save(iv)) != 0) {
        iv->n--;
        return rc;
    }
    return 0;
}

int
invites_redeem(struct invites *iv, const uint8_t secret[static INVITE_SECRET_BYTES], uint64_t now_s,
               char *text, size_t n)
{
    uint8_t h[32];
    struct invite_entry *e = NULL;
    int rc;

    secret_hash(secret, h);
    for (size_t i = 0; i < iv->n; i++) {
        if (sodium_memcmp(iv->e[i].hash, h, 32) == 0) {
            e = &iv->e[i];
            break;
        }
    }
    sodium_memzero(h, sizeof(h));
    if (e == NULL) {
        snprintf(text, n, "unknown: not an invitation of this node (or one ended long ago)");
        return PULL_ERR_NOT_FOUND;
    }
    if (e->taken >= e->uses) {
        snprintf(text, n, "used up (%u of %u uses taken)", (unsigned)e->taken, (unsigned)e->uses);
        return PULL_ERR_QUOTA;
    }
    if (e->expires_s <= now_s) {
        snprintf(text, n, "expired %llu s ago", (unsigned long long)(now_s - e->expires_s));
        return PULL_ERR_EXPIRED;
    }
    e->taken++;
    if ((rc = save(iv)) != 0) {
        e->taken--;
        snprintf(text, n, "the inviting node could not record the use (disk?)");
        return rc;
    }
    snprintf(text, n, "accepted");
    return 0;
}

size_t
invites_open_count(const struct invites *iv, uint64_t now_s)
{
    size_t k = 0;

    for (size_t i = 0; i < iv->n; i++)
        k += !ended(&iv->e[i], now_s);
    return k;
}
