/*
 * index.c — the in-memory index: open addressing with linear probing and
 * backward-shift deletion (no tombstones), kept at most 70% full (linear
 * probing degrades fast above that: ~32 probes per miss at 7/8). 32 bytes a
 * slot, so 1,000,000 blobs take 64 MiB.
 */
#include <string.h>

#include "common/mem.h"

#include "disk_int.h"

static uint64_t mix(uint64_t hi, uint64_t lo)
{
    uint64_t x = hi * 0x9e3779b97f4a7c15ull ^ lo;
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ull;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebull;
    x ^= x >> 31;
    return x;
}

static void alloc_slots(disk__map *m, uint64_t cap)
{
    m->slots = nb_xmalloc(cap * sizeof *m->slots);
    memset(m->slots, 0, cap * sizeof *m->slots); /* all DISK__EMPTY, pages faulted in order */
    m->cap = cap;
    m->n = 0;
}

void disk__map_init(disk__map *m, uint64_t expect)
{
    uint64_t cap = 64;
    while (cap * 7 / 10 < expect + 1)
        cap *= 2;
    alloc_slots(m, cap);
}

void disk__map_free(disk__map *m)
{
    free(m->slots);
    m->slots = NULL;
    m->cap = m->n = 0;
}

disk__ent *disk__map_get(const disk__map *m, uint64_t hi, uint64_t lo)
{
    uint64_t mask = m->cap - 1;
    for (uint64_t i = mix(hi, lo) & mask;; i = (i + 1) & mask) {
        disk__ent *s = &m->slots[i];
        if (s->off == DISK__EMPTY)
            return NULL;
        if (s->hi == hi && s->lo == lo)
            return s;
    }
}

static void grow(disk__map *m)
{
    disk__map old = *m;
    alloc_slots(m, old.cap * 2);
    for (uint64_t i = 0; i < old.cap; i++)
        if (old.slots[i].off != DISK__EMPTY)
            disk__map_put(m, &old.slots[i], NULL);
    free(old.slots);
}

int disk__map_put(disk__map *m, const disk__ent *e, disk__ent *old)
{
    NB_ASSERT(e->off != DISK__EMPTY);
    if ((m->n + 1) * 10 > m->cap * 7)
        grow(m);
    uint64_t mask = m->cap - 1;
    for (uint64_t i = mix(e->hi, e->lo) & mask;; i = (i + 1) & mask) {
        disk__ent *s = &m->slots[i];
        if (s->off == DISK__EMPTY) {
            *s = *e;
            m->n++;
            return 0;
        }
        if (s->hi == e->hi && s->lo == e->lo) {
            if (old)
                *old = *s;
            *s = *e;
            return 1;
        }
    }
}

int disk__map_del(disk__map *m, uint64_t hi, uint64_t lo, disk__ent *old)
{
    disk__ent *s = disk__map_get(m, hi, lo);
    if (!s)
        return 0;
    if (old)
        *old = *s;
    uint64_t mask = m->cap - 1;
    uint64_t i = (uint64_t)(s - m->slots);
    /* Backward shift: move later members of the probe run into the hole
     * when their home slot is not inside (hole, j]. */
    for (uint64_t j = (i + 1) & mask;; j = (j + 1) & mask) {
        disk__ent *t = &m->slots[j];
        if (t->off == DISK__EMPTY)
            break;
        uint64_t home = mix(t->hi, t->lo) & mask;
        int in_range = i <= j ? (home > i && home <= j) : (home > i || home <= j);
        if (!in_range) {
            m->slots[i] = *t;
            i = j;
        }
    }
    m->slots[i].off = DISK__EMPTY;
    m->n--;
    return 1;
}
