/*
 * node_index: the search index at start (node.h, node_index_building). node_new indexes
 * the first NODE_INDEX_AT_START stored records before the node serves anything, which is
 * every record of most stores; a larger store is indexed on from there in slices of
 * NODE_INDEX_SLICE records, one per loop turn (a uv_idle), while the node serves: peers,
 * the control socket and commits go on between slices (a 1M-record store took 10 s to
 * index, and `pull status` did not answer until it was done). Commits add what they store
 * to the index as always; the build skips a record it reaches that a commit indexed
 * already (search_index_build_step). Until it is done, searches answer over what is
 * indexed and say so (ctl_search.c).
 */
#include "daemon/node.h"
#include "daemon/node_int.h"

#include <stdlib.h>

#include "lib/err.h"
#include "lib/log.h"

#define NODE_INDEX_AT_START 65536 /* records indexed before the node serves (~0.7 s) */
#define NODE_INDEX_SLICE 2048     /* records per loop turn after that (~20 ms) */
#define NODE_INDEX_TRIM_SLICES 64 /* the pages the walk mapped leave RSS this often */

/* PULL_INDEX_FIRST and PULL_INDEX_SLICE replace the two sizes (tests: a small store built
 * over many loop turns). */
static size_t
index_size(const char *var, size_t dflt)
{
    const char *v = getenv(var);
    unsigned long k = v != NULL ? strtoul(v, NULL, 10) : 0;

    return k >= 1 && k <= (1ul << 24) ? (size_t)k : dflt;
}

static void
index_done(struct node *n, int rc)
{
    struct node_batch *b = n->batch;

    if (rc != 0)
        log_warn("search index: %s (search will miss stored records)", pull_strerror(rc));
    b->ix.done = true; /* after an error too: search answers over what it holds */
    log_info("search index of %zu records in %llu ms", search_index_live(n->search),
             (unsigned long long)(node_now_ms(n) - b->ix_t0));
}

void
node_index_first(struct node *n)
{
    struct node_batch *b = n->batch;
    int rc;

    b->ix_t0 = node_now_ms(n);
    b->ix_slice = index_size("PULL_INDEX_SLICE", NODE_INDEX_SLICE);
    rc = search_index_build_step(n->search, n->store, node_now_s(n), &b->ix,
                                 index_size("PULL_INDEX_FIRST", NODE_INDEX_AT_START));
    if (rc != 0 || b->ix.done)
        index_done(n, rc);
    else
        log_info("search index: the first %zu records in %llu ms, the rest while serving",
                 search_index_live(n->search), (unsigned long long)(node_now_ms(n) - b->ix_t0));
}

static void
on_index_slice(uv_idle_t *h)
{
    struct node *n = h->data;
    struct node_batch *b = n->batch;
    int rc;

    if (n->stopping || b->ix.done) {
        uv_idle_stop(h);
        return;
    }
    rc = search_index_build_step(n->search, n->store, node_now_s(n), &b->ix, b->ix_slice);
    if (rc != 0 || b->ix.done) {
        uv_idle_stop(h);
        index_done(n, rc);
        node_trim_soon(n); /* the walk mapped the store's pages and grew the heap */
        return;
    }
    if (++b->ix_slices % NODE_INDEX_TRIM_SLICES == 0)
        node_trim_pages_soon(n);
}

void
node_index_resume(struct node *n)
{
    struct node_batch *b = n->batch;

    /* an idle handle runs once per loop turn, after the poll (which then does not block);
     * a 0 ms timer restarted from its own callback would run again in the same turn */
    if (!b->ix.done && b->handles)
        uv_idle_start(&b->ix_idle, on_index_slice);
}

bool
node_index_building(const struct node *n)
{
    return n->batch != NULL && !n->batch->ix.done;
}
