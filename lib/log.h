/*
 * log: leveled logging to stderr (pulld runs in the foreground; its supervisor keeps logs).
 * Never log secrets: key material has no formatter here on purpose.
 */
#ifndef PULL_LOG_H
#define PULL_LOG_H

enum log_level { LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG };

/* log_set_level sets the most verbose level printed (default LOG_INFO). */
void log_set_level(enum log_level level);
enum log_level log_get_level(void);

/* log_parse_level parses "error", "warn", "info" or "debug"; returns 0 or PULL_ERR_INVAL. */
int log_parse_level(const char *s, enum log_level *level);

/* log_set_prefix sets a short tag printed on every line (e.g. the node's short id). The
 * string is copied. */
void log_set_prefix(const char *prefix);

void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)                                                         \
    do {                                                                       \
        if (log_get_level() >= LOG_DEBUG)                                      \
            log_msg(LOG_DEBUG, __VA_ARGS__);                                   \
    } while (0)

#endif
