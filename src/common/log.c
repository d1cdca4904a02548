/* log.c — leveled logging (log.h). */
#include "common/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/clock.h"

static _Atomic int log_level = NB_LOG_INFO;
static _Atomic int log_fd = 2;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};

void nb_log_set_level(nb_log_level level)
{
    atomic_store(&log_level, (int)level);
}

nb_log_level nb_log_get_level(void)
{
    return (nb_log_level)atomic_load_explicit(&log_level, memory_order_relaxed);
}

int nb_log_level_parse(const char *s, nb_log_level *out)
{
    for (int i = 0; i <= NB_LOG_OFF; i++) {
        if (strcasecmp(s, level_names[i]) == 0) {
            *out = (nb_log_level)i;
            return 0;
        }
    }
    if (strcasecmp(s, "warning") == 0) {
        *out = NB_LOG_WARN;
        return 0;
    }
    return NB_EUSAGE;
}

void nb_log_set_fd(int fd)
{
    atomic_store(&log_fd, fd);
}

void nb_log_write(nb_log_level level, const char *file, int line, const char *fmt, ...)
{
    int saved_errno = errno; /* logging must not disturb the caller's errno */
    char line_buf[2048];
    char ts[32];
    nb_time_iso8601(nb_wall_ns(), ts, sizeof ts);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    if (level > NB_LOG_OFF)
        level = NB_LOG_ERROR;
    int n = snprintf(line_buf, sizeof line_buf, "%s %-5s [%d] %s:%d ", ts, level_names[level],
                     (int)gettid(), base, line);
    if (n < 0)
        n = 0;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line_buf + n, sizeof line_buf - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = (size_t)n + (m < 0 ? 0 : (size_t)m);
    if (len > sizeof line_buf - 2)
        len = sizeof line_buf - 2; /* truncated: keep the newline */
    line_buf[len++] = '\n';
    ssize_t w = write(atomic_load(&log_fd), line_buf, len);
    (void)w; /* nowhere to report a failed log write */
    errno = saved_errno;
}
