/* mem.c — aborting allocators (mem.h). */
#include "common/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

static void oom(size_t n)
{
    nb_log_write(NB_LOG_ERROR, __FILE__, __LINE__, "out of memory allocating %zu bytes", n);
    abort();
}

void *nb_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        oom(n);
    return p;
}

void *nb_xcalloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        oom(count * size);
    return p;
}

void *nb_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        oom(n);
    return q;
}

char *nb_xstrdup(const char *s)
{
    return nb_xstrndup(s, strlen(s));
}

char *nb_xstrndup(const char *s, size_t n)
{
    size_t len = strnlen(s, n);
    char *d = nb_xmalloc(len + 1);
    memcpy(d, s, len);
    d[len] = 0;
    return d;
}

void *nb_xaligned_alloc(size_t align, size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, align, n ? n : 1) != 0)
        oom(n);
    return p;
}

char *nb_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return s;
}
