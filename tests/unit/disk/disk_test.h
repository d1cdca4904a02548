/*
 * disk_test.h — helpers shared by the disk engine's tests: deterministic
 * blob contents, small engine options, and the scale factor for sanitizer
 * builds.
 */
#ifndef NB_TESTS_DISK_TEST_H
#define NB_TESTS_DISK_TEST_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "disk/disk.h"

#include "test.h"

#ifdef NB_SANITIZED
#define DT_SCALE 4 /* sanitizer builds run loops this many times shorter */
#else
#define DT_SCALE 1
#endif

static inline uint64_t dt_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Fills buf with the content of version `ver` of blob `id`. */
static inline void dt_fill(uint8_t *buf, size_t len, disk_id id, uint64_t ver)
{
    uint64_t s = id.hi * 31 + id.lo * 131 + ver * 7919 + len;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = dt_rand(&s);
        memcpy(buf + i, &v, 8);
    }
    for (; i < len; i++)
        buf[i] = (uint8_t)dt_rand(&s);
}

/* 1 when buf holds version ver of blob id. */
static inline int dt_check(const uint8_t *buf, size_t len, disk_id id, uint64_t ver)
{
    uint8_t *want = malloc(len ? len : 1);
    dt_fill(want, len, id, ver);
    int ok = memcmp(want, buf, len) == 0;
    free(want);
    return ok;
}

static inline disk_id dt_id(uint64_t n)
{
    return (disk_id){n >> 8, n & 0xff};
}

/* Small engine: 32 MiB, given I/O mode. */
static inline void dt_opts(disk_options *o, int io_mode, int direct)
{
    disk_options_init(o);
    o->capacity = 32ull << 20;
    o->max_blob = 8u << 20;
    o->wal_max_bytes = 1u << 20;
    o->io_mode = io_mode;
    o->direct = direct;
}

#endif
