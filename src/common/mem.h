/*
 * mem.h — allocation that never returns NULL.
 *
 * Running out of memory aborts with a log line: propagating NOMEM through
 * every caller only pays with allocation-failure torture tests, which we
 * do not run (STYLE.md, "Ownership rules").
 */
#ifndef NB_COMMON_MEM_H
#define NB_COMMON_MEM_H

#include <stddef.h>

void *nb_xmalloc(size_t n);
void *nb_xcalloc(size_t count, size_t size);
void *nb_xrealloc(void *p, size_t n);
char *nb_xstrdup(const char *s);
char *nb_xstrndup(const char *s, size_t n);
/* Returns owned memory aligned to `align` (a power of two); free with free(). */
void *nb_xaligned_alloc(size_t align, size_t n);
/* Returns an owned formatted string; free with free(). */
char *nb_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
