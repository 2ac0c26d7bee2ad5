/*
 * invites: the invitations this node has handed out (`pull invite`) and their redemption
 * by the nodes that join with them (`pull join`, docs/DECISIONS.md "Invites").
 *
 * An invitation is a random 16-byte secret (lib/invite.h puts it in the code) with a number
 * of uses and an expiry. The node keeps, for each, only a hash of the secret (BLAKE2b-256),
 * the uses allowed and taken, when it was made and when it expires; a joiner presents the
 * secret in its HELLO (proto/msg.h) and the node answers "accepted" (one use taken) or why
 * not. So the table tells whether a code is good, but a copy of the table gives nobody a
 * code.
 *
 * Storage: DATA_DIR/invites, a text file of mode 0600, one invitation per line
 * ("v1 HASH USES TAKEN CREATED EXPIRES", hex and unix seconds), rewritten whole (a temporary
 * file renamed over it, after fsync) whenever an invitation is made or used, so that a use
 * is counted before the joiner hears "accepted". At most INVITES_MAX lines: an invitation
 * used up or expired is kept INVITES_KEEP_S after its end (so that a late joiner hears
 * "used up" or "expired", not "unknown"), then dropped; when the table is full, the ended
 * ones make room first, oldest first, and a node with INVITES_MAX open invitations refuses
 * a new one. A line that does not parse is skipped with a warning.
 *
 * Not thread-safe: the loop thread only.
 */
#ifndef PULL_INVITES_H
#define PULL_INVITES_H

#include <stddef.h>
#include <stdint.h>

#include "lib/invite.h"

#define INVITES_MAX 256
#define INVITES_USES_MAX 1000
#define INVITES_KEEP_S (7u * 86400u)
#define INVITES_FILE "invites"

struct invites;

/* invites_open loads DATA_DIR/invites (a missing file is an empty table) into *out.
 * Returns 0, PULL_ERR_NOMEM or PULL_ERR_IO (the file exists but cannot be read). */
int invites_open(const char *data_dir, struct invites **out);

/* invites_free frees iv (NULL does nothing). */
void invites_free(struct invites *iv);

/* invites_add records a new invitation of secret, good for uses joins until expires_s
 * (unix seconds), and saves the table. Returns 0, PULL_ERR_INVAL (uses out of
 * 1..INVITES_USES_MAX, expiry not after now), PULL_ERR_QUOTA (INVITES_MAX open
 * invitations) or PULL_ERR_IO (not saved: the invitation is not kept either). */
int invites_add(struct invites *iv, const uint8_t secret[static INVITE_SECRET_BYTES], uint32_t uses,
                uint64_t now_s, uint64_t expires_s);

/* invites_redeem checks a secret a joiner presented at now_s. If it names an open
 * invitation, one use is taken and saved, "accepted" is written to text and 0 returned;
 * otherwise text says why not ("used up (1 of 1 uses taken)", "expired 2 min ago",
 * "unknown: not an invitation of this node") and PULL_ERR_QUOTA (used up), PULL_ERR_EXPIRED,
 * PULL_ERR_NOT_FOUND or PULL_ERR_IO (the use could not be saved: refused) is returned. */
int invites_redeem(struct invites *iv, const uint8_t secret[static INVITE_SECRET_BYTES],
                   uint64_t now_s, char *text, size_t n);

/* invites_open_count: the invitations that can still be used at now_s. */
size_t invites_open_count(const struct invites *iv, uint64_t now_s);

#endif
