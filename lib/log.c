#include "lib/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "lib/err.h"

static enum log_level current = LOG_INFO;
static char prefix[32];

void
log_set_level(enum log_level level)
{
    current = level;
}

enum log_level
log_get_level(void)
{
    return current;
}

int
log_parse_level(const char *s, enum log_level *level)
{
    static const char *names[] = {"error", "warn", "info", "debug"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(s, names[i]) == 0) {
            *level = (enum log_level)i;
            return 0;
        }
    }
    return PULL_ERR_INVAL;
}

void
log_set_prefix(const char *p)
{
    snprintf(prefix, sizeof(prefix), "%s", p != NULL ? p : "");
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
    static const char *tags[] = {"error", "warn", "info", "debug"};
    char line[1024];
    struct timespec ts;
    struct tm tm;
    va_list ap;
    int n;

    if (level > current)
        return;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    /* the date and the zone (Z: UTC), so that a line read days later says when */
    n = snprintf(line, sizeof(line),
                 "%04d-%02d-%02d %02d:%02d:%02d.%03ldZ %s%s%s: ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000, prefix,
                 prefix[0] ? " " : "", tags[level]);
    if (n < 0 || (size_t)n >= sizeof(line))
        n = 0;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One write per line so lines of concurrent processes don't interleave. */
    fprintf(stderr, "%s\n", line);
}
