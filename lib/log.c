#include <config.h>
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

static enum log_level current_level = LOG_LEVEL_INFO;

static const char *const level_names[LOG_LEVEL_MAX] = {
    [LOG_LEVEL_ERR] = "err", [LOG_LEVEL_WARN] = "warn",
    [LOG_LEVEL_INFO] = "info", [LOG_LEVEL_DEBUG] = "debug",
};

void log_set_level(enum log_level level) { current_level = level; }

const char *log_level_to_string(enum log_level level)
{
    return level < LOG_LEVEL_MAX ? level_names[level] : NULL;
}

int log_level_from_string(const char *s)
{
    for (int i = 0; i < LOG_LEVEL_MAX; i++)
        if (streq(level_names[i], s))
            return i;
    return -1;
}

void log_msg(enum log_level level, const char *domain, const char *fmt, ...)
{
    if (level > current_level)
        return;
    char ts[32], msg[2048];
    va_list ap;
    format_utc_now(ts);
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    /* One write per line so lines from threads do not interleave. */
    fprintf(stderr, "%s %s %s: %s\n", ts, level_names[level], domain, msg);
}
