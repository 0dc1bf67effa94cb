/* Structured logging to stderr: "LEVEL domain: message".  Each module
 * names its domain; library code logs at debug at most (STYLE.md). */
#ifndef YG_LOG_H
#define YG_LOG_H 1

enum log_level { LOG_LEVEL_ERR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG, LOG_LEVEL_MAX };

void log_set_level(enum log_level level);
int log_level_from_string(const char *s);   /* -1 when unknown */
const char *log_level_to_string(enum log_level level);
void log_msg(enum log_level level, const char *domain, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define log_err(dom, ...)   log_msg(LOG_LEVEL_ERR, dom, __VA_ARGS__)
#define log_warn(dom, ...)  log_msg(LOG_LEVEL_WARN, dom, __VA_ARGS__)
#define log_info(dom, ...)  log_msg(LOG_LEVEL_INFO, dom, __VA_ARGS__)
#define log_debug(dom, ...) log_msg(LOG_LEVEL_DEBUG, dom, __VA_ARGS__)

#endif
