/*
 * alloc.c — the extent allocator: one bit per allocation unit (AU) of the
 * data region and two next-fit cursors, one for small extents (under
 * DISK__LARGE_AUS AUs, i.e. 64 KiB with 4 KiB AUs) and one for large ones.
 *
 * Why: blocks of the data path are 4 MiB except a file's last one, so the
 * workload is a mix of many full-size extents and a few small ones. Serving
 * the two from different cursors keeps small extents clustered together
 * instead of peppering the holes that freed 4 MiB extents leave, which is
 * what fragments a single next-fit heap. A bit per 4 KiB AU costs 32 MiB of
 * memory per TiB; the scan skips full and empty 64-AU words at once.
 * docs/disk.md has the fragmentation measurements.
 *
 * Not thread-safe: the engine calls it under disk_env.mu.
 */
#include <string.h>

#include "common/mem.h"

#include "disk_int.h"

static int bit(const disk__alloc *a, uint64_t i)
{
    return (int)((a->bits[i >> 6] >> (i & 63)) & 1);
}

static void set_range(disk__alloc *a, uint64_t au, uint64_t n, int on)
{
    for (uint64_t i = au; i < au + n; i++) {
        if (on)
            a->bits[i >> 6] |= 1ull << (i & 63);
        else
            a->bits[i >> 6] &= ~(1ull << (i & 63));
    }
}

void disk__alloc_init(disk__alloc *a, uint64_t n_au)
{
    uint64_t words = (n_au + 63) / 64;
    a->bits = nb_xcalloc(words ? words : 1, sizeof(uint64_t));
    a->n_au = n_au;
    a->used = 0;
    a->cursor_small = 0;
    a->cursor_large = n_au / 2;
    /* Bits past the end are permanently "in use" so runs never reach them. */
    for (uint64_t i = n_au; i < words * 64; i++)
        a->bits[i >> 6] |= 1ull << (i & 63);
}

void disk__alloc_grow(disk__alloc *a, uint64_t n_au)
{
    NB_ASSERT(n_au >= a->n_au);
    uint64_t old_words = (a->n_au + 63) / 64, words = (n_au + 63) / 64;
    if (words > old_words) {
        a->bits = nb_xrealloc(a->bits, words * sizeof(uint64_t));
        memset(a->bits + old_words, 0, (words - old_words) * sizeof(uint64_t));
    }
    /* The old "past the end" bits become free AUs; the new ones are set. */
    for (uint64_t i = a->n_au; i < n_au; i++)
        a->bits[i >> 6] &= ~(1ull << (i & 63));
    for (uint64_t i = n_au; i < words * 64; i++)
        a->bits[i >> 6] |= 1ull << (i & 63);
    a->n_au = n_au;
}

void disk__alloc_free_all(disk__alloc *a)
{
    free(a->bits);
    a->bits = NULL;
}

/* Finds n free AUs in [from, to); returns the first or UINT64_MAX. */
static uint64_t find_run(const disk__alloc *a, uint64_t from, uint64_t to, uint64_t n)
{
    uint64_t run = 0, start = from;
    uint64_t i = from;
    while (i < to) {
        if ((i & 63) == 0 && i + 64 <= to) {
            uint64_t w = a->bits[i >> 6];
            if (w == 0) {
                if (run == 0)
                    start = i;
                run += 64;
                if (run >= n)
                    return start;
                i += 64;
                continue;
            }
            if (w == ~0ull) {
                run = 0;
                i += 64;
                continue;
            }
        }
        if (bit(a, i)) {
            run = 0;
        } else {
            if (run == 0)
                start = i;
            if (++run >= n)
                return start;
        }
        i++;
    }
    return UINT64_MAX;
}

int disk__alloc_get(disk__alloc *a, uint64_t n, uint64_t *au)
{
    if (n == 0 || n > a->n_au - a->used)
        return NB_ENOSPACE;
    uint64_t *cursor = n >= DISK__LARGE_AUS ? &a->cursor_large : &a->cursor_small;
    uint64_t c = *cursor < a->n_au ? *cursor : 0;
    uint64_t at = find_run(a, c, a->n_au, n);
    if (at == UINT64_MAX) {
        uint64_t to = c + n - 1 < a->n_au ? c + n - 1 : a->n_au;
        at = find_run(a, 0, to, n);
    }
    if (at == UINT64_MAX)
        return NB_ENOSPACE;
    set_range(a, at, n, 1);
    a->used += n;
    *cursor = at + n;
    *au = at;
    return 0;
}

void disk__alloc_put(disk__alloc *a, uint64_t au, uint64_t n)
{
    NB_ASSERT(au + n <= a->n_au);
    for (uint64_t i = au; i < au + n; i++)
        NB_ASSERT(bit(a, i));
    set_range(a, au, n, 0);
    a->used -= n;
}

int disk__alloc_mark(disk__alloc *a, uint64_t au, uint64_t n)
{
    if (n == 0 || au >= a->n_au || n > a->n_au - au)
        return NB_ECORRUPT;
    for (uint64_t i = au; i < au + n; i++)
        if (bit(a, i))
            return NB_ECORRUPT;
    set_range(a, au, n, 1);
    a->used += n;
    return 0;
}

uint64_t disk__alloc_largest_free(const disk__alloc *a)
{
    uint64_t best = 0, run = 0;
    for (uint64_t i = 0; i < a->n_au; i++) {
        if ((i & 63) == 0 && i + 64 <= a->n_au && a->bits[i >> 6] == 0) {
            run += 64;
            i += 63;
        } else if (bit(a, i)) {
            run = 0;
        } else {
            run++;
        }
        if (run > best)
            best = run;
    }
    return best;
}
