/* pull search [WORDS...] [--kind K] [--tag T]... [--author ID] [--limit N] [--count]
 *
 * The human form asks pulld for the total as well ("total": true: the reply is then
 * {"records": [...], "total": M}) and ends with "N of M shown"; --json prints the array of
 * records as it always did; --count asks only for the total ({"total": M}). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "lib/mp.h"
#include "lib/record.h"

struct search_args {
    char **words;
    int nwords;
    const char *kind;
    const char *tags[RECORD_TAGS_MAX];
    unsigned ntags;
    char author[CLI_REF_MAX + 1];
    bool has_limit;
    uint64_t limit;
    bool count; /* --count: only the number of matches */
    bool total; /* human output: the records and the number of matches */
    bool trusted;
    uint64_t hops; /* --trusted [N] */
};

enum { OPT_KIND = CLI_OPT_USER, OPT_TAG, OPT_AUTHOR, OPT_LIMIT, OPT_COUNT, OPT_TRUSTED };

static void
pack(msgpack_packer *pk, void *ctx)
{
    const struct search_args *a = ctx;
    struct mp_open m, list;

    mp_open_map(&m, pk);
    if (a->nwords > 0) {
        mp_key(&m, "words");
        mp_open_array(&list, m.pk);
        for (int i = 0; i < a->nwords; i++)
            mp_pack_cstr(mp_item(&list), a->words[i]);
        mp_close(&list);
    }
    if (a->kind != NULL)
        mp_kv_str(&m, "kind", a->kind);
    if (a->ntags > 0) {
        mp_key(&m, "tags");
        mp_open_array(&list, m.pk);
        for (unsigned i = 0; i < a->ntags; i++)
            mp_pack_cstr(mp_item(&list), a->tags[i]);
        mp_close(&list);
    }
    if (a->author[0] != '\0')
        mp_kv_str(&m, "author", a->author);
    if (a->has_limit)
        mp_kv_uint(&m, "limit", a->limit);
    if (a->count)
        mp_kv_bool(&m, "count", true);
    if (a->total)
        mp_kv_bool(&m, "total", true);
    if (a->trusted)
        mp_kv_uint(&m, "trusted", a->hops);
    mp_close(&m);
}

/* pulld started over a large store and is still indexing it: say the answer may grow. */
static void
partial_note(const struct pull_rd *res)
{
    if (mv_bool(res, "partial", false))
        printf("(pulld is still indexing its store: more records may match in a moment)\n");
}

static int
human(struct pull_rd *res, void *ctx)
{
    const struct search_args *a = ctx;
    struct pull_rd probe = *res, recs;
    uint64_t total;
    uint32_t shown = 0;
    int rc;

    if (a->count) {
        total = mv_uint(res, "total", 0);
        printf("%llu matching record%s\n", (unsigned long long)total, total == 1 ? "" : "s");
        partial_note(res);
        return 0;
    }
    /* A pulld that does not count answers with the bare array. */
    if (mp_read_array(&probe, &shown) == 0)
        return rec_print_list(res, "iktgac", "no matching records");
    if (!mv_value(res, "records", &recs))
        return cli_error("pulld sent a search result without records");
    probe = recs;
    if (mp_read_array(&probe, &shown) != 0)
        return cli_error("pulld sent a result that is not a list");
    if ((rc = rec_print_list(&recs, "iktgac", "no matching records")) != 0)
        return rc;
    total = mv_uint(res, "total", shown);
    if (total > shown)
        printf("%u of %llu shown (--limit N for more)\n", shown, (unsigned long long)total);
    else if (shown > 0)
        printf("%u of %llu shown\n", shown, (unsigned long long)total);
    partial_note(res);
    return 0;
}

int
cmd_search(int argc, char **argv)
{
    static const struct option opts[] = {{"kind", required_argument, NULL, OPT_KIND},
                                         {"tag", required_argument, NULL, OPT_TAG},
                                         {"author", required_argument, NULL, OPT_AUTHOR},
                                         {"limit", required_argument, NULL, OPT_LIMIT},
                                         {"count", no_argument, NULL, OPT_COUNT},
                                         {"trusted", no_argument, NULL, OPT_TRUSTED},
                                         CLI_COMMON_OPTIONS};
    static const char *const kinds[] = {"offer", "need", "profile", "attestation"};
    struct search_args a;
    char *end;
    int c, rc;

    memset(&a, 0, sizeof(a));
    while ((c = cli_getopt(argc, argv, opts)) != -1) {
        switch (c) {
        case OPT_KIND: {
            bool ok = false;
            for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
                ok = ok || strcmp(optarg, kinds[i]) == 0;
            if (!ok)
                return cli_usage("--kind is offer, need, profile or attestation");
            a.kind = optarg;
            break;
        }
        case OPT_TAG:
            if (a.ntags >= RECORD_TAGS_MAX)
                return cli_usage("at most %d tags", RECORD_TAGS_MAX);
            a.tags[a.ntags++] = optarg[0] == '#' ? optarg + 1 : optarg;
            break;
        case OPT_AUTHOR:
            if ((rc = cli_parse_ref(optarg, a.author, "author")) != 0)
                return rc;
            break;
        case OPT_LIMIT:
            a.limit = strtoull(optarg, &end, 10);
            if (optarg[0] < '0' || optarg[0] > '9' || *end != '\0' || a.limit == 0 ||
                a.limit > 10000)
                return cli_usage("--limit is a number from 1 to 10000");
            a.has_limit = true;
            break;
        case OPT_COUNT:
            a.count = true;
            break;
        case OPT_TRUSTED:
            /* --trusted [N]: a number right after it is N (a word would be a query word) */
            a.trusted = true;
            a.hops = 2;
            if (optind < argc && argv[optind][0] >= '0' && argv[optind][0] <= '9') {
                a.hops = strtoull(argv[optind], &end, 10);
                if (*end != '\0' || a.hops > 6)
                    return cli_usage("--trusted N: N hops from 0 (you) to 6");
                optind++;
            }
            break;
        }
    }
    a.total = !cli.json && !a.count;
    a.words = argv + optind;
    a.nwords = argc - optind;
    return cli_run("search", pack, &a, human);
}
