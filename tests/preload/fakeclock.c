/*
 * libpull-fakeclock: an LD_PRELOAD library for the integration tests that moves a
 * process's wall clock by PULL_FAKE_CLOCK_OFFSET_S seconds (time, gettimeofday and
 * clock_gettime of the realtime clocks; the monotonic clock is left alone), so that a test
 * can run a pulld whose clock is wrong (test_diagnostics.sh: pull doctor's clock check).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <stdlib.h>
#include <sys/time.h>
#include <time.h>

static long
offset(void)
{
    const char *v = getenv("PULL_FAKE_CLOCK_OFFSET_S");

    return v != NULL ? strtol(v, NULL, 10) : 0;
}

int
clock_gettime(clockid_t clk, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    int rc;

    if (real == NULL)
        *(void **)&real = dlsym(RTLD_NEXT, "clock_gettime");
    rc = real(clk, ts);
    if (rc == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE))
        ts->tv_sec += offset();
    return rc;
}

time_t
time(time_t *t)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    if (t != NULL)
        *t = ts.tv_sec;
    return ts.tv_sec;
}

int
gettimeofday(struct timeval *restrict tv, void *restrict tz)
{
    struct timespec ts;

    (void)tz;
    clock_gettime(CLOCK_REALTIME, &ts);
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}
