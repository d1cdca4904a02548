/*
 * test_meta.c — unit tests of the metadata model: formatting and
 * versions, namespace operations and their errno, permissions with
 * non-root credentials, readdir cursors, open-but-unlinked inodes, chunk
 * maps and truncation, ids, usage counters, xattrs, S3 records and
 * concurrent callers.
 */
#include <errno.h>
#include <pthread.h>
#include <sys/stat.h>

#include "kv/kv.h"
#include "meta/meta.h"
#include "meta/meta_format.h"

#include "meta_test.h"

#define ROOT META_ROOT_INO
static const meta_cred root_cred = {0, 0, 0, NULL};

static uint64_t mk(meta *m, uint64_t parent, const char *name, uint32_t mode)
{
    meta_attr a;
    if (S_ISDIR(mode))
        ASSERT_OK(meta_mkdir(m, &root_cred, parent, name, mode & 07777, &a));
    else
        ASSERT_OK(meta_mknod(m, &root_cred, parent, name, mode, 0, &a));
    return a.ino;
}

static uint64_t ino_of(meta *m, uint64_t parent, const char *name)
{
    meta_attr a;
    ASSERT_OK(meta_lookup(m, &root_cred, parent, name, &a));
    return a.ino;
}

static meta_attr attr(meta *m, uint64_t ino)
{
    meta_attr a;
    ASSERT_OK(meta_getattr(m, ino, &a));
    return a;
}

static void test_format(void **state)
{
    (void)state;
    meta *m = fresh("meta_format");
    meta_attr a = attr(m, ROOT);
    assert_true(S_ISDIR(a.mode));
    assert_int_equal(a.mode & 07777, 0755);
    assert_int_equal(a.nlink, 2);
    meta_statfs st;
    meta_statfs_get(m, &st);
    assert_int_equal(st.inodes_used, 1);
    mk(m, ROOT, "f", S_IFREG | 0644);
    m = reopen(m);
    ino_of(m, ROOT, "f");
    meta_statfs_get(m, &st);
    assert_int_equal(st.inodes_used, 2);
    meta_close(m);
    meta_close(NULL);

    /* A newer format version is refused. */
    kv_db *db = NULL;
    ASSERT_OK(kv_open(getenv("NB_KV_ENGINE"), g_dir, NULL, &db));
    nb_buf v = NB_BUF_INIT;
    uint8_t fk[1] = {META_K_FORMAT};
    ASSERT_OK(kv_get(db, NULL, nb_slice_of(fk, 1), &v));
    v.data[4] = META_FORMAT_VERSION + 1;
    kv_batch *b = kv_batch_new();
    kv_batch_put(b, nb_slice_of(fk, 1), nb_buf_slice(&v));
    ASSERT_OK(kv_write(db, b, KV_SYNC));
    kv_close(db);
    ASSERT_RC(meta_open(g_dir, opts(), &m), NB_EVERSION);
    assert_null(m);

    /* A non-empty store without a format record is corrupt. */
    ASSERT_OK(kv_open(getenv("NB_KV_ENGINE"), g_dir, NULL, &db));
    kv_batch_clear(b);
    kv_batch_delete(b, nb_slice_of(fk, 1));
    ASSERT_OK(kv_write(db, b, KV_SYNC));
    kv_close(db);
    ASSERT_RC(meta_open(g_dir, opts(), &m), NB_ECORRUPT);
    kv_batch_free(b);
    nb_buf_free(&v);
}

static void test_names(void **state)
{
    (void)state;
    meta *m = fresh("meta_names");
    meta_attr a;
    char longname[300];
    memset(longname, 'x', 256);
    longname[256] = 0;
    ASSERT_RC(meta_mkdir(m, &root_cred, ROOT, longname, 0755, &a), -ENAMETOOLONG);
    longname[255] = 0;
    ASSERT_OK(meta_mkdir(m, &root_cred, ROOT, longname, 0755, &a));
    ASSERT_RC(meta_mkdir(m, &root_cred, ROOT, "a/b", 0755, &a), -EINVAL);
    ASSERT_RC(meta_mkdir(m, &root_cred, ROOT, "", 0755, &a), -ENOENT);
    ASSERT_RC(meta_mkdir(m, &root_cred, ROOT, ".", 0755, &a), -EEXIST);
    ASSERT_RC(meta_mkdir(m, &root_cred, ROOT, "..", 0755, &a), -EEXIST);
    ASSERT_RC(meta_lookup(m, &root_cred, ROOT, "a/b", &a), -EINVAL);
    ASSERT_OK(meta_lookup(m, &root_cred, ROOT, ".", &a));
    assert_int_equal(a.ino, ROOT);
    ASSERT_OK(meta_lookup(m, &root_cred, ROOT, "..", &a));
    assert_int_equal(a.ino, ROOT);
    uint64_t d = mk(m, ROOT, "d", S_IFDIR | 0755);
    ASSERT_OK(meta_lookup(m, &root_cred, d, "..", &a));
    assert_int_equal(a.ino, ROOT);
    ASSERT_RC(meta_unlink(m, &root_cred, d, "."), -EISDIR);
    ASSERT_RC(meta_rmdir(m, &root_cred, d, "."), -EINVAL);
    ASSERT_RC(meta_rmdir(m, &root_cred, d, ".."), -ENOTEMPTY);
    ASSERT_RC(meta_rename(m, &root_cred, d, ".", ROOT, "x", 0), -EBUSY);
    ASSERT_RC(meta_rename(m, &root_cred, ROOT, "d", ROOT, "..", META_RENAME_NOREPLACE), -EEXIST);
    meta_close(m);
}

static void test_create_remove(void **state)
{
    (void)state;
    meta *m = fresh("meta_create");
    meta_attr a;
    uint64_t d = mk(m, ROOT, "d", S_IFDIR | 0750);
    assert_int_equal(attr(m, ROOT).nlink, 3);
    assert_int_equal(attr(m, d).nlink, 2);
    uint64_t f = mk(m, d, "f", S_IFREG | 0640);
    ASSERT_RC(meta_mknod(m, &root_cred, d, "f", S_IFREG | 0600, 0, &a), -EEXIST);
    ASSERT_RC(meta_mkdir(m, &root_cred, d, "f", 0700, &a), -EEXIST);
    ASSERT_RC(meta_mknod(m, &root_cred, f, "x", S_IFREG, 0, &a), -ENOTDIR);
    ASSERT_RC(meta_mknod(m, &root_cred, 9999, "x", S_IFREG, 0, &a), -ENOENT);
    ASSERT_OK(meta_mknod(m, &root_cred, d, "fifo", S_IFIFO | 0600, 0, &a));
    assert_true(S_ISFIFO(a.mode));
    ASSERT_OK(meta_mknod(m, &root_cred, d, "sock", S_IFSOCK | 0600, 0, &a));
    ASSERT_OK(meta_mknod(m, &root_cred, d, "chr", S_IFCHR | 0600, 0x0103, &a));
    assert_int_equal(a.rdev, 0x0103);
    ASSERT_OK(meta_mknod(m, &root_cred, d, "blk", S_IFBLK | 0600, 0x0801, &a));
    ASSERT_OK(meta_symlink(m, &root_cred, d, "ln", "some/where", &a));
    assert_true(S_ISLNK(a.mode));
    assert_int_equal(a.size, 10);
    nb_buf t = NB_BUF_INIT;
    ASSERT_OK(meta_readlink(m, a.ino, &t));
    assert_int_equal(t.len, 10);
    assert_memory_equal(t.data, "some/where", 10);
    ASSERT_RC(meta_readlink(m, f, &t), -EINVAL);
    nb_buf_free(&t);

    ASSERT_RC(meta_unlink(m, &root_cred, ROOT, "d"), -EISDIR);
    ASSERT_RC(meta_rmdir(m, &root_cred, d, "f"), -ENOTDIR);
    ASSERT_RC(meta_rmdir(m, &root_cred, ROOT, "d"), -ENOTEMPTY);
    ASSERT_RC(meta_unlink(m, &root_cred, d, "nope"), -ENOENT);
    const char *names[] = {"f", "fifo", "sock", "chr", "blk", "ln"};
    for (size_t i = 0; i < NB_ARRAY_LEN(names); i++)
        ASSERT_OK(meta_unlink(m, &root_cred, d, names[i]));
    ASSERT_RC(meta_getattr(m, f, &a), -ENOENT);
    ASSERT_OK(meta_rmdir(m, &root_cred, ROOT, "d"));
    assert_int_equal(attr(m, ROOT).nlink, 2);
    ASSERT_RC(meta_getattr(m, d, &a), -ENOENT);
    meta_statfs st;
    meta_statfs_get(m, &st);
    assert_int_equal(st.inodes_used, 1);

    /* Hard links. */
    f = mk(m, ROOT, "f", S_IFREG | 0644);
    d = mk(m, ROOT, "d", S_IFDIR | 0755);
    ASSERT_OK(meta_link(m, &root_cred, f, d, "g", &a));
    assert_int_equal(a.nlink, 2);
    ASSERT_RC(meta_link(m, &root_cred, f, d, "g", &a), -EEXIST);
    ASSERT_RC(meta_link(m, &root_cred, d, ROOT, "dd", &a), -EPERM);
    ASSERT_OK(meta_unlink(m, &root_cred, ROOT, "f"));
    assert_int_equal(attr(m, f).nlink, 1);
    ASSERT_OK(meta_unlink(m, &root_cred, d, "g"));
    ASSERT_RC(meta_getattr(m, f, &a), -ENOENT);
    meta_close(m);
}

static void test_rename(void **state)
{
    (void)state;
    meta *m = fresh("meta_rename");
    meta_attr a;
    uint64_t a1 = mk(m, ROOT, "a", S_IFDIR | 0755);
    uint64_t b1 = mk(m, a1, "b", S_IFDIR | 0755);
    uint64_t f = mk(m, ROOT, "f", S_IFREG | 0644);
    uint64_t g = mk(m, ROOT, "g", S_IFREG | 0644);
    uint64_t e = mk(m, ROOT, "e", S_IFDIR | 0755);

    ASSERT_RC(meta_rename(m, &root_cred, ROOT, "a", b1, "x", 0), -EINVAL);
    ASSERT_RC(meta_rename(m, &root_cred, ROOT, "a", a1, "x", 0), -EINVAL);
    ASSERT_RC(meta_rename(m, &root_cred, a1, "b", ROOT, "a", 0), -ENOTEMPTY);
    ASSERT_RC(meta_rename(m, &root_cred, a1, "b", ROOT, "a", META_RENAME_EXCHANGE), -EINVAL);
    ASSERT_RC(meta_rename(m, &root_cred, ROOT, "f", ROOT, "e", 0), -EISDIR);
    ASSERT_RC(meta_rename(m, &root_cred, ROOT, "e", ROOT, "f", 0), -ENOTDIR);
    ASSERT_RC(meta_rename(m, &root_cred, ROOT, "e", ROOT, "a", 0), -ENOTEMPTY);
    ASSERT_RC(meta_rename(m, &root_cred, ROOT, "f", ROOT, "g", META_RENAME_NOREPLACE), -EEXIST);
    ASSERT_RC(meta_rename(m, &root_cred, ROOT, "f", ROOT, "zz", META_RENAME_EXCHANGE), -ENOENT);
    ASSERT_RC(meta_rename(m, &root_cred, ROOT, "f", ROOT, "g", 3), -EINVAL);
    ASSERT_RC(meta_rename(m, &root_cred, ROOT, "nope", ROOT, "g", 0), -ENOENT);

    /* Replace a file: g goes away. */
    ASSERT_OK(meta_rename(m, &root_cred, ROOT, "f", ROOT, "g", 0));
    assert_int_equal(ino_of(m, ROOT, "g"), f);
    ASSERT_RC(meta_getattr(m, g, &a), -ENOENT);
    ASSERT_RC(meta_lookup(m, &root_cred, ROOT, "f", &a), -ENOENT);

    /* Move a directory across parents: link counts follow. */
    ASSERT_OK(meta_rename(m, &root_cred, a1, "b", e, "b2", 0));
    assert_int_equal(attr(m, a1).nlink, 2);
    assert_int_equal(attr(m, e).nlink, 3);
    assert_int_equal(attr(m, b1).parent, e);
    ASSERT_OK(meta_lookup(m, &root_cred, b1, "..", &a));
    assert_int_equal(a.ino, e);

    /* Replace an empty directory with a directory. */
    ASSERT_OK(meta_rename(m, &root_cred, e, "b2", ROOT, "a", 0));
    assert_int_equal(ino_of(m, ROOT, "a"), b1);
    ASSERT_RC(meta_getattr(m, a1, &a), -ENOENT);
    assert_int_equal(attr(m, e).nlink, 2);
    assert_int_equal(attr(m, ROOT).nlink, 4); /* a, e + 2 */

    /* Exchange a file and a directory across parents. */
    uint64_t h = mk(m, e, "h", S_IFREG | 0600);
    ASSERT_OK(meta_rename(m, &root_cred, ROOT, "a", e, "h", META_RENAME_EXCHANGE));
    assert_int_equal(ino_of(m, ROOT, "a"), h);
    assert_int_equal(ino_of(m, e, "h"), b1);
    assert_int_equal(attr(m, b1).parent, e);
    assert_int_equal(attr(m, ROOT).nlink, 3);
    assert_int_equal(attr(m, e).nlink, 3);

    /* Two names of one inode: a no-op. */
    ASSERT_OK(meta_link(m, &root_cred, h, ROOT, "h2", &a));
    ASSERT_OK(meta_rename(m, &root_cred, ROOT, "a", ROOT, "h2", 0));
    assert_int_equal(ino_of(m, ROOT, "a"), h);
    assert_int_equal(ino_of(m, ROOT, "h2"), h);
    assert_int_equal(attr(m, h).nlink, 2);

    /* Same-directory rename to a new name. */
    ASSERT_OK(meta_rename(m, &root_cred, ROOT, "h2", ROOT, "h3", META_RENAME_NOREPLACE));
    assert_int_equal(ino_of(m, ROOT, "h3"), h);
    meta_statfs st;
    meta_statfs_get(m, &st);
    assert_int_equal(st.inodes_used, 5); /* root, g(f), e, b1, h */
    meta_close(m);
}

typedef struct seen {
    int n;
    char names[64][32];
    uint64_t offs[64];
    int attrs;
} seen;

static int collect(void *arg, const meta_dirent *e)
{
    seen *s = arg;
    if (s->n >= 64)
        return 1;
    snprintf(s->names[s->n], 32, "%s", e->name);
    s->offs[s->n] = e->next_off;
    if (e->attr)
        s->attrs++;
    s->n++;
    return s->n == 3 ? 0 : 0;
}

static int stop_after_two(void *arg, const meta_dirent *e)
{
    seen *s = arg;
    collect(arg, e);
    return s->n >= 2;
}

static void test_readdir(void **state)
{
    (void)state;
    meta *m = fresh("meta_readdir");
    uint64_t d = mk(m, ROOT, "d", S_IFDIR | 0755);
    const char *names[] = {"c", "a", "b", "a.txt", "a0"};
    for (size_t i = 0; i < NB_ARRAY_LEN(names); i++)
        mk(m, d, names[i], S_IFREG | 0644);
    seen s = {0};
    ASSERT_OK(meta_readdir(m, d, 0, META_READDIR_DOTS | META_READDIR_ATTRS, collect, &s));
    assert_int_equal(s.n, 7);
    assert_string_equal(s.names[0], ".");
    assert_string_equal(s.names[1], "..");
    assert_string_equal(s.names[2], "c"); /* creation order */
    assert_int_equal(s.attrs, 7);

    /* Page by two, changing the directory between pages. */
    seen p = {0};
    ASSERT_OK(meta_readdir(m, d, 0, META_READDIR_DOTS, stop_after_two, &p));
    assert_int_equal(p.n, 2);
    uint64_t off = p.offs[1];
    ASSERT_OK(meta_unlink(m, &root_cred, d, "b"));
    mk(m, d, "z", S_IFREG | 0644);
    seen q = {0};
    ASSERT_OK(meta_readdir(m, d, off, 0, collect, &q));
    assert_int_equal(q.n, 5); /* c a a.txt a0 z */
    assert_string_equal(q.names[0], "c");
    assert_string_equal(q.names[4], "z");
    seen r = {0};
    ASSERT_OK(meta_readdir(m, d, q.offs[1], 0, collect, &r));
    assert_int_equal(r.n, 3);
    assert_string_equal(r.names[0], "a.txt");

    /* By name: byte order, "a.txt" before "a0" before "c". */
    seen l = {0};
    ASSERT_OK(meta_list(m, d, NULL, 0, collect, &l));
    assert_int_equal(l.n, 5);
    assert_string_equal(l.names[0], "a");
    assert_string_equal(l.names[1], "a.txt");
    assert_string_equal(l.names[2], "a0");
    seen l2 = {0};
    ASSERT_OK(meta_list(m, d, "a.txt", 0, collect, &l2));
    assert_int_equal(l2.n, 3);
    assert_string_equal(l2.names[0], "a0");
    uint64_t f = ino_of(m, d, "c");
    seen x = {0};
    ASSERT_RC(meta_readdir(m, f, 0, 0, collect, &x), -ENOTDIR);
    meta_close(m);
}

static void test_orphans(void **state)
{
    (void)state;
    meta *m = fresh("meta_orphans");
    meta_attr a;
    ASSERT_OK(meta_create(m, &root_cred, ROOT, "f", 0644, &a));
    uint64_t f = a.ino;
    ASSERT_OK(meta_open_inode(m, f)); /* two opens */
    meta_write w = {.chunk = 0, .slice = {.id = 77, .size = 100, .off = 0, .len = 100, .pos = 0}};
    ASSERT_OK(meta_publish(m, f, &w, 1, 0, 0, 0, nb_slice_of(NULL, 0), 0, &a));
    ASSERT_OK(meta_unlink(m, &root_cred, ROOT, "f"));
    ASSERT_OK(meta_getattr(m, f, &a));
    assert_int_equal(a.nlink, 0);
    assert_int_equal(a.size, 100);
    ASSERT_OK(meta_release(m, f));
    ASSERT_OK(meta_getattr(m, f, &a));
    meta_garbage gb[8];
    size_t n;
    ASSERT_OK(meta_garbage_list(m, 0, gb, 8, &n));
    assert_int_equal(n, 0);
    ASSERT_OK(meta_release(m, f));
    ASSERT_RC(meta_getattr(m, f, &a), -ENOENT);
    ASSERT_RC(meta_release(m, f), -EBADF);
    ASSERT_OK(meta_garbage_list(m, 0, gb, 8, &n));
    assert_int_equal(n, 1);
    assert_int_equal(gb[0].id, 77);
    assert_int_equal(gb[0].size, 100);
    uint64_t ids[1] = {77};
    ASSERT_OK(meta_garbage_done(m, ids, 1));
    ASSERT_OK(meta_garbage_list(m, 0, gb, 8, &n));
    assert_int_equal(n, 0);

    /* A crash (close without release) leaves an orphan: reclaimed on open. */
    ASSERT_OK(meta_create(m, &root_cred, ROOT, "g", 0644, &a));
    uint64_t g = a.ino;
    ASSERT_OK(meta_unlink(m, &root_cred, ROOT, "g"));
    ASSERT_OK(meta_getattr(m, g, &a));
    m = reopen(m);
    ASSERT_RC(meta_getattr(m, g, &a), -ENOENT);
    meta_statfs st;
    meta_statfs_get(m, &st);
    assert_int_equal(st.inodes_used, 1);
    assert_int_equal(st.bytes_used, 0);

    /* tmpfile + install (the S3 PUT path), replacing an existing file. */
    uint64_t old = mk(m, ROOT, "obj", S_IFREG | 0644);
    ASSERT_OK(meta_tmpfile(m, &root_cred, ROOT, 0644, &a));
    uint64_t t = a.ino;
    assert_int_equal(a.nlink, 0);
    w.slice.id = 78;
    ASSERT_OK(meta_publish(m, t, &w, 1, 100, META_PUBLISH_SIZE, 0, nb_slice_of(NULL, 0), 0, &a));
    ASSERT_RC(meta_install(m, &root_cred, t, ROOT, "obj", 0, nb_slice_of(NULL, 0), &a), -EEXIST);
    ASSERT_OK(meta_install(m, &root_cred, t, ROOT, "obj", META_INSTALL_REPLACE,
                           nb_slice_of("\x01", 1), &a));
    assert_int_equal(a.nlink, 1);
    assert_int_equal(ino_of(m, ROOT, "obj"), t);
    ASSERT_RC(meta_getattr(m, old, &a), -ENOENT);
    ASSERT_OK(meta_release(m, t));
    m = reopen(m);
    assert_int_equal(attr(m, t).size, 100);

    /* The last release reads the inode only for an inode orphaned while
     * open: each way of orphaning one must still end it at that release
     * (without a reopen, which would reclaim it anyway). */
    ASSERT_OK(meta_tmpfile(m, &root_cred, ROOT, 0644, &a)); /* never named */
    uint64_t tf = a.ino;
    ASSERT_OK(meta_release(m, tf));
    ASSERT_RC(meta_getattr(m, tf, &a), -ENOENT);
    uint64_t victim = mk(m, ROOT, "victim", S_IFREG | 0644);
    mk(m, ROOT, "over", S_IFREG | 0644);
    ASSERT_OK(meta_open_attr(m, victim, &a)); /* replaced by a rename while open */
    assert_int_equal(a.ino, victim);
    assert_int_equal(a.nlink, 1);
    ASSERT_OK(meta_rename(m, &root_cred, ROOT, "over", ROOT, "victim", 0));
    ASSERT_OK(meta_getattr(m, victim, &a));
    assert_int_equal(a.nlink, 0);
    ASSERT_OK(meta_release(m, victim));
    ASSERT_RC(meta_getattr(m, victim, &a), -ENOENT);
    uint64_t kept = ino_of(m, ROOT, "victim"); /* opened, released: stays */
    ASSERT_OK(meta_open_inode(m, kept));
    ASSERT_OK(meta_release(m, kept));
    assert_int_equal(attr(m, kept).nlink, 1);
    meta_statfs_get(m, &st);
    assert_int_equal(st.inodes_used, 3); /* root, obj, victim */
    meta_close(m);
}

static void test_chunks(void **state)
{
    (void)state;
    meta *m = fresh("meta_chunks");
    uint64_t f = mk(m, ROOT, "f", S_IFREG | 0644);
    meta_attr a;
    /* Slice 1 covers [0, 1000), slice 2 overwrites [100, 200), slice 3
     * crosses into chunk 1. */
    meta_write w[3] = {
        {.chunk = 0, .slice = {.id = 1, .size = 1000, .off = 0, .len = 1000, .pos = 0}},
        {.chunk = 0, .slice = {.id = 2, .size = 100, .off = 0, .len = 100, .pos = 100}},
        {.chunk = 1, .slice = {.id = 3, .size = 50, .off = 10, .len = 40, .pos = 0}},
    };
    ASSERT_OK(meta_publish(m, f, w, 3, 0, 0, 0, nb_slice_of(NULL, 0), 1, &a));
    assert_int_equal(a.size, META_CHUNK_SIZE + 40);
    meta_slice *s;
    size_t n;
    ASSERT_OK(meta_chunk_read(m, f, 0, &s, &n));
    assert_int_equal(n, 2);
    meta_slice *r;
    size_t nr;
    meta_chunk_resolve(s, n, 2000, &r, &nr);
    assert_int_equal(nr, 4);
    assert_int_equal(r[0].id, 1);
    assert_int_equal(r[0].len, 100);
    assert_int_equal(r[1].id, 2);
    assert_int_equal(r[1].pos, 100);
    assert_int_equal(r[2].id, 1);
    assert_int_equal(r[2].pos, 200);
    assert_int_equal(r[2].off, 200);
    assert_int_equal(r[3].id, 0);
    assert_int_equal(r[3].pos, 1000);
    assert_int_equal(r[3].len, 1000);
    free(r);
    free(s);

    /* Slice 4 hides slice 2 completely: 2 goes to the garbage list. */
    meta_write w4 = {.chunk = 0, .slice = {.id = 4, .size = 300, .off = 0, .len = 300, .pos = 50}};
    ASSERT_OK(meta_publish(m, f, &w4, 1, 0, 0, 0, nb_slice_of(NULL, 0), 0, &a));
    ASSERT_OK(meta_chunk_read(m, f, 0, &s, &n));
    assert_int_equal(n, 2);
    assert_int_equal(s[0].id, 1);
    assert_int_equal(s[1].id, 4);
    meta_garbage gb[8];
    size_t ng;
    ASSERT_OK(meta_garbage_list(m, 0, gb, 8, &ng));
    assert_int_equal(ng, 1);
    assert_int_equal(gb[0].id, 2);

    /* Compaction: replace [1, 4] by 5; then a stale attempt conflicts. */
    meta_slice c5 = {.id = 5, .size = 1000, .off = 0, .len = 1000, .pos = 0};
    ASSERT_OK(meta_chunk_replace(m, f, 0, s, n, &c5, 1));
    ASSERT_RC(meta_chunk_replace(m, f, 0, s, n, &c5, 1), NB_ECONFLICT);
    free(s);
    ASSERT_OK(meta_garbage_list(m, 0, gb, 8, &ng));
    assert_int_equal(ng, 3); /* 1, 2 and 4 */
    assert_int_equal(gb[0].id, 1);
    assert_int_equal(gb[2].id, 4);
    ASSERT_OK(meta_garbage_list(m, 2, gb, 8, &ng));
    assert_int_equal(ng, 1);

    /* Truncate to 500: chunk 1 goes, chunk 0 gets a hole over [500, ..). */
    meta_sattr sa = {.valid = META_SET_SIZE, .size = 500};
    ASSERT_OK(meta_setattr(m, &root_cred, f, &sa, &a));
    assert_int_equal(a.size, 500);
    ASSERT_OK(meta_chunk_read(m, f, 1, &s, &n));
    assert_int_equal(n, 0);
    ASSERT_OK(meta_chunk_read(m, f, 0, &s, &n));
    assert_int_equal(n, 2);
    assert_int_equal(s[1].id, 0);
    assert_int_equal(s[1].pos, 500);
    /* Growing again shows zeros, not the old bytes of slice 5. */
    sa.size = 3000;
    ASSERT_OK(meta_setattr(m, &root_cred, f, &sa, &a));
    meta_chunk_resolve(s, n, 3000, &r, &nr);
    assert_int_equal(r[nr - 1].id, 0);
    assert_int_equal(r[nr - 1].pos, 500);
    free(r);
    free(s);
    /* Truncate to 0 drops everything. */
    sa.size = 0;
    ASSERT_OK(meta_setattr(m, &root_cred, f, &sa, &a));
    ASSERT_OK(meta_chunk_read(m, f, 0, &s, &n));
    assert_int_equal(n, 0);
    meta_statfs st;
    meta_statfs_get(m, &st);
    assert_int_equal(st.bytes_used, 0);

    /* Errors. */
    uint64_t d = mk(m, ROOT, "d", S_IFDIR | 0755);
    ASSERT_RC(meta_publish(m, d, w, 1, 0, 0, 0, nb_slice_of(NULL, 0), 0, &a), -EISDIR);
    meta_write bad = {.chunk = 0, .slice = {.id = 9, .size = 10, .len = 10, .pos = 0}};
    bad.slice.pos = (uint32_t)META_CHUNK_SIZE - 5;
    ASSERT_RC(meta_publish(m, f, &bad, 1, 0, 0, 0, nb_slice_of(NULL, 0), 0, &a), -EINVAL);
    sa.size = META_MAX_FILE_SIZE + 1;
    ASSERT_RC(meta_setattr(m, &root_cred, f, &sa, &a), -EFBIG);
    sa.size = 1;
    ASSERT_RC(meta_setattr(m, &root_cred, d, &sa, &a), -EISDIR);
    meta_close(m);
}

static void test_ids(void **state)
{
    (void)state;
    meta *m = fresh("meta_ids");
    uint64_t a, b, c;
    ASSERT_OK(meta_id_alloc(m, META_ID_SLICE, 1, &a));
    ASSERT_OK(meta_id_alloc(m, META_ID_SLICE, 5000, &b));
    assert_true(b > a);
    ASSERT_OK(meta_id_alloc(m, META_ID_SLICE, 1, &c));
    assert_true(c >= b + 5000);
    assert_true(meta_id_high(m, META_ID_SLICE) > c);
    m = reopen(m);
    uint64_t d;
    ASSERT_OK(meta_id_alloc(m, META_ID_SLICE, 1, &d));
    assert_true(d > c);
    uint64_t i1 = mk(m, ROOT, "x", S_IFREG | 0644);
    m = reopen(m);
    uint64_t i2 = mk(m, ROOT, "y", S_IFREG | 0644);
    assert_true(i2 > i1);
    meta_close(m);
}

static void print_problem(void *arg, const char *msg)
{
    (void)arg;
    fprintf(stderr, "meta_check: %s\n", msg);
}

static void test_xattr(void **state)
{
    (void)state;
    meta *m = fresh("meta_xattr");
    uint64_t f = mk(m, ROOT, "f", S_IFREG | 0644);
    nb_buf v = NB_BUF_INIT;
    ASSERT_RC(meta_xattr_get(m, &root_cred, f, "user.a", &v), -ENODATA);
    ASSERT_RC(meta_xattr_set(m, &root_cred, f, "user.a", nb_slice_str("1"), META_XATTR_REPLACE),
              -ENODATA);
    ASSERT_OK(meta_xattr_set(m, &root_cred, f, "user.a", nb_slice_str("1"), META_XATTR_CREATE));
    ASSERT_RC(meta_xattr_set(m, &root_cred, f, "user.a", nb_slice_str("2"), META_XATTR_CREATE),
              -EEXIST);
    ASSERT_OK(meta_xattr_set(m, &root_cred, f, "user.a", nb_slice_str("22"), META_XATTR_REPLACE));
    ASSERT_OK(meta_xattr_set(m, &root_cred, f, "trusted.t", nb_slice_str(""), 0));
    ASSERT_OK(meta_xattr_get(m, &root_cred, f, "user.a", &v));
    assert_int_equal(v.len, 2);
    ASSERT_OK(meta_xattr_list(m, &root_cred, f, &v));
    assert_int_equal(v.len, strlen("trusted.t") + 1 + strlen("user.a") + 1);
    uint32_t grp[1] = {5};
    meta_cred user = {1000, 1000, 1, grp};
    ASSERT_OK(meta_xattr_list(m, &user, f, &v));
    assert_int_equal(v.len, strlen("user.a") + 1);
    ASSERT_OK(meta_xattr_get(m, &user, f, "user.a", &v));
    ASSERT_RC(meta_xattr_set(m, &user, f, "user.b", nb_slice_str("x"), 0), -EACCES);
    ASSERT_RC(meta_xattr_set(m, &user, f, "trusted.b", nb_slice_str("x"), 0), -EPERM);
    ASSERT_RC(meta_xattr_get(m, &user, f, "trusted.t", &v), -ENODATA);
    ASSERT_RC(meta_xattr_set(m, &root_cred, f, "bogus.x", nb_slice_str("x"), 0), -EOPNOTSUPP);
    char big[META_XATTR_SIZE_MAX + 1];
    memset(big, 'v', sizeof(big));
    ASSERT_RC(meta_xattr_set(m, &root_cred, f, "user.big", nb_slice_of(big, sizeof(big)), 0),
              -E2BIG);
    ASSERT_OK(meta_xattr_remove(m, &root_cred, f, "user.a"));
    ASSERT_RC(meta_xattr_remove(m, &root_cred, f, "user.a"), -ENODATA);
    /* xattrs and chunk maps go with the inode (the inode's flags say it
     * has some, so its destruction scans for them). */
    uint64_t sid;
    ASSERT_OK(meta_id_alloc(m, META_ID_SLICE, 1, &sid));
    meta_write w = {.chunk = 0, .slice = {.id = sid, .size = 10, .off = 0, .len = 10, .pos = 0}};
    ASSERT_OK(meta_publish(m, f, &w, 1, 0, 0, 0, nb_slice_of(NULL, 0), 0, NULL));
    ASSERT_OK(meta_unlink(m, &root_cred, ROOT, "f"));
    meta_check_report r;
    ASSERT_OK(meta_check(m, 0, print_problem, NULL, &r));
    assert_int_equal(r.problems, 0);
    meta_garbage g[4];
    size_t ng = 0;
    ASSERT_OK(meta_garbage_list(m, 0, g, 4, &ng));
    assert_int_equal(ng, 1);
    assert_int_equal(g[0].id, sid);
    f = mk(m, ROOT, "f", S_IFREG | 0644);
    ASSERT_OK(meta_xattr_list(m, &root_cred, f, &v));
    assert_int_equal(v.len, 0);
    nb_buf_free(&v);
    meta_close(m);
}

static void test_permissions(void **state)
{
    (void)state;
    meta *m = fresh("meta_perm");
    meta_attr a;
    uint32_t groups[2] = {50, 60};
    meta_cred alice = {1000, 100, 2, groups};
    meta_cred bob = {1001, 101, 0, NULL};

    /* The root directory is 0755 root:root: others cannot create. */
    ASSERT_RC(meta_mkdir(m, &alice, ROOT, "x", 0755, &a), -EACCES);
    uint64_t tmp = mk(m, ROOT, "tmp", S_IFDIR | 0777);
    meta_sattr sa = {.valid = META_SET_MODE, .mode = 01777};
    ASSERT_OK(meta_setattr(m, &root_cred, tmp, &sa, &a));
    ASSERT_OK(meta_mknod(m, &alice, tmp, "af", S_IFREG | 0644, 0, &a));
    assert_int_equal(a.uid, 1000);
    assert_int_equal(a.gid, 100);
    uint64_t af = a.ino;
    ASSERT_OK(meta_mknod(m, &bob, tmp, "bf", S_IFREG | 0666, 0, &a));
    /* Sticky: bob cannot remove or rename alice's file, alice can. */
    ASSERT_RC(meta_unlink(m, &bob, tmp, "af"), -EPERM);
    ASSERT_RC(meta_rename(m, &bob, tmp, "af", tmp, "zz", 0), -EPERM);
    ASSERT_RC(meta_rename(m, &alice, tmp, "af", tmp, "bf", 0), -EPERM); /* target bob's */
    ASSERT_OK(meta_rename(m, &alice, tmp, "af", tmp, "af2", 0));
    ASSERT_OK(meta_unlink(m, &alice, tmp, "af2"));
    ASSERT_RC(meta_getattr(m, af, &a), -ENOENT);

    /* Search permission on a directory. */
    uint64_t priv = mk(m, tmp, "priv", S_IFDIR | 0700);
    mk(m, priv, "secret", S_IFREG | 0644);
    ASSERT_RC(meta_lookup(m, &alice, priv, "secret", &a), -EACCES);
    ASSERT_OK(meta_lookup(m, &root_cred, priv, "secret", &a));
    ASSERT_RC(meta_access(m, &alice, priv, R_OK), -EACCES);
    ASSERT_OK(meta_access(m, &root_cred, priv, R_OK | W_OK | X_OK));
    ASSERT_RC(meta_access(m, &root_cred, a.ino, X_OK), -EACCES); /* no x bit at all */

    /* chmod: owner or root; setgid cleared when not in the group. */
    ASSERT_OK(meta_mknod(m, &alice, tmp, "f", S_IFREG | 0644, 0, &a));
    uint64_t f = a.ino;
    sa.valid = META_SET_MODE;
    sa.mode = 0600;
    ASSERT_RC(meta_setattr(m, &bob, f, &sa, &a), -EPERM);
    sa.valid = META_SET_GID;
    sa.gid = 60;
    ASSERT_OK(meta_setattr(m, &alice, f, &sa, &a)); /* into a supplementary group */
    assert_int_equal(a.gid, 60);
    sa.gid = 70;
    ASSERT_RC(meta_setattr(m, &alice, f, &sa, &a), -EPERM);
    sa.valid = META_SET_UID;
    sa.uid = 1001;
    ASSERT_RC(meta_setattr(m, &alice, f, &sa, &a), -EPERM);
    sa.uid = 1000;
    ASSERT_OK(meta_setattr(m, &alice, f, &sa, &a)); /* to oneself: fine */
    sa.valid = META_SET_MODE;
    sa.mode = 06755;
    ASSERT_OK(meta_setattr(m, &alice, f, &sa, &a));
    assert_int_equal(a.mode & 07777, 06755);
    /* Root chowns: setuid and setgid (with group x) are cleared. */
    sa.valid = META_SET_UID | META_SET_GID;
    sa.uid = 1001;
    sa.gid = 101;
    ASSERT_OK(meta_setattr(m, &root_cred, f, &sa, &a));
    assert_int_equal(a.mode & 07777, 0755);
    /* Back to alice, then alice sets setgid with a group she is not in. */
    sa.uid = 1000;
    sa.gid = 999;
    ASSERT_OK(meta_setattr(m, &root_cred, f, &sa, &a));
    sa.valid = META_SET_MODE;
    sa.mode = 02755;
    ASSERT_OK(meta_setattr(m, &alice, f, &sa, &a));
    assert_int_equal(a.mode & 07777, 0755);

    /* Times: explicit by owner only; "now" by a writer too. */
    sa.valid = META_SET_MODE;
    sa.mode = 0666;
    ASSERT_OK(meta_setattr(m, &alice, f, &sa, &a));
    sa.valid = META_SET_MTIME;
    sa.mtime_ns = 12345;
    ASSERT_RC(meta_setattr(m, &bob, f, &sa, &a), -EPERM);
    ASSERT_OK(meta_setattr(m, &alice, f, &sa, &a));
    assert_int_equal(a.mtime_ns, 12345);
    sa.valid = META_SET_MTIME_NOW | META_SET_ATIME_NOW;
    ASSERT_OK(meta_setattr(m, &bob, f, &sa, &a));
    assert_true(a.mtime_ns > 12345);
    sa.valid = META_SET_MODE;
    sa.mode = 0644;
    ASSERT_OK(meta_setattr(m, &alice, f, &sa, &a));
    sa.valid = META_SET_MTIME_NOW;
    ASSERT_RC(meta_setattr(m, &bob, f, &sa, &a), -EACCES);

    /* Truncate needs write permission unless through a handle. */
    sa.valid = META_SET_SIZE;
    sa.size = 10;
    ASSERT_RC(meta_setattr(m, &bob, f, &sa, &a), -EACCES);
    sa.valid |= META_SET_HANDLE;
    ASSERT_OK(meta_setattr(m, &bob, f, &sa, &a));
    assert_int_equal(a.size, 10);

    /* Devices need root. */
    ASSERT_RC(meta_mknod(m, &alice, tmp, "dev", S_IFCHR | 0600, 1, &a), -EPERM);

    /* setgid directories pass their group on. */
    uint64_t sg = mk(m, tmp, "sg", S_IFDIR | 0777);
    sa.valid = META_SET_MODE | META_SET_GID;
    sa.mode = 02777;
    sa.gid = 4242;
    ASSERT_OK(meta_setattr(m, &root_cred, sg, &sa, &a));
    ASSERT_OK(meta_mkdir(m, &alice, sg, "sub", 0755, &a));
    assert_int_equal(a.gid, 4242);
    assert_true(a.mode & S_ISGID);
    ASSERT_OK(meta_mknod(m, &alice, sg, "file", S_IFREG | 0644, 0, &a));
    assert_int_equal(a.gid, 4242);

    /* Moving a directory to another parent needs write on it. */
    uint64_t ro = mk(m, tmp, "ro", S_IFDIR | 0755);
    sa.valid = META_SET_UID;
    sa.uid = 1000;
    ASSERT_OK(meta_setattr(m, &root_cred, ro, &sa, &a));
    sa.valid = META_SET_MODE;
    sa.mode = 0555;
    ASSERT_OK(meta_setattr(m, &alice, ro, &sa, &a));
    ASSERT_RC(meta_rename(m, &alice, tmp, "ro", sg, "ro", 0), -EACCES);
    ASSERT_OK(meta_rename(m, &alice, tmp, "ro", tmp, "ro2", 0)); /* same parent: fine */
    meta_close(m);
}

static void test_s3_records(void **state)
{
    (void)state;
    meta *m = fresh("meta_s3");
    meta_kvpair um[2] = {{"color", "blue"}, {"empty", ""}};
    meta_kvpair tags[1] = {{"k", "v"}};
    meta_objrec r = {.etag = "\"abc\"",
                     .content_type = "text/plain",
                     .cache_control = "no-cache",
                     .expires = "Thu, 01 Dec 1994 16:00:00 GMT",
                     .storage_class = "STANDARD",
                     .etag_mtime_ns = 42,
                     .parts = 3,
                     .acl = META_ACL_PUBLIC_READ,
                     .nmeta = 2,
                     .meta = um,
                     .ntags = 1,
                     .tags = tags};
    nb_buf enc = NB_BUF_INIT;
    ASSERT_OK(meta_objrec_encode(&r, &enc));
    uint64_t f = mk(m, ROOT, "obj", S_IFREG | 0644);
    meta_attr a;
    ASSERT_OK(meta_publish(m, f, NULL, 0, 5, META_PUBLISH_SIZE, 0, nb_buf_slice(&enc), 1, &a));
    nb_buf got = NB_BUF_INIT;
    ASSERT_OK(meta_objrec_get(m, f, &got));
    meta_objrec d;
    ASSERT_OK(meta_objrec_decode(nb_buf_slice(&got), &d));
    assert_string_equal(d.etag, "\"abc\"");
    assert_string_equal(d.content_type, "text/plain");
    assert_string_equal(d.expires, r.expires);
    assert_null(d.content_encoding);
    assert_int_equal(d.etag_mtime_ns, 42);
    assert_int_equal(d.parts, 3);
    assert_int_equal(d.acl, META_ACL_PUBLIC_READ);
    assert_int_equal(d.nmeta, 2);
    assert_string_equal(d.meta[0].key, "color");
    assert_string_equal(d.meta[0].value, "blue");
    assert_string_equal(d.meta[1].value, "");
    assert_int_equal(d.ntags, 1);
    meta_objrec_free(&d);
    /* An unknown field from a newer writer is skipped; a newer version refused. */
    ASSERT_OK(nb_buf_append(&got, "\x63\x02hi", 4));
    ASSERT_OK(meta_objrec_decode(nb_buf_slice(&got), &d));
    meta_objrec_free(&d);
    got.data[0] = 2;
    ASSERT_RC(meta_objrec_decode(nb_buf_slice(&got), &d), NB_EVERSION);
    got.data[0] = 1;
    got.len -= 3; /* truncated field */
    assert_int_equal(meta_objrec_decode(nb_buf_slice(&got), &d), NB_ECORRUPT);
    ASSERT_OK(meta_objrec_set(m, f, nb_slice_of(NULL, 0)));
    ASSERT_RC(meta_objrec_get(m, f, &got), NB_ENOTFOUND);

    /* Buckets. */
    meta_bucket b = {0};
    b.owner = "AKIDEXAMPLE";
    b.versioning = META_VERSIONING_ENABLED;
    ASSERT_OK(nb_buf_append_str(&b.cors, "<CORSConfiguration/>"));
    ASSERT_OK(meta_bucket_create(m, &root_cred, "bkt", 0755, &b));
    assert_true(b.ino > 0);
    nb_buf_free(&b.cors);
    meta_bucket g;
    ASSERT_OK(meta_bucket_get(m, "bkt", &g));
    assert_string_equal(g.owner, "AKIDEXAMPLE");
    assert_int_equal(g.versioning, META_VERSIONING_ENABLED);
    assert_int_equal(g.cors.len, strlen("<CORSConfiguration/>"));
    assert_int_equal(g.ctime_ns, b.ctime_ns);
    int64_t ct = g.ctime_ns;
    g.versioning = META_VERSIONING_SUSPENDED;
    g.ctime_ns = 1;
    ASSERT_OK(meta_bucket_update(m, "bkt", &g));
    meta_bucket_free(&g);
    ASSERT_OK(meta_bucket_get(m, "bkt", &g));
    assert_int_equal(g.versioning, META_VERSIONING_SUSPENDED);
    assert_int_equal(g.ctime_ns, ct);
    meta_bucket_free(&g);
    ASSERT_RC(meta_bucket_create(m, &root_cred, "bkt", 0755, &b), -EEXIST);
    mk(m, ROOT, "plain", S_IFDIR | 0755);
    ASSERT_RC(meta_bucket_get(m, "plain", &g), NB_ENOTFOUND);
    ASSERT_RC(meta_bucket_get(m, "nope", &g), -ENOENT);
    /* rmdir removes the record with the directory. */
    ASSERT_OK(meta_rmdir(m, &root_cred, ROOT, "bkt"));
    ASSERT_RC(meta_bucket_get(m, "bkt", &g), -ENOENT);
    mk(m, ROOT, "bkt", S_IFDIR | 0755);
    ASSERT_RC(meta_bucket_get(m, "bkt", &g), NB_ENOTFOUND);
    /* Every record goes with its inode, though unlink deletes only those
     * the inode can have: object records written by a publish or set
     * later, a symlink's target, a plain file's none. */
    uint64_t o1 = mk(m, ROOT, "o1", S_IFREG | 0644);
    ASSERT_OK(meta_publish(m, o1, NULL, 0, 5, META_PUBLISH_SIZE, 0, nb_buf_slice(&enc), 1, NULL));
    uint64_t o2 = mk(m, ROOT, "o2", S_IFREG | 0644);
    ASSERT_OK(meta_objrec_set(m, o2, nb_buf_slice(&enc)));
    mk(m, ROOT, "o3", S_IFREG | 0644);
    ASSERT_OK(meta_symlink(m, &root_cred, ROOT, "ln", "o1", NULL));
    meta_check_report cr;
    ASSERT_OK(meta_check(m, 0, print_problem, NULL, &cr));
    assert_int_equal(cr.problems, 0);
    for (const char *const *n = (const char *const[]){"o1", "o2", "o3", "ln", "obj", NULL}; *n; n++)
        ASSERT_OK(meta_unlink(m, &root_cred, ROOT, *n));
    ASSERT_OK(meta_check(m, 0, print_problem, NULL, &cr));
    assert_int_equal(cr.problems, 0);
    assert_true(cr.inodes > 0);
    nb_buf_free(&enc);
    nb_buf_free(&got);
    meta_close(m);
}

static void test_statfs(void **state)
{
    (void)state;
    if (g_dir)
        nb_test_rmdir(g_dir);
    free(g_dir);
    g_dir = nb_test_dir("meta_statfs");
    meta_options o = *opts();
    o.max_inodes = 4;
    o.max_bytes = 1000;
    meta *m = NULL;
    ASSERT_OK(meta_open(g_dir, &o, &m));
    meta_attr a;
    uint64_t f = mk(m, ROOT, "a", S_IFREG | 0644);
    mk(m, ROOT, "b", S_IFREG | 0644);
    mk(m, ROOT, "c", S_IFDIR | 0755);
    ASSERT_RC(meta_mknod(m, &root_cred, ROOT, "d", S_IFREG | 0644, 0, &a), -ENOSPC);
    meta_sattr sa = {.valid = META_SET_SIZE, .size = 600};
    ASSERT_OK(meta_setattr(m, &root_cred, f, &sa, &a));
    uint64_t g = ino_of(m, ROOT, "b");
    ASSERT_RC(meta_setattr(m, &root_cred, g, &sa, &a), -ENOSPC);
    meta_statfs st;
    meta_statfs_get(m, &st);
    assert_int_equal(st.inodes_used, 4);
    assert_int_equal(st.bytes_used, 600);
    assert_int_equal(st.inodes_total, 4);
    assert_int_equal(st.bytes_total, 1000);
    ASSERT_OK(meta_unlink(m, &root_cred, ROOT, "a"));
    meta_close(m);
    ASSERT_OK(meta_open(g_dir, &o, &m));
    meta_statfs_get(m, &st);
    assert_int_equal(st.inodes_used, 3);
    assert_int_equal(st.bytes_used, 0);
    ASSERT_OK(meta_sync(m));
    meta_close(m);
}

typedef struct ulist {
    int n;
    char keys[8][16];
    uint64_t ids[8];
} ulist;

static int upload_cb(void *arg, const meta_upload *u)
{
    ulist *l = arg;
    snprintf(l->keys[l->n], 16, "%s", u->key);
    l->ids[l->n++] = u->id;
    return 0;
}

static int part_cb(void *arg, const meta_part *p)
{
    ulist *l = arg;
    snprintf(l->keys[l->n], 16, "%s", p->etag);
    l->ids[l->n++] = p->number;
    return 0;
}

static int count_part_slices(void *arg, uint64_t ino, uint32_t chunk, const meta_slice *s)
{
    (void)chunk;
    (void)s;
    if (ino == 0)
        (*(int *)arg)++;
    return 0;
}

static int has_garbage(meta *m, uint64_t id)
{
    meta_garbage gb[64];
    size_t n;
    ASSERT_OK(meta_garbage_list(m, 0, gb, 64, &n));
    for (size_t i = 0; i < n; i++) {
        if (gb[i].id == id)
            return 1;
    }
    return 0;
}

static void test_multipart(void **state)
{
    (void)state;
    meta *m = fresh("meta_multipart");
    meta_bucket b = {0};
    ASSERT_OK(meta_bucket_create(m, &root_cred, "bkt", 0755, &b));
    meta_upload u1 = {.bucket = b.ino, .key = "k/obj", .owner = "me"};
    meta_upload u2 = {.bucket = b.ino, .key = "k/obj"};
    meta_upload u3 = {.bucket = b.ino, .key = "a"};
    ASSERT_OK(nb_buf_append_str(&u1.objrec, "rec"));
    ASSERT_OK(meta_upload_create(m, &u1));
    ASSERT_OK(meta_upload_create(m, &u2));
    ASSERT_OK(meta_upload_create(m, &u3));
    nb_buf_free(&u1.objrec);
    meta_upload g;
    ASSERT_OK(meta_upload_get(m, u1.id, &g));
    assert_string_equal(g.key, "k/obj");
    assert_string_equal(g.owner, "me");
    assert_int_equal(g.bucket, b.ino);
    assert_int_equal(g.objrec.len, 3);
    meta_upload_free(&g);
    ASSERT_RC(meta_upload_get(m, 999999, &g), NB_ENOTFOUND);
    ulist l = {0};
    ASSERT_OK(meta_upload_list(m, b.ino, NULL, 0, upload_cb, &l));
    assert_int_equal(l.n, 3);
    assert_string_equal(l.keys[0], "a");
    assert_int_equal(l.ids[1], u1.id);
    assert_int_equal(l.ids[2], u2.id);
    memset(&l, 0, sizeof(l));
    ASSERT_OK(meta_upload_list(m, b.ino, "k/obj", u1.id, upload_cb, &l));
    assert_int_equal(l.n, 1);
    assert_int_equal(l.ids[0], u2.id);

    /* Parts: 1 (replaced once), 2. */
    meta_slice s1 = {.id = 101, .size = 1000, .len = 1000};
    meta_slice s1b = {.id = 102, .size = 500, .len = 500};
    meta_slice s2 = {.id = 103, .size = 700, .len = 700};
    meta_part p1 = {.number = 1, .etag = "e1", .size = 1000, .nslices = 1, .slices = &s1};
    ASSERT_OK(meta_part_put(m, u1.id, &p1));
    p1.etag = "e1b";
    p1.slices = &s1b;
    p1.size = 500;
    ASSERT_OK(meta_part_put(m, u1.id, &p1));
    assert_true(has_garbage(m, 101));
    meta_part p2 = {.number = 2, .etag = "e2", .size = 700, .nslices = 1, .slices = &s2};
    ASSERT_OK(meta_part_put(m, u1.id, &p2));
    ASSERT_RC(meta_part_put(m, 424242, &p2), NB_ENOTFOUND);
    memset(&l, 0, sizeof(l));
    ASSERT_OK(meta_part_list(m, u1.id, 0, part_cb, &l));
    assert_int_equal(l.n, 2);
    assert_string_equal(l.keys[0], "e1b");
    memset(&l, 0, sizeof(l));
    ASSERT_OK(meta_part_list(m, u1.id, 1, part_cb, &l));
    assert_int_equal(l.n, 1);
    int held = 0;
    ASSERT_OK(meta_slice_scan(m, count_part_slices, &held));
    assert_int_equal(held, 2);

    /* Abort u2 with a part: its slice becomes garbage. */
    meta_slice s9 = {.id = 109, .size = 10, .len = 10};
    meta_part p9 = {.number = 1, .etag = "x", .size = 10, .nslices = 1, .slices = &s9};
    ASSERT_OK(meta_part_put(m, u2.id, &p9));
    ASSERT_OK(meta_upload_abort(m, u2.id));
    assert_true(has_garbage(m, 109));
    ASSERT_RC(meta_upload_get(m, u2.id, &g), NB_ENOTFOUND);
    ASSERT_RC(meta_upload_abort(m, u2.id), NB_ENOTFOUND);

    /* Complete u1 with part 1 only: part 2's slice is garbage, part 1's
     * lives on in the object. */
    meta_attr a;
    ASSERT_OK(meta_tmpfile(m, &root_cred, b.ino, 0644, &a));
    uint64_t t = a.ino;
    meta_write w = {.chunk = 0, .slice = s1b};
    ASSERT_OK(meta_publish(m, t, &w, 1, 500, META_PUBLISH_SIZE, 0, nb_slice_of(NULL, 0), 0, &a));
    ASSERT_OK(meta_upload_complete(m, &root_cred, u1.id, t, b.ino, "obj", META_INSTALL_REPLACE,
                                   nb_slice_str("rec"), &a));
    assert_int_equal(a.nlink, 1);
    ASSERT_OK(meta_release(m, t));
    assert_int_equal(ino_of(m, b.ino, "obj"), t);
    ASSERT_RC(meta_upload_get(m, u1.id, &g), NB_ENOTFOUND);
    assert_true(has_garbage(m, 103));
    assert_false(has_garbage(m, 102));
    held = 0;
    ASSERT_OK(meta_slice_scan(m, count_part_slices, &held));
    assert_int_equal(held, 0);
    memset(&l, 0, sizeof(l));
    ASSERT_OK(meta_upload_list(m, b.ino, NULL, 0, upload_cb, &l));
    assert_int_equal(l.n, 1);
    assert_string_equal(l.keys[0], "a");
    /* Completing a vanished upload changes nothing. */
    ASSERT_OK(meta_tmpfile(m, &root_cred, b.ino, 0644, &a));
    ASSERT_RC(meta_upload_complete(m, &root_cred, u1.id, a.ino, b.ino, "obj2", 0,
                                   nb_slice_of(NULL, 0), &a),
              NB_ENOTFOUND);
    ASSERT_RC(meta_lookup(m, &root_cred, b.ino, "obj2", &a), -ENOENT);
    meta_close(m);
}

/* ---- concurrency ---- */

#ifdef NB_SANITIZED
#define CONC_OPS 300
#else
#define CONC_OPS 2000
#endif

typedef struct cctx {
    meta *m;
    uint64_t dirs[3];
    unsigned seed;
} cctx;

static void *churn(void *arg)
{
    cctx *c = arg;
    char a[16], b[16];
    for (int i = 0; i < CONC_OPS; i++) {
        unsigned r = (unsigned)rand_r(&c->seed);
        uint64_t d1 = c->dirs[r % 3], d2 = c->dirs[(r / 3) % 3];
        snprintf(a, sizeof(a), "n%u", (r / 9) % 12);
        snprintf(b, sizeof(b), "n%u", (r / 108) % 12);
        meta_attr at;
        int rc = 0;
        switch ((r / 1296) % 7) {
        case 0:
            rc = meta_mknod(c->m, &root_cred, d1, a, S_IFREG | 0644, 0, &at);
            break;
        case 1:
            rc = meta_mkdir(c->m, &root_cred, d1, a, 0755, &at);
            break;
        case 2:
            rc = meta_unlink(c->m, &root_cred, d1, a);
            break;
        case 3:
            rc = meta_rmdir(c->m, &root_cred, d1, a);
            break;
        case 4:
            rc = meta_rename(c->m, &root_cred, d1, a, d2, b, 0);
            break;
        case 5:
            rc = meta_rename(c->m, &root_cred, d1, a, d2, b, META_RENAME_EXCHANGE);
            break;
        case 6:
            if (meta_lookup(c->m, &root_cred, d1, a, &at) == 0)
                rc = meta_link(c->m, &root_cred, at.ino, d2, b, &at);
            break;
        }
        if (rc < -4095) /* only errno results are expected */
            abort();
    }
    return NULL;
}

static void expect_clean(meta *m)
{
    meta_check_report r;
    ASSERT_OK(meta_check(m, 0, print_problem, NULL, &r));
    assert_int_equal(r.problems, 0);
}

/* A census of the tree: every name resolves, directory link counts are
 * 2 + subdirectories, file link counts equal the names found, and the
 * usage counter equals the number of distinct inodes. */
typedef struct census {
    meta *m;
    uint64_t ino[4096];
    uint32_t names[4096];
    size_t n;
    int err;
} census;

static void note(census *c, uint64_t ino)
{
    for (size_t i = 0; i < c->n; i++) {
        if (c->ino[i] == ino) {
            c->names[i]++;
            return;
        }
    }
    NB_ASSERT(c->n < 4096);
    c->ino[c->n] = ino;
    c->names[c->n++] = 1;
}

static int census_cb(void *arg, const meta_dirent *e);

static void walk(census *c, uint64_t dir)
{
    if (meta_readdir(c->m, dir, 0, 0, census_cb, c) != 0)
        c->err = 1;
}

static int census_cb(void *arg, const meta_dirent *e)
{
    census *c = arg;
    meta_attr a;
    if (meta_getattr(c->m, e->ino, &a) != 0 || (a.mode & S_IFMT) != e->type) {
        c->err = 1;
        return 1;
    }
    note(c, e->ino);
    if (S_ISDIR(a.mode))
        walk(c, e->ino);
    return 0;
}

static void census_check(census *c)
{
    for (size_t i = 0; i < c->n; i++) {
        meta_attr a;
        if (meta_getattr(c->m, c->ino[i], &a) != 0)
            fail_msg("inode %llu vanished", (unsigned long long)c->ino[i]);
        if (S_ISDIR(a.mode)) {
            if (c->names[i] != 1)
                fail_msg("directory %llu has %u names", (unsigned long long)a.ino, c->names[i]);
            uint32_t sub = 0;
            for (size_t j = 0; j < c->n; j++) {
                meta_attr b;
                if (meta_getattr(c->m, c->ino[j], &b) == 0 && S_ISDIR(b.mode) && b.parent == a.ino)
                    sub++;
            }
            if (a.nlink != 2 + sub)
                fail_msg("directory %llu: nlink %u, want %u", (unsigned long long)a.ino, a.nlink,
                         2 + sub);
        } else if (a.nlink != c->names[i]) {
            fail_msg("inode %llu: nlink %u, names %u", (unsigned long long)a.ino, a.nlink,
                     c->names[i]);
        }
    }
    meta_statfs st;
    meta_statfs_get(c->m, &st);
    assert_int_equal(st.inodes_used, c->n + 1);
    expect_clean(c->m);
}

static void test_concurrency(void **state)
{
    (void)state;
    meta *m = fresh("meta_conc");
    cctx c[4];
    uint64_t dirs[3] = {ROOT, mk(m, ROOT, "d1", S_IFDIR | 0755), mk(m, ROOT, "d2", S_IFDIR | 0755)};
    pthread_t th[4];
    uint64_t seed = nb_test_seed();
    for (int i = 0; i < 4; i++) {
        c[i].m = m;
        memcpy(c[i].dirs, dirs, sizeof(dirs));
        c[i].seed = (unsigned)(seed + (uint64_t)i);
        assert_int_equal(pthread_create(&th[i], NULL, churn, &c[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    /* The tree is consistent: every name resolves, directory link counts
     * are 2 + subdirectories. */
    census *cs = nb_xcalloc(1, sizeof(*cs));
    cs->m = m;
    walk(cs, ROOT);
    assert_int_equal(cs->err, 0);
    census_check(cs);
    /* Root's own link count: 2 + its subdirectories. */
    uint32_t sub = 0;
    for (size_t j = 0; j < cs->n; j++) {
        meta_attr b;
        if (meta_getattr(m, cs->ino[j], &b) == 0 && S_ISDIR(b.mode) && b.parent == ROOT)
            sub++;
    }
    assert_int_equal(attr(m, ROOT).nlink, 2 + sub);
    free(cs);
    meta_close(m);
}

/* Directory renames in every direction at once: the ancestor checks under
 * rename_mu must never let a cycle form, and nothing may deadlock. */
typedef struct storm {
    meta *m;
    uint64_t dirs[32];
    unsigned seed;
} storm;

static void *rename_storm(void *arg)
{
    storm *s = arg;
    char a[8], b[8];
    for (int i = 0; i < CONC_OPS; i++) {
        unsigned r = (unsigned)rand_r(&s->seed);
        uint64_t d1 = s->dirs[r % 32], d2 = s->dirs[(r / 32) % 32];
        snprintf(a, sizeof(a), "s%u", (r / 1024) % 4);
        snprintf(b, sizeof(b), "s%u", (r / 4096) % 4);
        meta_attr at;
        int rc;
        switch ((r / 16384) % 4) {
        case 0:
            rc = meta_mkdir(s->m, &root_cred, d1, a, 0755, &at);
            break;
        case 1:
            rc = meta_rmdir(s->m, &root_cred, d1, a);
            break;
        case 2:
            rc = meta_rename(s->m, &root_cred, d1, a, d2, b, 0);
            break;
        default:
            rc = meta_rename(s->m, &root_cred, d1, a, d2, b, META_RENAME_EXCHANGE);
            break;
        }
        if (rc < -4095)
            abort();
    }
    return NULL;
}

static void test_rename_storm(void **state)
{
    (void)state;
    meta *m = fresh("meta_storm");
    storm st[4];
    uint64_t dirs[32];
    /* A tree of 32 directories, 4 levels deep. */
    dirs[0] = ROOT;
    for (int i = 1; i < 32; i++) {
        char n[8];
        snprintf(n, sizeof(n), "t%d", i);
        dirs[i] = mk(m, dirs[(i - 1) / 4], n, S_IFDIR | 0755);
    }
    pthread_t th[4];
    uint64_t seed = nb_test_seed();
    for (int i = 0; i < 4; i++) {
        st[i].m = m;
        memcpy(st[i].dirs, dirs, sizeof(dirs));
        st[i].seed = (unsigned)(seed * 31 + (uint64_t)i);
        assert_int_equal(pthread_create(&th[i], NULL, rename_storm, &st[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    /* Every directory still reaches the root through its parents. */
    for (int i = 0; i < 32; i++) {
        uint64_t d = dirs[i];
        meta_attr a;
        int depth = 0;
        while (d != ROOT && meta_getattr(m, d, &a) == 0) {
            d = a.parent;
            if (++depth > 1000)
                fail_msg("directory %llu is in a cycle", (unsigned long long)dirs[i]);
        }
    }
    census *cs = nb_xcalloc(1, sizeof(*cs));
    cs->m = m;
    walk(cs, ROOT);
    assert_int_equal(cs->err, 0);
    census_check(cs);
    free(cs);
    meta_close(m);
}

static void patch(kv_db *db, const uint8_t *key, size_t klen, size_t off, const void *bytes,
                  size_t n)
{
    nb_buf v = NB_BUF_INIT;
    ASSERT_OK(kv_get(db, NULL, nb_slice_of(key, klen), &v));
    memcpy(v.data + off, bytes, n);
    kv_batch *b = kv_batch_new();
    kv_batch_put(b, nb_slice_of(key, klen), nb_buf_slice(&v));
    ASSERT_OK(kv_write(db, b, KV_SYNC));
    kv_batch_free(b);
    nb_buf_free(&v);
}

static void del_key(kv_db *db, const uint8_t *key, size_t klen)
{
    kv_batch *b = kv_batch_new();
    kv_batch_delete(b, nb_slice_of(key, klen));
    ASSERT_OK(kv_write(db, b, KV_SYNC));
    kv_batch_free(b);
}

static int count_lines(void *arg, const meta_dirent *e)
{
    (void)e;
    (*(int *)arg)++;
    return 0;
}

static void test_check_repair(void **state)
{
    (void)state;
    meta *m = fresh("meta_check");
    uint64_t d = mk(m, ROOT, "d", S_IFDIR | 0755);
    uint64_t f = mk(m, d, "f", S_IFREG | 0644);
    uint64_t g = mk(m, d, "g", S_IFREG | 0644);
    uint64_t h = mk(m, ROOT, "h", S_IFREG | 0644);
    ASSERT_OK(meta_xattr_set(m, &root_cred, g, "user.x", nb_slice_str("1"), 0));
    uint64_t sid;
    ASSERT_OK(meta_id_alloc(m, META_ID_SLICE, 1, &sid));
    meta_write w = {.chunk = 0, .slice = {.id = sid, .size = 10, .len = 10}};
    ASSERT_OK(meta_publish(m, f, &w, 1, 0, 0, 0, nb_slice_of(NULL, 0), 0, NULL));
    expect_clean(m);
    meta_close(m);

    kv_db *db = NULL;
    ASSERT_OK(kv_open(getenv("NB_KV_ENGINE"), g_dir, NULL, &db));
    /* (a) the readdir twin of d/f goes missing */
    meta_attr fa;
    (void)fa;
    uint8_t k[32];
    k[0] = META_K_DCOOKIE;
    nb_put_u64be(k + 1, d);
    nb_put_u64be(k + 9, META_COOKIE_FIRST);
    del_key(db, k, 17);
    /* (b) inode g vanishes, leaving its dentry and xattr */
    k[0] = META_K_INODE;
    nb_put_u64be(k + 1, g);
    del_key(db, k, 9);
    /* (c) h claims 5 links */
    nb_put_u64be(k + 1, h);
    uint8_t five[4] = {5, 0, 0, 0};
    patch(db, k, 9, META_INO_OFF_NLINK, five, 4);
    /* (d) f says it never had a chunk map, though it has one */
    nb_put_u64be(k + 1, f);
    uint8_t noflags = META_INO_F_NOXATTR | META_INO_F_NOCHUNK | META_INO_F_NOOBJREC;
    patch(db, k, 9, META_INO_OFF_FLAGS, &noflags, 1);
    /* (e) a usage stripe is off by 100 inodes */
    uint8_t uk[3] = {META_K_USAGE, 0, 7}, uv[17] = {META_USAGE_V1, 100};
    kv_batch *b = kv_batch_new();
    kv_batch_put(b, nb_slice_of(uk, 3), nb_slice_of(uv, 17));
    /* (f) the slice allocator forgets its mark */
    uint8_t ik[2] = {META_K_IDS, META_ID_SLICE}, iv[9] = {META_IDS_V1, 1};
    kv_batch_put(b, nb_slice_of(ik, 2), nb_slice_of(iv, 9));
    ASSERT_OK(kv_write(db, b, KV_SYNC));
    kv_batch_free(b);
    kv_close(db);

    ASSERT_OK(meta_open(g_dir, opts(), &m));
    meta_check_report r;
    ASSERT_OK(meta_check(m, 0, print_problem, NULL, &r));
    assert_true(r.problems >= 7);
    assert_int_equal(r.repaired, 0);
    ASSERT_OK(meta_check(m, META_CHECK_REPAIR, NULL, NULL, &r));
    assert_true(r.problems >= 7);
    assert_int_equal(r.repaired, r.problems);
    expect_clean(m);
    /* The repaired namespace works: d/f is listed again, d/g is gone, h has
     * one link, ids do not collide, statfs adds up, and unlinking f drops
     * its chunk map (the flag no longer hides it). */
    int n = 0;
    ASSERT_OK(meta_readdir(m, d, 0, 0, count_lines, &n));
    assert_int_equal(n, 1);
    ASSERT_RC(meta_lookup(m, &root_cred, d, "g", NULL), -ENOENT);
    assert_int_equal(attr(m, h).nlink, 1);
    uint64_t sid2;
    ASSERT_OK(meta_id_alloc(m, META_ID_SLICE, 1, &sid2));
    assert_true(sid2 > sid);
    meta_statfs st;
    meta_statfs_get(m, &st);
    assert_int_equal(st.inodes_used, 4);
    ASSERT_OK(meta_unlink(m, &root_cred, d, "f"));
    ASSERT_OK(meta_rmdir(m, &root_cred, ROOT, "d"));
    m = reopen(m);
    expect_clean(m);
    meta_close(m);
}

int main(void)
{
    nb_log_set_level(NB_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format),        cmocka_unit_test(test_names),
        cmocka_unit_test(test_create_remove), cmocka_unit_test(test_rename),
        cmocka_unit_test(test_readdir),       cmocka_unit_test(test_orphans),
        cmocka_unit_test(test_chunks),        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_xattr),         cmocka_unit_test(test_permissions),
        cmocka_unit_test(test_s3_records),    cmocka_unit_test(test_statfs),
        cmocka_unit_test(test_multipart),     cmocka_unit_test(test_concurrency),
        cmocka_unit_test(test_rename_storm),  cmocka_unit_test(test_check_repair),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (g_dir)
        nb_test_rmdir(g_dir);
    free(g_dir);
    return rc;
}
