/*
 * log.h — leveled logging to stderr (or any fd).
 *
 * One line per message, written with a single write(2) so lines from
 * different threads never interleave:
 *
 *   2026-11-21T07:30:01.123Z INFO  [12345] server.c:88 listening on ...
 *
 * Thread safety: all functions may be called from any thread. The level and
 * fd are meant to be set once at start-up.
 */
#ifndef NB_COMMON_LOG_H
#define NB_COMMON_LOG_H

#include "common/status.h"

typedef enum {
    NB_LOG_DEBUG = 0,
    NB_LOG_INFO = 1,
    NB_LOG_WARN = 2,
    NB_LOG_ERROR = 3,
    NB_LOG_OFF = 4,
} nb_log_level;

void nb_log_set_level(nb_log_level level);
nb_log_level nb_log_get_level(void);
/* Parses "debug|info|warn|error|off"; returns 0 or NB_EUSAGE. */
int nb_log_level_parse(const char *s, nb_log_level *out) NB_MUST_CHECK;
/* Sends log lines to fd (default 2). The fd is borrowed, not closed. */
void nb_log_set_fd(int fd);

void nb_log_write(nb_log_level level, const char *file, int line, const char *fmt, ...)
    NB_PRINTF(4, 5);

#define NB__LOG(lvl, ...)                                                                          \
    do {                                                                                           \
        if ((lvl) >= nb_log_get_level())                                                           \
            nb_log_write((lvl), __FILE__, __LINE__, __VA_ARGS__);                                  \
    } while (0)
#define NB_DEBUG(...) NB__LOG(NB_LOG_DEBUG, __VA_ARGS__)
#define NB_INFO(...)  NB__LOG(NB_LOG_INFO, __VA_ARGS__)
#define NB_WARN(...)  NB__LOG(NB_LOG_WARN, __VA_ARGS__)
#define NB_ERROR(...) NB__LOG(NB_LOG_ERROR, __VA_ARGS__)

#endif
