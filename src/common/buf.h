/*
 * buf.h — byte slices and growable byte buffers.
 *
 * nb_slice is a borrowed view (pointer + length), passed by value. nb_buf is
 * an owned, growable buffer the caller embeds; it may carry a size cap so a
 * peer cannot make us allocate without bound (curl's dynbuf). On a failed
 * append the buffer is left as it was.
 *
 * Thread safety: a buffer belongs to one thread at a time.
 */
#ifndef NB_COMMON_BUF_H
#define NB_COMMON_BUF_H

#include <stddef.h>
#include <stdint.h>

#include "common/status.h"

typedef struct nb_slice {
    const uint8_t *ptr;
    size_t len;
} nb_slice;

static inline nb_slice nb_slice_of(const void *p, size_t n)
{
    nb_slice s = {(const uint8_t *)p, n};
    return s;
}
/* A view of a NUL-terminated string, without the NUL. Borrows s. */
nb_slice nb_slice_str(const char *s);
/* memcmp order, shorter first on a common prefix. */
int nb_slice_cmp(nb_slice a, nb_slice b);
int nb_slice_eq(nb_slice a, nb_slice b);

typedef struct nb_buf {
    uint8_t *data; /* owned; NULL until the first append */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
    size_t max;    /* cap on len; 0 = unbounded */
} nb_buf;

#define NB_BUF_INIT                                                                                \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

/* Initialises an empty buffer whose length may never exceed max (0: no cap). */
void nb_buf_init(nb_buf *b, size_t max);
/* Makes room for `extra` more bytes; NB_ETOOBIG past the cap. */
int nb_buf_reserve(nb_buf *b, size_t extra) NB_MUST_CHECK;
int nb_buf_append(nb_buf *b, const void *p, size_t n) NB_MUST_CHECK;
int nb_buf_append_str(nb_buf *b, const char *s) NB_MUST_CHECK;
int nb_buf_appendf(nb_buf *b, const char *fmt, ...) NB_PRINTF(2, 3) NB_MUST_CHECK;
int nb_buf_put_u8(nb_buf *b, uint8_t v) NB_MUST_CHECK;
int nb_buf_put_u16le(nb_buf *b, uint16_t v) NB_MUST_CHECK;
int nb_buf_put_u32le(nb_buf *b, uint32_t v) NB_MUST_CHECK;
int nb_buf_put_u64le(nb_buf *b, uint64_t v) NB_MUST_CHECK;
int nb_buf_put_u32be(nb_buf *b, uint32_t v) NB_MUST_CHECK;
int nb_buf_put_u64be(nb_buf *b, uint64_t v) NB_MUST_CHECK;
int nb_buf_put_varint(nb_buf *b, uint64_t v) NB_MUST_CHECK;
/* A varint length followed by the bytes. */
int nb_buf_put_lenprefixed(nb_buf *b, nb_slice s) NB_MUST_CHECK;
/* Ensures data[len] == 0 (not counted in len) so data reads as a C string. */
int nb_buf_nul_terminate(nb_buf *b) NB_MUST_CHECK;
static inline nb_slice nb_buf_slice(const nb_buf *b)
{
    return nb_slice_of(b->data, b->len);
}
/* Empties the buffer, keeping its memory. */
void nb_buf_reset(nb_buf *b);
/* Returns the bytes (owned by the caller; free with free()) and leaves the
 * buffer empty. *len_out, if not NULL, receives the length. May return NULL
 * for an empty buffer. */
uint8_t *nb_buf_take(nb_buf *b, size_t *len_out);
/* Frees the memory; the buffer is empty and reusable afterwards. */
void nb_buf_free(nb_buf *b);

#endif
