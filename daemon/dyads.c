/* STUB: replaced by the dyad service. */
#include "daemon/node.h"
int dyads_start(struct node *n) { (void)n; return 0; }
void dyads_stop(struct node *n) { (void)n; }
void dyads_free(struct node *n) { (void)n; }
void dyads_on_stored(struct node *n, const struct envelope *env, const struct record *rec)
{ (void)n; (void)env; (void)rec; }
int dyads_on_msg(struct node *n, const uint8_t from[static 32], const uint8_t *msg, size_t len)
{ (void)n; (void)from; (void)msg; (void)len; return 0; }
void dyads_on_peer_up(struct node *n, const uint8_t key[static 32]) { (void)n; (void)key; }
