/* Shared helpers for pull-bench subcommands. */
#ifndef PULL_BENCH_H
#define PULL_BENCH_H

#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* bench_now returns monotonic seconds as a double. */
static inline double
bench_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* bench_report prints one machine-readable line: BENCH name value unit. */
static inline void
bench_report(const char *name, double value, const char *unit)
{
    printf("BENCH %s %.6g %s\n", name, value, unit);
    fflush(stdout);
}

#endif
