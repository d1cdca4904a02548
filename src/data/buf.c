/*
 * buf.c — recycled block buffers.
 *
 * Every block a slice writer fills and every block the cache loads is a
 * DATA_BLOCK_SIZE buffer. Allocating each one afresh costs more than the
 * bytes it carries: glibc hands 4 MiB out of mmap or trims it back with
 * madvise, so each new buffer page-faults and is cleared page by page
 * before a byte is copied. A small free list keeps a few buffers mapped
 * and warm instead. The buffers are 4096-aligned, so a full block goes
 * from a writer to an O_DIRECT block store (disk) without a bounce copy.
 *
 * The list is bounded (DATA__BUF_KEEP): bursts beyond it allocate and
 * free as before, so idle memory stays at most that many blocks.
 */
#include <stdlib.h>

#include "common/mem.h"
#include "data/data_int.h"

struct data__bufpool {
    pthread_mutex_t mu;
    uint8_t *free[DATA__BUF_KEEP];
    size_t nfree;
};

data__bufpool *data__bufpool_new(void)
{
    data__bufpool *p = nb_xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    return p;
}

void data__bufpool_free(data__bufpool *p)
{
    if (!p)
        return;
    for (size_t i = 0; i < p->nfree; i++)
        free(p->free[i]);
    pthread_mutex_destroy(&p->mu);
    free(p);
}

uint8_t *data__buf_get(data__bufpool *p)
{
    uint8_t *b = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->nfree)
        b = p->free[--p->nfree];
    pthread_mutex_unlock(&p->mu);
    return b ? b : nb_xaligned_alloc(4096, DATA_BLOCK_SIZE);
}

void data__buf_put(data__bufpool *p, uint8_t *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&p->mu);
    if (p->nfree < DATA__BUF_KEEP) {
        p->free[p->nfree++] = b;
        b = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    free(b);
}
