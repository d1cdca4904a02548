/* buf.c — slices and growable buffers (buf.h). */
#include "common/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/coding.h"
#include "common/mem.h"

nb_slice nb_slice_str(const char *s)
{
    return nb_slice_of(s, strlen(s));
}

int nb_slice_cmp(nb_slice a, nb_slice b)
{
    size_t n = a.len < b.len ? a.len : b.len;
    int c = n ? memcmp(a.ptr, b.ptr, n) : 0;
    if (c)
        return c;
    return a.len < b.len ? -1 : a.len > b.len;
}

int nb_slice_eq(nb_slice a, nb_slice b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

void nb_buf_init(nb_buf *b, size_t max)
{
    b->data = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

int nb_buf_reserve(nb_buf *b, size_t extra)
{
    if (extra > SIZE_MAX - b->len - 1)
        return NB_ETOOBIG;
    size_t need = b->len + extra;
    if (b->max && need > b->max)
        return NB_ETOOBIG;
    if (need + 1 <= b->cap) /* +1 keeps room for nb_buf_nul_terminate */
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need + 1)
        cap = cap > SIZE_MAX / 2 ? need + 1 : cap * 2;
    if (b->max && cap > b->max + 1)
        cap = b->max + 1;
    b->data = nb_xrealloc(b->data, cap);
    b->cap = cap;
    return 0;
}

int nb_buf_append(nb_buf *b, const void *p, size_t n)
{
    int rc = nb_buf_reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    return 0;
}

int nb_buf_append_str(nb_buf *b, const char *s)
{
    return nb_buf_append(b, s, strlen(s));
}

int nb_buf_appendf(nb_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return NB_EUSAGE;
    int rc = nb_buf_reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

int nb_buf_put_u8(nb_buf *b, uint8_t v)
{
    return nb_buf_append(b, &v, 1);
}

#define PUT_FIXED(name, type, nbytes, encoder)                                                     \
    int name(nb_buf *b, type v)                                                                    \
    {                                                                                              \
        uint8_t tmp[nbytes];                                                                       \
        encoder(tmp, v);                                                                           \
        return nb_buf_append(b, tmp, nbytes);                                                      \
    }
PUT_FIXED(nb_buf_put_u16le, uint16_t, 2, nb_put_u16le)
PUT_FIXED(nb_buf_put_u32le, uint32_t, 4, nb_put_u32le)
PUT_FIXED(nb_buf_put_u64le, uint64_t, 8, nb_put_u64le)
PUT_FIXED(nb_buf_put_u32be, uint32_t, 4, nb_put_u32be)
PUT_FIXED(nb_buf_put_u64be, uint64_t, 8, nb_put_u64be)
#undef PUT_FIXED

int nb_buf_put_varint(nb_buf *b, uint64_t v)
{
    uint8_t tmp[NB_VARINT64_MAX];
    uint8_t *end = nb_varint_encode(tmp, v);
    return nb_buf_append(b, tmp, (size_t)(end - tmp));
}

int nb_buf_put_lenprefixed(nb_buf *b, nb_slice s)
{
    size_t old = b->len;
    int rc = nb_buf_put_varint(b, s.len);
    if (rc == 0)
        rc = nb_buf_append(b, s.ptr, s.len);
    if (rc)
        b->len = old; /* all or nothing */
    return rc;
}

int nb_buf_nul_terminate(nb_buf *b)
{
    int rc = nb_buf_reserve(b, 0);
    if (rc)
        return rc;
    b->data[b->len] = 0;
    return 0;
}

void nb_buf_reset(nb_buf *b)
{
    b->len = 0;
}

uint8_t *nb_buf_take(nb_buf *b, size_t *len_out)
{
    uint8_t *d = b->data;
    if (len_out)
        *len_out = b->len;
    b->data = NULL;
    b->len = b->cap = 0;
    return d;
}

void nb_buf_free(nb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
