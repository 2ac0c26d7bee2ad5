/*
 * pull-bench: benchmarks. Each subcommand lives in its own file (bench/bench_<name>.c,
 * exporting `int bench_<name>(int argc, char **argv)`) and prints `BENCH name value unit`
 * lines next to the physical limit it is compared with, measured on the same run.
 * Subcommands not linked into this build are declared weak and reported as missing.
 */
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "bench/bench.h"

#define WEAK __attribute__((weak))
WEAK int bench_gen(int argc, char **argv);
WEAK int bench_ingest(int argc, char **argv);
WEAK int bench_handshake(int argc, char **argv);
WEAK int bench_frame(int argc, char **argv);
WEAK int bench_recon(int argc, char **argv);
WEAK int bench_sim(int argc, char **argv);
WEAK int bench_sync(int argc, char **argv);
WEAK int bench_search(int argc, char **argv);
WEAK int bench_index(int argc, char **argv);
WEAK int bench_dyad(int argc, char **argv);
WEAK int bench_relevance(int argc, char **argv);
WEAK int bench_trust(int argc, char **argv);

static const struct {
    const char *name;
    int (*fn)(int, char **);
    const char *summary;
} commands[] = {
    {"gen", bench_gen, "gen N FILE: N signed records from many authors, as an import bundle"},
    {"ingest", bench_ingest, "decode+verify+store rate vs raw Ed25519 verify"},
    {"handshake", bench_handshake, "Secret Handshakes per second"},
    {"frame", bench_frame, "frame throughput vs raw secretstream"},
    {"recon", bench_recon, "set reconciliation of 1M-record sets, d = 1, 100, 10000"},
    {"sim", bench_sim, "gossip spread over 1,000 simulated nodes"},
    {"sync", bench_sync, "full sync of 100,000 records between two real nodes"},
    {"search", bench_search, "pull search latency over 100,000 records"},
    {"index", bench_index, "index DIR: the search index alone over a kept data dir"},
    {"dyad", bench_dyad, "100 dyads under churn in the simulator"},
    {"relevance", bench_relevance,
     "search quality on tests/relevance: top-3 pass rate, nDCG@10, MRR"},
    {"trust", bench_trust, "trust graph of 10,000 authors and 50,000 attestations; search with it"},
};

static void
usage(FILE *f)
{
    fprintf(f, "usage: pull-bench COMMAND [ARGS]\n\ncommands:\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(f, "  %-10s %s%s\n", commands[i].name, commands[i].summary,
                commands[i].fn ? "" : " (not in this build)");
}

int
main(int argc, char **argv)
{
    if (sodium_init() < 0) {
        fprintf(stderr, "pull-bench: libsodium failed to initialise\n");
        return 1;
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        if (strcmp(argv[1], commands[i].name) != 0)
            continue;
        if (commands[i].fn == NULL) {
            fprintf(stderr, "pull-bench: '%s' is not in this build yet\n", argv[1]);
            return 1;
        }
        return commands[i].fn(argc - 1, argv + 1);
    }
    fprintf(stderr, "pull-bench: unknown command '%s'\n", argv[1]);
    usage(stderr);
    return 1;
}
