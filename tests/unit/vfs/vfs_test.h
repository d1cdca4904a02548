/* vfs_test.h — helpers shared by the vfs tests: open a scratch namespace,
 * a seeded RNG and byte patterns. */
#ifndef NB_TESTS_VFS_TEST_H
#define NB_TESTS_VFS_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "vfs/vfs.h"

#include "test.h"

#define VFS_TEST_IGNORE(expr)                                                                      \
    do {                                                                                           \
        int vt__ignored = (expr);                                                                  \
        (void)vt__ignored;                                                                         \
    } while (0)

static inline uint64_t vt_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static inline uint64_t vt_below(uint64_t *s, uint64_t n)
{
    return n ? vt_rand(s) % n : 0;
}

static inline void vt_fill(uint64_t seed, uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = (uint8_t)(vt_rand(&seed) >> 56);
}

/* Test options: the block store from $NB_VFS_BLOCK_STORE ("dir" or "disk";
 * unset = dir), the kv engine from $NB_VFS_META_ENGINE (unset = kv's
 * default), no timer thread, a small cache. */
static inline void vt_options(vfs_options *o, const char *dir)
{
    vfs_options_init(o);
    o->data_dir = dir;
    o->block_store = getenv("NB_VFS_BLOCK_STORE");
    o->meta_engine = getenv("NB_VFS_META_ENGINE");
    o->maintain_interval_ms = -1;
    o->cache_bytes = 16u << 20;
}

static inline bool vt_disk_backend(void)
{
    const char *b = getenv("NB_VFS_BLOCK_STORE");
    return b && strcmp(b, "disk") == 0;
}

static inline vfs *vt_open(const char *dir)
{
    vfs_options o;
    vt_options(&o, dir);
    vfs *v = NULL;
    ASSERT_OK(vfs_open(&o, &v));
    return v;
}

/* Writes a whole file at path (created or truncated) through one handle. */
static inline void vt_put_file(vfs *v, const char *path, const void *data, size_t len)
{
    uint64_t parent;
    const char *leaf;
    ASSERT_OK(vfs_resolve_parent(v, NULL, path, &parent, &leaf));
    vfs_file *f;
    ASSERT_OK(vfs_create(v, NULL, parent, leaf, 0644, O_WRONLY | O_TRUNC, NULL, &f));
    if (len)
        ASSERT_OK(vfs_write(f, 0, data, len, NULL));
    ASSERT_OK(vfs_release(f));
}

/* Reads a whole file into *out (owned). */
static inline size_t vt_get_file(vfs *v, const char *path, uint8_t **out)
{
    vfs_attr a;
    ASSERT_OK(vfs_resolve(v, NULL, path, VFS_RESOLVE_FOLLOW, &a));
    vfs_file *f;
    ASSERT_OK(vfs_file_open(v, NULL, a.ino, O_RDONLY, &f));
    uint8_t *buf = nb_xmalloc(a.size + 1);
    size_t got = 0;
    ASSERT_OK(vfs_read(f, 0, buf, a.size + 1, &got));
    assert_int_equal(got, a.size);
    ASSERT_OK(vfs_release(f));
    *out = buf;
    return got;
}

#endif
