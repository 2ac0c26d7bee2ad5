/*
 * sync_mail: the dyad service's way into the engine's mail (sync.h is the manual;
 * sync_int.h tells the rooms): its hooks (sync_set_mail), and the items it posts and looks
 * up, which proto/syncer keeps and relays. The executor (sync.c) calls the hooks (an item
 * arrived, a peer came up, is this a person of my dyads?) and loads the stored mail at
 * start.
 */
#include "daemon/sync_int.h"

#include <string.h>

#include "lib/err.h"

void
sync_set_mail(struct sync *s, const struct sync_mail_ops *ops)
{
    if (ops != NULL)
        s->mail = *ops;
    else
        memset(&s->mail, 0, sizeof(s->mail));
}

int
sync_mail_post(struct sync *s, const uint8_t *item, size_t len)
{
    int rc;

    if (s->stopped)
        return PULL_ERR_STATE;
    rc = syncer_mail_post(s->e, item, len, sync_now_ms(s));
    sync_drain(s);
    return rc;
}

bool
sync_mail_has(const struct sync *s, const uint8_t id[static 32])
{
    return syncer_mail_has(s->e, id);
}

void
sync_mail_each_inbox(const struct sync *s, void (*fn)(void *ctx, const uint8_t *item, size_t len),
                     void *ctx)
{
    syncer_mail_each_inbox(s->e, fn, ctx);
}
