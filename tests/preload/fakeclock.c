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

static int (*real_clock_gettime)(clockid_t, struct timespec *);
static long offset_s;

/* fakeclock_init looks up the real clock_gettime and reads the offset once, before the
 * process starts its threads (clock_gettime looks them up itself if it is called before). */
__attribute__((constructor)) static void
fakeclock_init(void)
{
    const char *v = getenv("PULL_FAKE_CLOCK_OFFSET_S");

    *(void **)&real_clock_gettime = dlsym(RTLD_NEXT, "clock_gettime");
    offset_s = v != NULL ? strtol(v, NULL, 10) : 0;
}

int
clock_gettime(clockid_t clk, struct timespec *ts)
{
    int rc;

    if (real_clock_gettime == NULL)
        fakeclock_init();
    rc = real_clock_gettime(clk, ts);
    if (rc == 0 && (clk == CLOCK_REALTIME || clk == CLOCK_REALTIME_COARSE))
        ts->tv_sec += offset_s;
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
