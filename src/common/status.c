/* status.c — messages and names for status codes (status.h). */
#include "common/status.h"

#include <stdarg.h>
#include <string.h>

#include "common/buf.h"
#include "common/log.h"

const char *nb_strerror(int rc)
{
    if (rc == 0)
        return "OK";
    switch (rc) {
#define NB__ERR_MSG(name, value, msg)                                                              \
    case NB_##name:                                                                                \
        return msg;
        NB_ERR_MAP(NB__ERR_MSG)
#undef NB__ERR_MSG
    default:
        break;
    }
    if (rc < 0 && rc > -4096) {
        const char *s = strerrordesc_np(-rc);
        if (s)
            return s;
    }
    return "unknown error";
}

const char *nb_errname(int rc)
{
    if (rc == 0)
        return "OK";
    switch (rc) {
#define NB__ERR_NAME(name, value, msg)                                                             \
    case NB_##name:                                                                                \
        return "NB_" #name;
        NB_ERR_MAP(NB__ERR_NAME)
#undef NB__ERR_NAME
    default:
        break;
    }
    if (rc < 0 && rc > -4096) {
        const char *s = strerrorname_np(-rc);
        if (s)
            return s;
    }
    return "E?";
}

void nb__assert_fail(const char *expr, const char *file, int line)
{
    nb_log_write(NB_LOG_ERROR, file, line, "assertion failed: %s", expr);
    abort();
}

int nb__corrupt(const char *file, int line, const char *fmt, ...)
{
    if (NB_LOG_ERROR < nb_log_get_level())
        return NB_ECORRUPT; /* logging is off (tests that corrupt on purpose) */
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    nb_log_write(NB_LOG_ERROR, file, line, "corruption: %s", msg);
    return NB_ECORRUPT;
}
