/* STUB: replaced by the control server. */
#include "daemon/node.h"
int ctl_server_start(struct node *n) { (void)n; return 0; }
void ctl_server_stop(struct node *n) { (void)n; }
void ctl_server_free(struct node *n) { (void)n; }
void ctl_server_on_stored(struct node *n, const struct envelope *env, const struct record *rec,
                          enum node_origin origin) { (void)n; (void)env; (void)rec; (void)origin; }
