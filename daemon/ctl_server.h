/*
 * ctl_server: pulld's control socket (DATA_DIR/pulld.sock, proto/ctl.h is the protocol).
 * It stands on the node (records, search, the network operations) and on the services
 * main.c hands it; it hears of new records and dyad events through the node's observers.
 *
 * ctl_server.c is the transport and the dispatcher with the one command table, ctl_call.c
 * the call and its one reply channel (replies, errors, streams); the commands live in
 * rooms by domain (ctl_status.c, ctl_records.c, ctl_search.c, ctl_dyads.c, ctl_bundles.c,
 * ctl_people.c, ctl_lookup.c, ctl_doctor.c, ctl_invite.c), which share daemon/ctl_int.h. Every request gets exactly one final reply, whatever its handler does.
 */
#ifndef PULL_CTL_SERVER_H
#define PULL_CTL_SERVER_H

#include "daemon/node.h"

struct dyads;
struct lan;
struct nat;
struct people;
struct ctl_server;

/* The services the control commands use besides the node (each may be NULL). */
struct ctl_services {
    struct dyads *dyads;
    struct lan *lan;
    struct nat *nat;       /* NULL with --nat off */
    struct people *people; /* names, handles, trust (daemon/people.h) */
};

/* ctl_server_start listens on DATA_DIR/pulld.sock (0600), refusing to start when another
 * pulld answers there. svc is copied. Returns 0 or a PULL_ERR_* after logging why; *out
 * is set whenever something was created (stop and free it). */
int ctl_server_start(struct node *n, const struct ctl_services *svc, struct ctl_server **out);

/* ctl_server_stop closes the listener and every client (streams get their end). Safe to
 * call twice and with NULL. */
void ctl_server_stop(struct ctl_server *srv);

/* ctl_server_free frees srv (after the loop ran the close callbacks). NULL does nothing. */
void ctl_server_free(struct ctl_server *srv);

#endif
