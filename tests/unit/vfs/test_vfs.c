/*
 * test_vfs.c — unit tests of the namespace API: namespace operations and
 * their errno, handles (read-your-writes, close-to-open, O_APPEND,
 * O_TRUNC, O_EXCL, truncate), large and sparse files, fallocate and
 * SEEK_DATA/SEEK_HOLE, copy_file_range, bad input (names, symlink loops,
 * EFBIG, a corrupted block), read-only mode, permissions, the S3 mapping
 * (put, lookup, delete, listing in key order), maintenance and fsck.
 */
#include <ftw.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <unistd.h>

#include "data/data_int.h"
#include "disk/disk.h"

#include "vfs_test.h"

#define ROOT VFS_ROOT_INO

static char *g_dir;

/* A new scratch directory; the previous test's goes (a disk-engine store
 * preallocates more than a gigabyte). */
static void new_dir(const char *name)
{
    if (g_dir)
        nb_test_rmdir(g_dir);
    free(g_dir);
    g_dir = nb_test_dir(name);
}

static vfs *fresh(const char *name)
{
    new_dir(name);
    return vt_open(g_dir);
}

static uint64_t mkdir_at(vfs *v, uint64_t parent, const char *name)
{
    vfs_attr a;
    ASSERT_OK(vfs_mkdir(v, NULL, parent, name, 0755, &a));
    return a.ino;
}

static void test_namespace(void **state)
{
    (void)state;
    vfs *v = fresh("vfs_ns");
    uint64_t d = mkdir_at(v, ROOT, "d");
    vfs_attr a;
    ASSERT_RC(vfs_mkdir(v, NULL, ROOT, "d", 0755, &a), -EEXIST);
    ASSERT_OK(vfs_mknod(v, NULL, d, "f", S_IFREG | 0644, 0, &a));
    uint64_t f = a.ino;
    ASSERT_OK(vfs_mknod(v, NULL, d, "fifo", S_IFIFO | 0644, 0, &a));
    assert_true(S_ISFIFO(a.mode));
    ASSERT_OK(vfs_mknod(v, NULL, d, "sock", S_IFSOCK | 0644, 0, &a));
    ASSERT_OK(vfs_mknod(v, NULL, d, "chr", S_IFCHR | 0644, 0x0103, &a));
    assert_int_equal(a.rdev, 0x0103);
    ASSERT_RC(vfs_rmdir(v, NULL, ROOT, "d"), -ENOTEMPTY);
    ASSERT_RC(vfs_unlink(v, NULL, ROOT, "d"), -EISDIR);
    ASSERT_RC(vfs_rmdir(v, NULL, d, "f"), -ENOTDIR);
    ASSERT_RC(vfs_lookup(v, NULL, d, "nope", &a), -ENOENT);
    ASSERT_RC(vfs_lookup(v, NULL, f, "x", &a), -ENOTDIR);
    /* link, symlink, readlink */
    ASSERT_OK(vfs_link(v, NULL, f, ROOT, "hard", &a));
    assert_int_equal(a.nlink, 2);
    ASSERT_RC(vfs_link(v, NULL, d, ROOT, "dirlink", &a), -EPERM);
    ASSERT_OK(vfs_symlink(v, NULL, ROOT, "sym", "d/f", &a));
    assert_true(S_ISLNK(a.mode));
    nb_buf t = NB_BUF_INIT;
    ASSERT_OK(vfs_readlink(v, a.ino, &t));
    assert_string_equal((char *)t.data, "d/f");
    nb_buf_free(&t);
    ASSERT_OK(vfs_resolve(v, NULL, "/sym", VFS_RESOLVE_FOLLOW, &a));
    assert_int_equal(a.ino, f);
    ASSERT_OK(vfs_resolve(v, NULL, "sym", 0, &a));
    assert_true(S_ISLNK(a.mode));
    ASSERT_RC(vfs_resolve(v, NULL, "d/f/x", 0, &a), -ENOTDIR);
    ASSERT_RC(vfs_resolve(v, NULL, "d/f/", 0, &a), -ENOTDIR);
    /* rename: plain, NOREPLACE, EXCHANGE, into own subtree */
    uint64_t e = mkdir_at(v, d, "e");
    ASSERT_RC(vfs_rename(v, NULL, ROOT, "d", e, "x", 0), -EINVAL);
    ASSERT_RC(vfs_rename(v, NULL, d, "f", ROOT, "hard", VFS_RENAME_NOREPLACE), -EEXIST);
    ASSERT_OK(vfs_rename(v, NULL, d, "fifo", ROOT, "sym", VFS_RENAME_EXCHANGE));
    ASSERT_OK(vfs_lookup(v, NULL, ROOT, "sym", &a));
    assert_true(S_ISFIFO(a.mode));
    ASSERT_OK(vfs_lookup(v, NULL, d, "fifo", &a));
    assert_true(S_ISLNK(a.mode));
    ASSERT_RC(vfs_rename(v, NULL, d, "f", d, "e", 0), -EISDIR);
    ASSERT_RC(vfs_rename(v, NULL, ROOT, "d", ROOT, "hard", 0), -ENOTDIR);
    ASSERT_RC(vfs_rename(v, NULL, d, "f", d, "g", 3), -EINVAL);
    ASSERT_OK(vfs_rename(v, NULL, d, "f", ROOT, "hard", 0)); /* same inode: no-op */
    ASSERT_OK(vfs_rename(v, NULL, d, "sock", d, "chr", 0));  /* atomic replace */
    ASSERT_RC(vfs_lookup(v, NULL, d, "sock", &a), -ENOENT);
    ASSERT_OK(vfs_lookup(v, NULL, d, "chr", &a));
    assert_true(S_ISSOCK(a.mode));
    /* names */
    char longname[300];
    memset(longname, 'n', sizeof longname);
    longname[256] = 0;
    ASSERT_RC(vfs_mkdir(v, NULL, ROOT, longname, 0755, &a), -ENAMETOOLONG);
    longname[255] = 0;
    ASSERT_OK(vfs_mkdir(v, NULL, ROOT, longname, 0755, &a));
    ASSERT_RC(vfs_mkdir(v, NULL, ROOT, "a/b", 0755, &a), -EINVAL);
    ASSERT_RC(vfs_mkdir(v, NULL, ROOT, "", 0755, &a), -ENOENT);
    /* symlink loops */
    ASSERT_OK(vfs_symlink(v, NULL, ROOT, "l1", "l2", &a));
    ASSERT_OK(vfs_symlink(v, NULL, ROOT, "l2", "l1", &a));
    ASSERT_RC(vfs_resolve(v, NULL, "l1", VFS_RESOLVE_FOLLOW, &a), -ELOOP);
    ASSERT_RC(vfs_resolve(v, NULL, "l1/x", 0, &a), -ELOOP);
    ASSERT_OK(vfs_symlink(v, NULL, ROOT, "self", "self/x", &a));
    ASSERT_RC(vfs_resolve(v, NULL, "self", VFS_RESOLVE_FOLLOW, &a), -ELOOP);
    vfs_file *fh;
    ASSERT_OK(vfs_resolve(v, NULL, "l1", 0, &a));
    ASSERT_RC(vfs_file_open(v, NULL, a.ino, O_RDONLY, &fh), -ELOOP);
    ASSERT_RC(vfs_file_open(v, NULL, d, O_WRONLY, &fh), -EISDIR);
    vfs_close(v);
}

static void test_readdir_statfs_xattr(void **state)
{
    (void)state;
    vfs *v = fresh("vfs_rdx");
    uint64_t d = mkdir_at(v, ROOT, "d");
    char name[32];
    for (int i = 0; i < 50; i++) {
        snprintf(name, sizeof name, "f%02d", i);
        ASSERT_OK(vfs_mknod(v, NULL, d, name, S_IFREG | 0600, 0, NULL));
    }
    ASSERT_OK(vfs_opendir(v, NULL, d));
    vfs_statfs sf;
    ASSERT_OK(vfs_statfs_get(v, &sf));
    assert_int_equal(sf.namemax, 255);
    assert_true(sf.files > sf.ffree);
    /* xattrs */
    vfs_attr a;
    ASSERT_OK(vfs_lookup(v, NULL, d, "f01", &a));
    ASSERT_OK(vfs_xattr_set(v, NULL, a.ino, "user.k", nb_slice_of("v1", 2), 0));
    ASSERT_RC(vfs_xattr_set(v, NULL, a.ino, "user.k", nb_slice_of("v2", 2), VFS_XATTR_CREATE),
              -EEXIST);
    ASSERT_RC(vfs_xattr_set(v, NULL, a.ino, "user.z", nb_slice_of("v2", 2), VFS_XATTR_REPLACE),
              -ENODATA);
    ASSERT_RC(vfs_xattr_set(v, NULL, a.ino, "trusted.nebula.x", nb_slice_of("v", 1), 0), -EPERM);
    nb_buf b = NB_BUF_INIT;
    ASSERT_OK(vfs_xattr_get(v, NULL, a.ino, "user.k", &b));
    assert_int_equal(b.len, 2);
    assert_memory_equal(b.data, "v1", 2);
    ASSERT_OK(vfs_xattr_list(v, NULL, a.ino, &b));
    assert_int_equal(b.len, 7);
    ASSERT_OK(vfs_xattr_remove(v, NULL, a.ino, "user.k"));
    ASSERT_RC(vfs_xattr_get(v, NULL, a.ino, "user.k", &b), -ENODATA);
    nb_buf_free(&b);
    vfs_close(v);
}

typedef struct rd_state {
    int n;
    uint64_t last_off;
    int stop_at;
} rd_state;

static int rd_cb(void *arg, const vfs_dirent *e)
{
    rd_state *s = arg;
    assert_non_null(e->attr);
    s->n++;
    s->last_off = e->next_off;
    return s->n == s->stop_at;
}

static void test_readdir_cookies(void **state)
{
    (void)state;
    vfs *v = fresh("vfs_rd");
    uint64_t d = mkdir_at(v, ROOT, "d");
    char name[32];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "f%03d", i);
        ASSERT_OK(vfs_mknod(v, NULL, d, name, S_IFREG | 0600, 0, NULL));
    }
    rd_state s = {0, 0, 30};
    ASSERT_OK(vfs_readdir(v, d, 0, VFS_READDIR_ATTRS, rd_cb, &s));
    assert_int_equal(s.n, 30);
    /* removals meanwhile must not make the continuation skip survivors */
    ASSERT_OK(vfs_unlink(v, NULL, d, "f000"));
    ASSERT_OK(vfs_unlink(v, NULL, d, "f050"));
    rd_state s2 = {0, 0, -1};
    ASSERT_OK(vfs_readdir(v, d, s.last_off, VFS_READDIR_ATTRS, rd_cb, &s2));
    assert_int_equal(s.n + s2.n, 99);
    vfs_close(v);
}

static void test_handles(void **state)
{
    (void)state;
    vfs *v = fresh("vfs_fh");
    vfs_file *w, *r, *x;
    vfs_attr a;
    ASSERT_OK(vfs_create(v, NULL, ROOT, "f", 0644, O_RDWR | O_EXCL, &a, &w));
    ASSERT_RC(vfs_create(v, NULL, ROOT, "f", 0644, O_RDWR | O_EXCL, &a, &x), -EEXIST);
    ASSERT_OK(vfs_write(w, 0, "hello world", 11, NULL));
    ASSERT_OK(vfs_write(w, 6, "WORLD", 5, NULL));
    char buf[64];
    size_t got;
    /* read-your-writes within the handle */
    ASSERT_OK(vfs_read(w, 0, buf, sizeof buf, &got));
    assert_int_equal(got, 11);
    assert_memory_equal(buf, "hello WORLD", 11);
    ASSERT_OK(vfs_getattr(v, a.ino, &a));
    assert_int_equal(a.size, 11);
    /* other handles see published data only */
    ASSERT_OK(vfs_file_open(v, NULL, a.ino, O_RDONLY, &r));
    ASSERT_OK(vfs_read(r, 0, buf, sizeof buf, &got));
    assert_int_equal(got, 0); /* not published yet */
    ASSERT_OK(vfs_flush(w));
    ASSERT_OK(vfs_read(r, 0, buf, sizeof buf, &got));
    assert_int_equal(got, 11);
    assert_memory_equal(buf, "hello WORLD", 11);
    ASSERT_RC(vfs_write(r, 0, "x", 1, NULL), -EBADF);
    /* O_APPEND */
    ASSERT_OK(vfs_file_open(v, NULL, a.ino, O_WRONLY | O_APPEND, &x));
    uint64_t end;
    ASSERT_OK(vfs_write(x, 0, "!!", 2, &end));
    assert_int_equal(end, 13);
    ASSERT_RC(vfs_read(x, 0, buf, 1, &got), -EBADF);
    ASSERT_OK(vfs_release(x));
    ASSERT_OK(vfs_read(r, 0, buf, sizeof buf, &got));
    assert_int_equal(got, 13);
    assert_memory_equal(buf, "hello WORLD!!", 13);
    /* ftruncate through a handle, then truncate up reads zeros */
    vfs_sattr sa;
    memset(&sa, 0, sizeof sa);
    sa.valid = VFS_SET_SIZE;
    sa.size = 5;
    ASSERT_OK(vfs_write(w, 20, "tail", 4, NULL));
    ASSERT_OK(vfs_setattr(v, NULL, a.ino, w, &sa, &a));
    assert_int_equal(a.size, 5);
    sa.size = 10;
    ASSERT_OK(vfs_setattr(v, NULL, a.ino, NULL, &sa, &a));
    ASSERT_OK(vfs_read(r, 0, buf, sizeof buf, &got));
    assert_int_equal(got, 10);
    assert_memory_equal(buf, "hello\0\0\0\0\0", 10);
    ASSERT_OK(vfs_release(w));
    /* O_TRUNC */
    ASSERT_OK(vfs_file_open(v, NULL, a.ino, O_WRONLY | O_TRUNC, &w));
    ASSERT_OK(vfs_getattr(v, a.ino, &a));
    assert_int_equal(a.size, 0);
    ASSERT_OK(vfs_release(w));
    /* unlink while open: the data stays readable until the last close */
    vt_put_file(v, "g", "data", 4);
    ASSERT_OK(vfs_resolve(v, NULL, "g", 0, &a));
    ASSERT_OK(vfs_file_open(v, NULL, a.ino, O_RDONLY, &x));
    /* a small file is an inline slice: no block to send from, the caller
     * copies (the gateway falls back to vfs_read) */
    vfs_refs *refs = NULL;
    ASSERT_RC(vfs_read_refs(x, 0, 4, &refs), -EAGAIN);
    assert_null(refs);
    ASSERT_OK(vfs_unlink(v, NULL, ROOT, "g"));
    ASSERT_OK(vfs_read(x, 0, buf, sizeof buf, &got));
    assert_int_equal(got, 4);
    ASSERT_OK(vfs_release(x));
    ASSERT_RC(vfs_getattr(v, a.ino, &a), -ENOENT);
    ASSERT_OK(vfs_release(r));
    vfs_close(v);
}

static void test_large_and_sparse(void **state)
{
    (void)state;
    vfs *v = fresh("vfs_large");
    size_t n = (size_t)(9u << 20) + 12345;
    uint8_t *data = nb_xmalloc(n), *back;
    vt_fill(7, data, n);
    /* sequential writes in 100 KiB pieces and one random overwrite */
    vfs_file *f;
    vfs_attr a;
    ASSERT_OK(vfs_create(v, NULL, ROOT, "big", 0644, O_RDWR, &a, &f));
    for (size_t off = 0; off < n; off += 100000) {
        size_t l = n - off < 100000 ? n - off : 100000;
        ASSERT_OK(vfs_write(f, off, data + off, l, NULL));
    }
    memset(data + 5000000, 0xAB, 3000);
    ASSERT_OK(vfs_write(f, 5000000, data + 5000000, 3000, NULL));
    uint8_t tmp[4096];
    size_t got;
    ASSERT_OK(vfs_read(f, 4999000, tmp, 4096, &got));
    assert_memory_equal(tmp, data + 4999000, 4096);
    ASSERT_OK(vfs_release(f));
    assert_int_equal(vt_get_file(v, "big", &back), n);
    assert_memory_equal(back, data, n);
    free(back);
    /* a sparse file across a chunk boundary */
    uint64_t far = (64ull << 20) - 10;
    ASSERT_OK(vfs_create(v, NULL, ROOT, "sparse", 0644, O_RDWR, &a, &f));
    ASSERT_OK(vfs_write(f, far, "0123456789abcdefghij", 20, NULL));
    ASSERT_OK(vfs_fsync(f, false));
    ASSERT_OK(vfs_read(f, far - 5, tmp, 40, &got));
    assert_int_equal(got, 25);
    assert_memory_equal(tmp,
                        "\0\0\0\0\0"
                        "0123456789abcdefghij",
                        25);
    uint64_t pos;
    ASSERT_OK(vfs_lseek(f, 0, SEEK_DATA, &pos));
    assert_int_equal(pos, far);
    ASSERT_OK(vfs_lseek(f, far + 3, SEEK_HOLE, &pos));
    assert_int_equal(pos, far + 20);
    ASSERT_OK(vfs_lseek(f, 0, SEEK_HOLE, &pos));
    assert_int_equal(pos, 0);
    ASSERT_RC(vfs_lseek(f, far + 20, SEEK_DATA, &pos), -ENXIO);
    /* fallocate */
    ASSERT_OK(vfs_fallocate(f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, far + 2, 4));
    ASSERT_OK(vfs_read(f, far, tmp, 8, &got));
    assert_memory_equal(tmp,
                        "01\0\0\0\0"
                        "67",
                        8);
    ASSERT_RC(vfs_fallocate(f, FALLOC_FL_PUNCH_HOLE, 0, 4), -EOPNOTSUPP);
    ASSERT_RC(vfs_fallocate(f, 0x40 /* INSERT_RANGE */, 0, 4096), -EOPNOTSUPP);
    ASSERT_OK(vfs_fallocate(f, FALLOC_FL_KEEP_SIZE, far + 100, 4096));
    ASSERT_OK(vfs_getattr(v, a.ino, &a));
    assert_int_equal(a.size, far + 20);
    ASSERT_OK(vfs_fallocate(f, 0, far + 100, 4096));
    ASSERT_OK(vfs_getattr(v, a.ino, &a));
    assert_int_equal(a.size, far + 4196);
    /* EFBIG */
    ASSERT_RC(vfs_write(f, VFS_MAX_FILE_SIZE - 1, "ab", 2, NULL), -EFBIG);
    vfs_sattr sa;
    memset(&sa, 0, sizeof sa);
    sa.valid = VFS_SET_SIZE;
    sa.size = VFS_MAX_FILE_SIZE + 1;
    ASSERT_RC(vfs_setattr(v, NULL, a.ino, f, &sa, NULL), -EFBIG);
    /* copy_file_range */
    vfs_file *g;
    ASSERT_OK(vfs_create(v, NULL, ROOT, "copy", 0644, O_RDWR, &a, &g));
    size_t copied;
    ASSERT_OK(vfs_copy_range(f, far, g, 3, 20, &copied));
    assert_int_equal(copied, 20);
    ASSERT_OK(vfs_read(g, 0, tmp, 64, &got));
    assert_int_equal(got, 23);
    assert_memory_equal(tmp + 3,
                        "01\0\0\0\0"
                        "6789abcdefghij",
                        20);
    ASSERT_OK(vfs_release(g));
    ASSERT_OK(vfs_release(f));
    free(data);
    vfs_close(v);
    ASSERT_OK(vfs_fsck(g_dir, false, stderr));
}

static size_t g_flip_root; /* length of the walk's root: only what is below it counts */

static int flip_last(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F || st->st_size < 100 || strstr(path + g_flip_root, "/meta/"))
        return 0;
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, st->st_size - 1), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, st->st_size - 1), 1);
    close(fd);
    return 1;
}

static void test_corrupt_block(void **state)
{
    (void)state;
    if (vt_disk_backend())
        skip(); /* flips a byte of a dir-backend block file */
    vfs *v = fresh("vfs_corrupt");
    uint8_t data[20000]; /* above the inline limit: a block */
    vt_fill(3, data, sizeof data);
    vt_put_file(v, "f", data, sizeof data);
    vfs_close(v);
    char *blocks = nb_xasprintf("%s/blocks", g_dir);
    g_flip_root = strlen(blocks);
    assert_int_equal(nftw(blocks, flip_last, 16, FTW_PHYS), 1);
    free(blocks);
    v = vt_open(g_dir);
    vfs_attr a;
    ASSERT_OK(vfs_resolve(v, NULL, "f", 0, &a));
    vfs_file *f;
    ASSERT_OK(vfs_file_open(v, NULL, a.ino, O_RDONLY, &f));
    uint8_t buf[20000];
    size_t got;
    ASSERT_RC(vfs_read(f, 0, buf, sizeof buf, &got), -EIO);
    ASSERT_OK(vfs_release(f));
    vfs_close(v);
}

/* Finds the block with index 1 (the file's only slice has one) and flips
 * a byte of it through the data file, so the damaged page sits in the
 * page cache: a restarted server's warm read meets it there. */
static int damage_block1(void *arg, const data_bs_entry *e)
{
    data_key *k = arg;
    if (e->key.block == 1)
        *k = e->key;
    return 0;
}

static void damage_in_page_cache(uint32_t at)
{
    vfs_options vo;
    vt_options(&vo, g_dir);
    disk_options dko;
    disk_options_init(&dko);
    dko.capacity = vo.disk_size;
    if (vo.disk_reserve)
        dko.reserve = vo.disk_reserve;
    char *ddir = nb_xasprintf("%s/disk", g_dir);
    data_bs *bs;
    ASSERT_OK(data_bs_open_disk(ddir, &dko, &bs));
    free(ddir);
    data_key k = {0, 0};
    ASSERT_OK(data_bs_iterate(bs, damage_block1, &k));
    assert_true(k.slice_id != 0);
    data_fdref r;
    ASSERT_OK(data__bs_read_fd(bs, k, 0, 1, DATA__FD_NOVERIFY, &r));
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", r.fd);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)r.off + at), 1);
    b ^= 0x5a;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)r.off + at), 1);
    close(fd);
    data_fdref_release(bs, &r);
    data_bs_close(bs);
}

/* A restarted server's warm read (page cache warm): a block damaged in
 * the page cache fails the read that touches the damaged 64 KiB segment
 * with EIO, and every other read, of that block too, returns the right
 * bytes. Both ways there: a stream's first block that readahead did not
 * reach, and one that readahead reached first (docs/data.md §4). */
static void test_damaged_block_warm(void **state)
{
    (void)state;
    if (!vt_disk_backend())
        skip(); /* the disk store's check (the dir store checks 64 KiB segments) */
    const size_t mib = 1u << 20, len = 12 * mib + 5000;
    vfs *v = fresh("vfs_damaged_warm");
    uint8_t *data = nb_xmalloc(len), *buf = nb_xaligned_alloc(4096, mib);
    vt_fill(11, data, len);
    vt_put_file(v, "f", data, len);
    uint8_t *back;
    assert_int_equal(vt_get_file(v, "f", &back), len); /* the whole file in the page cache */
    free(back);
    vfs_close(v);
    const uint32_t at = 1234567; /* in block 1: file bytes [4 MiB, 8 MiB) */
    damage_in_page_cache(at);
    /* from: where the stream starts. 3 MiB: block 1 is the second read's,
     * before any readahead, so the reader checks it itself. 0: readahead
     * reaches block 1 first. */
    const size_t starts[] = {3 * mib, 0};
    for (size_t si = 0; si < 2; si++) {
        v = vt_open(g_dir);
        vfs_attr a;
        ASSERT_OK(vfs_resolve(v, NULL, "f", 0, &a));
        vfs_file *f;
        ASSERT_OK(vfs_file_open(v, NULL, a.ino, O_RDONLY, &f));
        size_t failed = 0;
        for (size_t off = starts[si]; off < len; off += mib) {
            size_t got = 0;
            memset(buf, 0, mib);
            int rc = vfs_read(f, off, buf, mib, &got);
            /* Only the read of the damaged 64 KiB segment fails: the
             * disk store checks the segments each read touches. */
            if (off <= 4 * mib + at && 4 * mib + at < off + mib) {
                assert_int_equal(rc, -EIO);
                failed++;
            } else {
                ASSERT_OK(rc);
                size_t want = len - off < mib ? len - off : mib;
                assert_int_equal(got, want);
                assert_memory_equal(buf, data + off, want);
            }
        }
        assert_int_equal(failed, 1);
        ASSERT_OK(vfs_release(f));
        vfs_close(v);
    }
    free(buf);
    free(data);
}

static void test_enospc(void **state)
{
    (void)state;
    new_dir("vfs_enospc");
    vfs_options o;
    vt_options(&o, g_dir);
    o.capacity_bytes = 1u << 20;
    vfs *v;
    ASSERT_OK(vfs_open(&o, &v));
    uint8_t *data = nb_xmalloc(700000);
    vt_fill(9, data, 700000);
    vt_put_file(v, "one", data, 700000);
    vfs_file *f;
    vfs_attr a;
    ASSERT_OK(vfs_create(v, NULL, ROOT, "two", 0644, O_WRONLY, &a, &f));
    ASSERT_OK(vfs_write(f, 0, data, 700000, NULL)); /* buffered */
    ASSERT_RC(vfs_fsync(f, false), -ENOSPC);        /* publish refused */
    ASSERT_OK(vfs_release(f));
    ASSERT_OK(vfs_getattr(v, a.ino, &a));
    assert_int_equal(a.size, 0); /* nothing half-written */
    vfs_put *p;
    ASSERT_OK(vfs_bucket_create(v, NULL, "b", 0755, &(vfs_bucket){.owner = "x"}));
    ASSERT_OK(vfs_put_begin(v, NULL, "b", "k", 0644, &p));
    ASSERT_OK(vfs_put_write(p, data, 700000));
    ASSERT_RC(vfs_put_commit(p, nb_slice_of(NULL, 0), NULL), -ENOSPC);
    ASSERT_RC(vfs_s3_lookup(v, NULL, "b", "k", &a), -ENOENT);
    /* freeing space makes writes work again */
    ASSERT_OK(vfs_unlink(v, NULL, ROOT, "one"));
    vt_put_file(v, "two", data, 700000);
    uint8_t *back;
    assert_int_equal(vt_get_file(v, "two", &back), 700000);
    assert_memory_equal(back, data, 700000);
    free(back);
    free(data);
    vfs_maint_report r;
    ASSERT_OK(vfs_maintain(v, &r));
    vfs_close(v);
    ASSERT_OK(vfs_fsck(g_dir, false, stderr));
}

/* copy_file_range shares slices: the copy survives the source's removal
 * and the collector, and the blocks go once neither file needs them. */
static void test_copy_shares(void **state)
{
    (void)state;
    new_dir("vfs_share");
    vfs_options o;
    vt_options(&o, g_dir);
    o.collect_grace_ns = 1;
    vfs *v;
    ASSERT_OK(vfs_open(&o, &v));
    size_t n = 3u << 20;
    uint8_t *data = nb_xmalloc(n), *back;
    vt_fill(21, data, n);
    vt_put_file(v, "src", data, n);
    vfs_attr a;
    vfs_file *in, *out;
    ASSERT_OK(vfs_resolve(v, NULL, "src", 0, &a));
    ASSERT_OK(vfs_file_open(v, NULL, a.ino, O_RDONLY, &in));
    ASSERT_OK(vfs_create(v, NULL, ROOT, "dst", 0644, O_RDWR, &a, &out));
    size_t copied;
    /* across the target's chunk boundary, from an unaligned source offset */
    uint64_t at = (64ull << 20) - 1000;
    ASSERT_OK(vfs_copy_range(in, 12345, out, at, n, &copied));
    assert_int_equal(copied, n - 12345);
    ASSERT_OK(vfs_copy_range(in, 0, out, 0, 100, &copied));
    ASSERT_OK(vfs_release(in));
    ASSERT_OK(vfs_release(out));
    ASSERT_OK(vfs_unlink(v, NULL, ROOT, "src"));
    vfs_maint_report r;
    ASSERT_OK(vfs_maintain(v, &r));
    ASSERT_OK(vfs_maintain(v, &r));
    ASSERT_OK(vfs_resolve(v, NULL, "dst", 0, &a));
    assert_int_equal(a.size, at + n - 12345);
    ASSERT_OK(vfs_file_open(v, NULL, a.ino, O_RDONLY, &in));
    back = nb_xmalloc(n);
    size_t got;
    ASSERT_OK(vfs_read(in, at, back, n, &got));
    assert_int_equal(got, n - 12345);
    assert_memory_equal(back, data + 12345, n - 12345);
    ASSERT_OK(vfs_read(in, 0, back, 200, &got));
    assert_memory_equal(back, data, 100);
    assert_memory_equal(back + 100, (uint8_t[100]){0}, 100);
    ASSERT_OK(vfs_release(in));
    vfs_close(v);
    ASSERT_OK(vfs_fsck(g_dir, false, stderr));
    /* once the copy goes too, every block goes */
    ASSERT_OK(vfs_open(&o, &v));
    ASSERT_OK(vfs_unlink(v, NULL, ROOT, "dst"));
    ASSERT_OK(vfs_maintain(v, &r));
    assert_true(r.slices_released >= 1);
    vfs_close(v);
    ASSERT_OK(vfs_fsck(g_dir, false, stderr));
    free(back);
    free(data);
}

static int count_parts(void *arg, const vfs_part_info *p)
{
    (*(uint64_t *)arg) += p->size;
    return 0;
}

/* A PUT body of at most 16 KiB is stored inline (no block: refs answer
 * -EAGAIN), a larger one in blocks, also when it crosses the limit in
 * pieces; every size reads back whole, across a reopen. */
static void test_put_inline(void **state)
{
    (void)state;
    vfs *v = fresh("vfs_put_inline");
    ASSERT_OK(vfs_bucket_create(v, NULL, "b", 0755, &(vfs_bucket){.owner = "x"}));
    static const size_t sizes[] = {1, 4096, 16384, 16385, 70000};
    uint8_t data[70000], back[70000];
    vt_fill(11, data, sizeof data);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < NB_ARRAY_LEN(sizes); i++) {
            char key[32];
            snprintf(key, sizeof key, "k%zu", sizes[i]);
            if (round == 0) {
                vfs_put *p;
                ASSERT_OK(vfs_put_begin(v, NULL, "b", key, 0644, &p));
                for (size_t off = 0; off < sizes[i]; off += 8000)
                    ASSERT_OK(vfs_put_write(p, data + off,
                                            sizes[i] - off < 8000 ? sizes[i] - off : 8000));
                ASSERT_OK(vfs_put_commit(p, nb_slice_of(NULL, 0), NULL));
            }
            vfs_file *f;
            ASSERT_OK(vfs_s3_open(v, NULL, "b", key, &f));
            size_t got = 0;
            ASSERT_OK(vfs_read(f, 0, back, sizeof back, &got));
            assert_int_equal(got, sizes[i]);
            assert_memory_equal(back, data, sizes[i]);
            vfs_refs *refs = NULL;
            int rc = vfs_read_refs(f, 0, sizes[i], &refs);
            assert_int_equal(rc, sizes[i] <= 16384 ? -EAGAIN : 0);
            vfs_refs_free(refs);
            ASSERT_OK(vfs_release(f));
        }
        vfs_close(v);
        v = vt_open(g_dir);
    }
    vfs_close(v);
    ASSERT_OK(vfs_fsck(g_dir, false, stderr));
}

static void test_multipart(void **state)
{
    (void)state;
    new_dir("vfs_mpu");
    vfs_options o;
    vt_options(&o, g_dir);
    o.collect_grace_ns = 1;
    vfs *v;
    ASSERT_OK(vfs_open(&o, &v));
    ASSERT_OK(vfs_bucket_create(v, NULL, "b", 0755, &(vfs_bucket){.owner = "o"}));
    uint64_t up, up2;
    ASSERT_RC(vfs_mpu_create(v, NULL, "b", "d/", NULL, nb_slice_of(NULL, 0), &up), -EINVAL);
    ASSERT_OK(vfs_mpu_create(v, NULL, "b", "d/obj", "o", nb_slice_of(NULL, 0), &up));
    size_t n1 = (5u << 20) + 7, n2 = 1000;
    uint8_t *d1 = nb_xmalloc(n1), d2[1000], d2b[1000];
    vt_fill(31, d1, n1);
    vt_fill(32, d2, n2);
    vt_fill(33, d2b, n2);
    vfs_part *p;
    ASSERT_RC(vfs_part_begin(v, up, 0, &p), -EINVAL);
    ASSERT_OK(vfs_part_begin(v, up, 2, &p));
    ASSERT_OK(vfs_part_write(p, d2, n2));
    ASSERT_OK(vfs_part_commit(p, "\"e2\""));
    ASSERT_OK(vfs_part_begin(v, up, 1, &p));
    for (size_t off = 0; off < n1; off += 65536)
        ASSERT_OK(vfs_part_write(p, d1 + off, n1 - off < 65536 ? n1 - off : 65536));
    ASSERT_OK(vfs_part_commit(p, "\"e1\""));
    ASSERT_OK(vfs_part_begin(v, up, 2, &p)); /* replaces part 2 */
    ASSERT_OK(vfs_part_write(p, d2b, n2));
    ASSERT_OK(vfs_part_commit(p, "\"e2b\""));
    uint64_t total = 0;
    ASSERT_OK(vfs_part_list(v, up, 0, count_parts, &total));
    assert_int_equal(total, n1 + n2);
    /* nothing visible before Complete; a missing part changes nothing */
    vfs_attr a;
    ASSERT_RC(vfs_s3_lookup(v, NULL, "b", "d/obj", &a), -ENOENT);
    uint32_t bad[2] = {1, 3};
    ASSERT_RC(vfs_mpu_complete(v, NULL, up, bad, 2, nb_slice_of(NULL, 0), &a), NB_ENOTFOUND);
    ASSERT_RC(vfs_s3_lookup(v, NULL, "b", "d/obj", &a), -ENOENT);
    /* another upload, aborted */
    ASSERT_OK(vfs_mpu_create(v, NULL, "b", "other", NULL, nb_slice_of(NULL, 0), &up2));
    ASSERT_OK(vfs_part_begin(v, up2, 1, &p));
    ASSERT_OK(vfs_part_write(p, d1, n1));
    ASSERT_OK(vfs_part_commit(p, "x"));
    ASSERT_OK(vfs_mpu_abort(v, up2));
    vfs_maint_report r;
    ASSERT_OK(vfs_maintain(v, &r));
    /* Complete */
    uint32_t nums[2] = {1, 2};
    vfs_objrec rec;
    memset(&rec, 0, sizeof rec);
    rec.etag = "\"mp-2\"";
    rec.parts = 2;
    nb_buf enc = NB_BUF_INIT;
    ASSERT_OK(vfs_objrec_encode(&rec, &enc));
    ASSERT_OK(vfs_mpu_complete(v, NULL, up, nums, 2, nb_buf_slice(&enc), &a));
    nb_buf_free(&enc);
    assert_int_equal(a.size, n1 + n2);
    /* The record is installed stamped with the mtime Complete gave the
     * object (one write; the gateway does not rewrite it). */
    ASSERT_OK(vfs_objrec_get(v, a.ino, &enc));
    ASSERT_OK(vfs_objrec_decode(nb_buf_slice(&enc), &rec));
    nb_buf_free(&enc);
    assert_string_equal(rec.etag, "\"mp-2\"");
    assert_true(rec.etag_mtime_ns == a.mtime_ns && a.mtime_ns != 0);
    vfs_objrec_free(&rec);
    vfs_upload u;
    ASSERT_RC(vfs_mpu_get(v, up, &u), NB_ENOTFOUND);
    ASSERT_OK(vfs_maintain(v, &r));
    uint8_t *back;
    assert_int_equal(vt_get_file(v, "b/d/obj", &back), n1 + n2);
    assert_memory_equal(back, d1, n1);
    assert_memory_equal(back + n1, d2b, n2);
    free(back);
    vfs_close(v);
    ASSERT_OK(vfs_fsck(g_dir, false, stderr));
    free(d1);
}

static void test_read_only_and_perms(void **state)
{
    (void)state;
    vfs *v = fresh("vfs_ro");
    uint64_t d = mkdir_at(v, ROOT, "d");
    vt_put_file(v, "d/f", "x", 1);
    vfs_sattr sa;
    memset(&sa, 0, sizeof sa);
    sa.valid = VFS_SET_MODE;
    sa.mode = 0700;
    ASSERT_OK(vfs_setattr(v, NULL, d, NULL, &sa, NULL));
    uint32_t groups[1] = {100};
    vfs_cred user = {1000, 1000, 1, groups};
    vfs_attr a;
    ASSERT_RC(vfs_lookup(v, &user, d, "f", &a), -EACCES);
    ASSERT_RC(vfs_resolve(v, &user, "d/f", 0, &a), -EACCES);
    ASSERT_RC(vfs_mknod(v, &user, ROOT, "u", S_IFREG | 0644, 0, &a), -EACCES);
    ASSERT_RC(vfs_setattr(v, &user, d, NULL, &sa, NULL), -EPERM);
    ASSERT_OK(vfs_resolve(v, NULL, "d/f", 0, &a));
    vfs_file *f;
    sa.mode = 0755;
    ASSERT_OK(vfs_setattr(v, NULL, d, NULL, &sa, NULL));
    ASSERT_RC(vfs_file_open(v, &user, a.ino, O_WRONLY, &f), -EACCES);
    ASSERT_OK(vfs_file_open(v, &user, a.ino, O_RDONLY, &f));
    ASSERT_OK(vfs_release(f));
    vfs_close(v);

    vfs_options o;
    vt_options(&o, g_dir);
    o.read_only = true;
    ASSERT_OK(vfs_open(&o, &v));
    ASSERT_RC(vfs_mkdir(v, NULL, ROOT, "x", 0755, &a), -EROFS);
    ASSERT_RC(vfs_unlink(v, NULL, d, "f"), -EROFS);
    ASSERT_RC(vfs_file_open(v, NULL, a.ino, O_RDWR, &f), -EROFS);
    ASSERT_RC(vfs_access(v, NULL, a.ino, W_OK), -EROFS);
    ASSERT_RC(vfs_create(v, NULL, ROOT, "new", 0644, O_WRONLY, &a, &f), -EROFS);
    uint8_t *b;
    assert_int_equal(vt_get_file(v, "d/f", &b), 1);
    free(b);
    vfs_close(v);
}

/* ---- S3 -------------------------------------------------------------------------------------- */

static void put(vfs *v, const char *bucket, const char *key, const char *body)
{
    vfs_put *p;
    ASSERT_OK(vfs_put_begin(v, NULL, bucket, key, 0644, &p));
    ASSERT_OK(vfs_put_write(p, body, strlen(body)));
    ASSERT_OK(vfs_put_commit(p, nb_slice_of(NULL, 0), NULL));
}

typedef struct lst {
    nb_buf out;
} lst;

static int list_cb(void *arg, const vfs_list_entry *e)
{
    lst *l = arg;
    ASSERT_OK(nb_buf_append(&l->out, e->key, e->key_len));
    ASSERT_OK(nb_buf_append_str(&l->out, e->is_prefix ? "P " : " "));
    return 0;
}

static char *list(vfs *v, const char *prefix, const char *delim, const char *after, size_t max,
                  char **next)
{
    lst l = {NB_BUF_INIT};
    vfs_list_opts o = {prefix, delim, after, max};
    bool trunc;
    char *nx = NULL;
    ASSERT_OK(vfs_s3_list(v, NULL, "b", &o, list_cb, &l, &trunc, &nx));
    assert_true(trunc == (nx != NULL));
    if (next)
        *next = nx;
    else
        free(nx);
    ASSERT_OK(nb_buf_nul_terminate(&l.out));
    return l.out.data ? (char *)l.out.data : nb_xstrdup("");
}

static void check_list(vfs *v, const char *prefix, const char *delim, const char *after,
                       const char *want)
{
    char *got = list(v, prefix, delim, after, 0, NULL);
    if (strcmp(got, want) != 0)
        fail_msg("list(prefix=%s, delim=%s, after=%s):\n got  %s\n want %s", prefix ? prefix : "",
                 delim ? delim : "", after ? after : "", got, want);
    free(got);
}

typedef struct notes {
    int entries;
    char last[64];
} notes;

static void note_cb(void *arg, const vfs_notify *n)
{
    notes *t = arg;
    if (n->kind == VFS_NOTIFY_ENTRY) {
        t->entries++;
        snprintf(t->last, sizeof t->last, "%s", n->name);
    }
}

/* GET and HEAD from one snapshot, without opening the file (vfs_s3_get):
 * the same answers as vfs_s3_lookup + vfs_read, inline and block bodies,
 * zero-copy pieces, and -EAGAIN where only an open file can answer. */
static void test_s3_get(void **state)
{
    (void)state;
    vfs *v = fresh("vfs_s3_get");
    vfs_bucket bk;
    memset(&bk, 0, sizeof bk);
    bk.owner = "root";
    ASSERT_OK(vfs_bucket_create(v, NULL, "b", 0755, &bk));
    put(v, "b", "a/b/small", "hello, world");
    enum { BIG = 3 * 65536 + 17 };
    uint8_t *big = nb_xmalloc(BIG), *buf = nb_xmalloc(BIG);
    vt_fill(5, big, BIG);
    vfs_put *p;
    vfs_objrec r;
    memset(&r, 0, sizeof r);
    r.etag = "\"e\"";
    nb_buf rb = NB_BUF_INIT;
    ASSERT_OK(vfs_objrec_encode(&r, &rb));
    ASSERT_OK(vfs_put_begin(v, NULL, "b", "big", 0644, &p));
    ASSERT_OK(vfs_put_write(p, big, BIG));
    ASSERT_OK(vfs_put_commit(p, nb_buf_slice(&rb), NULL));
    put(v, "b", "m/", "");

    vfs_s3_obj *o;
    vfs_attr a;
    /* a small object: attributes as lookup says, bytes from the snapshot */
    ASSERT_OK(vfs_s3_get(v, "b", "a/b/small", true, &o));
    ASSERT_OK(vfs_s3_lookup(v, NULL, "b", "a/b/small", &a));
    assert_int_equal(vfs_s3_obj_attr(o)->ino, a.ino);
    assert_int_equal(vfs_s3_obj_attr(o)->size, 12);
    assert_int_equal(vfs_s3_obj_rec(o).len, 0);
    ASSERT_OK(vfs_s3_obj_read(o, 0, buf, 12));
    assert_memory_equal(buf, "hello, world", 12);
    ASSERT_OK(vfs_s3_obj_read(o, 7, buf, 5));
    assert_memory_equal(buf, "world", 5);
    ASSERT_RC(vfs_s3_obj_read(o, 7, buf, 6), -EINVAL); /* past the end */
    vfs_refs *refs = NULL;
    if (vfs_s3_obj_refs(o, 0, 12, &refs) == 0) /* a block on some stores, inline on others */
        vfs_refs_free(refs);
    vfs_s3_obj_free(o);
    /* a block object: its record, ranges, zero-copy pieces that add up */
    ASSERT_OK(vfs_s3_get(v, "b", "big", true, &o));
    assert_int_equal(vfs_s3_obj_attr(o)->size, BIG);
    vfs_objrec r2;
    ASSERT_OK(vfs_objrec_decode(vfs_s3_obj_rec(o), &r2));
    assert_string_equal(r2.etag, "\"e\"");
    vfs_objrec_free(&r2);
    ASSERT_OK(vfs_s3_obj_read(o, 0, buf, BIG));
    assert_memory_equal(buf, big, BIG);
    ASSERT_OK(vfs_s3_obj_read(o, 65530, buf, 70000));
    assert_memory_equal(buf, big + 65530, 70000);
    ASSERT_OK(vfs_s3_obj_refs(o, 100, BIG - 200, &refs));
    size_t n, total = 0;
    const vfs_piece *pc = vfs_refs_pieces(refs, &n);
    for (size_t i = 0; i < n; i++) {
        assert_true(pc[i].fd >= 0);
        size_t got = 0;
        ASSERT_OK(nb_pread_full(pc[i].fd, buf + total, pc[i].len, (off_t)pc[i].off, &got));
        assert_int_equal(got, pc[i].len);
        total += pc[i].len;
    }
    assert_int_equal(total, BIG - 200);
    assert_memory_equal(buf, big + 100, BIG - 200);
    vfs_refs_free(refs);
    vfs_s3_obj_free(o);
    /* the object deleted while a GET holds its snapshot: the GET still
     * reads the bytes it found */
    ASSERT_OK(vfs_s3_get(v, "b", "big", true, &o));
    ASSERT_OK(vfs_s3_delete(v, NULL, "b", "big"));
    ASSERT_OK(vfs_s3_obj_read(o, 0, buf, BIG));
    assert_memory_equal(buf, big, BIG);
    vfs_s3_obj_free(o);
    ASSERT_RC(vfs_s3_get(v, "b", "big", true, &o), -ENOENT);
    /* HEAD: no data asked, no bytes given */
    ASSERT_OK(vfs_s3_get(v, "b", "a/b/small", false, &o));
    ASSERT_RC(vfs_s3_obj_read(o, 0, buf, 1), -EAGAIN);
    vfs_s3_obj_free(o);
    /* a marker is its directory; what is not an object is -ENOENT */
    ASSERT_OK(vfs_s3_get(v, "b", "m/", true, &o));
    assert_true(S_ISDIR(vfs_s3_obj_attr(o)->mode));
    vfs_s3_obj_free(o);
    ASSERT_RC(vfs_s3_get(v, "b", "a/b", true, &o), -ENOENT);        /* a directory */
    ASSERT_RC(vfs_s3_get(v, "b", "a/b/small/", true, &o), -ENOENT); /* a file */
    ASSERT_RC(vfs_s3_get(v, "b", "a/x/small", true, &o), -ENOENT);
    ASSERT_RC(vfs_s3_get(v, "nob", "x", true, &o), -ENOENT);
    ASSERT_RC(vfs_s3_get(v, "b", "a//b", true, &o), -EINVAL);
    ASSERT_RC(vfs_s3_get(v, "", "x", true, &o), -EINVAL);
    assert_null(o);
    /* unpublished writes of an open handle: the size counts them (as
     * vfs_getattr does) and only an open file can read them */
    vfs_file *w;
    ASSERT_OK(vfs_s3_lookup(v, NULL, "b", "a/b/small", &a));
    ASSERT_OK(vfs_file_open(v, NULL, a.ino, O_WRONLY, &w));
    ASSERT_OK(vfs_write(w, 12, "!!", 2, NULL));
    ASSERT_OK(vfs_s3_get(v, "b", "a/b/small", true, &o));
    assert_int_equal(vfs_s3_obj_attr(o)->size, 14);
    ASSERT_RC(vfs_s3_obj_read(o, 0, buf, 12), -EAGAIN);
    ASSERT_RC(vfs_s3_obj_refs(o, 0, 12, &refs), -EAGAIN);
    vfs_s3_obj_free(o);
    ASSERT_OK(vfs_release(w));
    ASSERT_OK(vfs_s3_get(v, "b", "a/b/small", true, &o));
    ASSERT_OK(vfs_s3_obj_read(o, 0, buf, 14));
    assert_memory_equal(buf, "hello, world!!", 14);
    vfs_s3_obj_free(o);
    nb_buf_free(&rb);
    free(big);
    free(buf);
    vfs_close(v);
}

static void test_s3(void **state)
{
    (void)state;
    vfs *v = fresh("vfs_s3");
    notes nt = {0, ""};
    vfs_set_notify(v, note_cb, &nt);
    vfs_bucket bk;
    memset(&bk, 0, sizeof bk);
    bk.owner = "root";
    ASSERT_OK(vfs_bucket_create(v, NULL, "b", 0755, &bk));
    ASSERT_RC(vfs_s3_key_check("a//b"), -EINVAL);
    ASSERT_RC(vfs_s3_key_check("/a"), -EINVAL);
    ASSERT_RC(vfs_s3_key_check("a/./b"), -EINVAL);
    ASSERT_RC(vfs_s3_key_check("a/../b"), -EINVAL);
    ASSERT_RC(vfs_s3_key_check(""), -EINVAL);
    ASSERT_OK(vfs_s3_key_check("a/b/"));
    char big[1100];
    memset(big, 'k', sizeof big);
    big[1025] = 0;
    ASSERT_RC(vfs_s3_key_check(big), -ENAMETOOLONG);

    put(v, "b", "a/b/c", "abc");
    put(v, "b", "a.txt", "t");
    put(v, "b", "a/b!", "bang");
    put(v, "b", "z", "zz");
    put(v, "b", "a/b/c", "ABC");  /* atomic replace */
    assert_true(nt.entries >= 8); /* bucket, 2 implicit dirs, 5 installs */
    assert_string_equal(nt.last, "c");
    vfs_attr a;
    ASSERT_OK(vfs_s3_lookup(v, NULL, "b", "a/b/c", &a));
    assert_int_equal(a.size, 3);
    uint8_t *body;
    assert_int_equal(vt_get_file(v, "b/a/b/c", &body), 3);
    assert_memory_equal(body, "ABC", 3);
    free(body);
    ASSERT_RC(vfs_s3_lookup(v, NULL, "b", "a/b", &a), -ENOENT);    /* a directory */
    ASSERT_RC(vfs_s3_lookup(v, NULL, "b", "a.txt/", &a), -ENOENT); /* a file */
    ASSERT_RC(vfs_s3_lookup(v, NULL, "nob", "x", &a), -ENOENT);
    /* conflicts */
    vfs_put *p;
    ASSERT_OK(vfs_put_begin(v, NULL, "b", "a.txt/x", 0644, &p));
    ASSERT_OK(vfs_put_write(p, "x", 1));
    ASSERT_RC(vfs_put_commit(p, nb_slice_of(NULL, 0), NULL), -ENOTDIR);
    ASSERT_OK(vfs_put_begin(v, NULL, "b", "a", 0644, &p));
    ASSERT_RC(vfs_put_commit(p, nb_slice_of(NULL, 0), NULL), -EISDIR);
    ASSERT_OK(vfs_put_begin(v, NULL, "b", "never", 0644, &p));
    ASSERT_OK(vfs_put_write(p, "x", 1));
    vfs_put_abort(p);
    ASSERT_RC(vfs_s3_lookup(v, NULL, "b", "never", &a), -ENOENT);
    /* object record */
    vfs_objrec r;
    memset(&r, 0, sizeof r);
    r.etag = "\"abc\"";
    r.content_type = "text/plain";
    nb_buf rb = NB_BUF_INIT;
    ASSERT_OK(vfs_objrec_encode(&r, &rb));
    ASSERT_OK(vfs_put_begin(v, NULL, "b", "rec", 0644, &p));
    ASSERT_OK(vfs_put_write(p, "r", 1));
    ASSERT_OK(vfs_put_commit(p, nb_buf_slice(&rb), &a));
    nb_buf got = NB_BUF_INIT;
    ASSERT_OK(vfs_objrec_get(v, a.ino, &got));
    vfs_objrec r2;
    ASSERT_OK(vfs_objrec_decode(nb_buf_slice(&got), &r2));
    assert_string_equal(r2.etag, "\"abc\"");
    /* stamped with the mtime the commit gave the file */
    assert_true(a.mtime_ns != 0);
    assert_true(r2.etag_mtime_ns == a.mtime_ns);
    vfs_objrec_free(&r2);
    nb_buf_free(&got);
    nb_buf_free(&rb);
    /* a marker */
    put(v, "b", "m/", "");
    ASSERT_OK(vfs_s3_lookup(v, NULL, "b", "m/", &a));
    assert_true(S_ISDIR(a.mode));

    /* listing in key order: "a.txt" < "a/b!" < "a/b/c" ('.' and '!' sort below '/') */
    check_list(v, NULL, NULL, NULL, "a.txt a/b! a/b/c m/ rec z ");
    check_list(v, NULL, "/", NULL, "a.txt a/P m/P rec z ");
    check_list(v, "a/", "/", NULL, "a/b! a/b/P ");
    check_list(v, "a/b", NULL, NULL, "a/b! a/b/c ");
    check_list(v, "a", "/", NULL, "a.txt a/P ");
    check_list(v, NULL, "/", "a/", "m/P rec z ");
    check_list(v, NULL, NULL, "a/b!", "a/b/c m/ rec z ");
    check_list(v, NULL, NULL, "a.txt", "a/b! a/b/c m/ rec z ");
    check_list(v, NULL, "b", NULL, "a.txt a/bP m/ rec z ");
    /* pagination never repeats or skips */
    char *next = NULL;
    char *page = list(v, NULL, NULL, NULL, 2, &next);
    assert_string_equal(page, "a.txt a/b! ");
    free(page);
    char *next2 = NULL;
    page = list(v, NULL, NULL, next, 2, &next2);
    assert_string_equal(page, "a/b/c m/ ");
    free(page);
    free(next);
    page = list(v, NULL, NULL, next2, 2, &next);
    assert_string_equal(page, "rec z ");
    assert_null(next);
    free(page);
    free(next2);

    /* delete removes implicit directories it empties, not explicit ones */
    ASSERT_OK(vfs_s3_delete(v, NULL, "b", "a/b/c"));
    ASSERT_RC(vfs_resolve(v, NULL, "b/a/b", 0, &a), -ENOENT);
    ASSERT_OK(vfs_resolve(v, NULL, "b/a", 0, &a));
    ASSERT_OK(vfs_s3_delete(v, NULL, "b", "a/b!"));
    ASSERT_RC(vfs_resolve(v, NULL, "b/a", 0, &a), -ENOENT);
    ASSERT_RC(vfs_s3_delete(v, NULL, "b", "a/b!"), -ENOENT);
    ASSERT_OK(vfs_mkdir(v, NULL, ROOT, "x", 0755, NULL));
    ASSERT_OK(vfs_resolve(v, NULL, "b", 0, &a));
    ASSERT_OK(vfs_mkdir(v, NULL, a.ino, "explicit", 0755, NULL));
    put(v, "b", "explicit/k", "k");
    ASSERT_OK(vfs_s3_delete(v, NULL, "b", "explicit/k"));
    ASSERT_OK(vfs_resolve(v, NULL, "b/explicit", 0, &a));
    ASSERT_OK(vfs_s3_delete(v, NULL, "b", "m/"));
    ASSERT_RC(vfs_resolve(v, NULL, "b/m", 0, &a), -ENOENT);
    ASSERT_RC(vfs_bucket_delete(v, NULL, "b"), -ENOTEMPTY);
    vfs_close(v);
    ASSERT_OK(vfs_fsck(g_dir, false, stderr));
}

/* ---- Maintenance and fsck ---------------------------------------------------------------- */

static void test_maintain_and_fsck(void **state)
{
    (void)state;
    new_dir("vfs_maint");
    vfs_options o;
    vt_options(&o, g_dir);
    o.collect_grace_ns = 1;
    vfs *v;
    ASSERT_OK(vfs_open(&o, &v));
    /* a fragmented file: 20 published small writes */
    vfs_attr a;
    vfs_file *f;
    ASSERT_OK(vfs_create(v, NULL, ROOT, "frag", 0644, O_RDWR, &a, &f));
    uint8_t want[20 * 1000];
    vt_fill(11, want, sizeof want);
    for (int i = 0; i < 20; i++) {
        int k = (i * 7) % 20; /* out of order: every write stays visible */
        ASSERT_OK(vfs_write(f, (uint64_t)k * 1000, want + k * 1000, 1000, NULL));
        ASSERT_OK(vfs_flush(f));
    }
    ASSERT_OK(vfs_release(f));
    /* garbage: an overwritten and a deleted file */
    vt_put_file(v, "gone", want, 5000);
    ASSERT_OK(vfs_unlink(v, NULL, ROOT, "gone"));
    vfs_maint_report r;
    ASSERT_OK(vfs_maintain(v, &r));
    assert_true(r.chunks_compacted >= 1);
    assert_true(r.slices_released >= 1);
    uint8_t *back;
    assert_int_equal(vt_get_file(v, "frag", &back), sizeof want);
    assert_memory_equal(back, want, sizeof want);
    free(back);
    ASSERT_OK(vfs_maintain(v, &r));
    vfs_close(v);
    ASSERT_OK(vfs_fsck(g_dir, false, stderr));
    ASSERT_OK(vfs_fsck(g_dir, true, stderr));
    v = vt_open(g_dir);
    assert_int_equal(vt_get_file(v, "frag", &back), sizeof want);
    assert_memory_equal(back, want, sizeof want);
    free(back);
    vfs_close(v);
}

/* ---- dump and load ----------------------------------------------------------------------- */

static void test_dump_load(void **state)
{
    (void)state;
    vfs *v = fresh("vfs_dump");
    uint64_t d = mkdir_at(v, ROOT, "dir \"q\"\n\x01\xff");
    uint8_t data[100000];
    vt_fill(5, data, sizeof data);
    vt_put_file(v, "dir \"q\"\n\x01\xff/f", data, sizeof data);
    vfs_attr a, f;
    ASSERT_OK(vfs_resolve(v, NULL, "dir \"q\"\n\x01\xff/f", 0, &f));
    ASSERT_OK(vfs_link(v, NULL, f.ino, ROOT, "hard", NULL));
    ASSERT_OK(vfs_symlink(v, NULL, d, "sym", "f", NULL));
    ASSERT_OK(vfs_mknod(v, NULL, ROOT, "fifo", S_IFIFO | 0600, 0, NULL));
    ASSERT_OK(vfs_xattr_set(v, NULL, f.ino, "user.bin", nb_slice_of("\0\1\2", 3), 0));
    vfs_sattr sa;
    memset(&sa, 0, sizeof sa);
    sa.valid = VFS_SET_MODE | VFS_SET_UID | VFS_SET_MTIME;
    sa.mode = 04751;
    sa.uid = 1234;
    sa.mtime_ns = 1234567890123456789ll;
    ASSERT_OK(vfs_setattr(v, NULL, f.ino, NULL, &sa, NULL));
    vfs_bucket bk;
    memset(&bk, 0, sizeof bk);
    bk.owner = "AKIDOWNER";
    ASSERT_OK(vfs_bucket_create(v, NULL, "bkt", 0755, &bk));
    put(v, "bkt", "x/y", "object");
    /* a small file: an inline slice, its bytes in the dump */
    vt_put_file(v, "small", "tiny", 4);
    vfs_close(v);

    char *path = nb_xasprintf("%s/dump.json", g_dir);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    ASSERT_OK(vfs_dump(g_dir, out));
    fclose(out);
    /* a fresh metadata store next to the same blocks */
    char *cmd = nb_xasprintf("rm -rf '%s/meta'", g_dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    FILE *in = fopen(path, "r");
    ASSERT_OK(vfs_load(g_dir, in));
    fclose(in);
    in = fopen(path, "r");
    ASSERT_RC(vfs_load(g_dir, in), -ENOTEMPTY);
    fclose(in);
    free(path);
    ASSERT_OK(vfs_fsck(g_dir, false, stderr));

    v = vt_open(g_dir);
    uint8_t *back;
    assert_int_equal(vt_get_file(v, "hard", &back), sizeof data);
    assert_memory_equal(back, data, sizeof data);
    free(back);
    assert_int_equal(vt_get_file(v, "small", &back), 4);
    assert_memory_equal(back, "tiny", 4);
    free(back);
    ASSERT_OK(vfs_resolve(v, NULL, "dir \"q\"\n\x01\xff/sym", VFS_RESOLVE_FOLLOW, &a));
    ASSERT_OK(vfs_resolve(v, NULL, "hard", 0, &f));
    assert_int_equal(a.ino, f.ino);
    assert_int_equal(f.nlink, 2);
    assert_int_equal(f.mode, S_IFREG | 04751);
    assert_int_equal(f.uid, 1234);
    assert_int_equal(f.mtime_ns, 1234567890123456789ll);
    nb_buf b = NB_BUF_INIT;
    ASSERT_OK(vfs_xattr_get(v, NULL, f.ino, "user.bin", &b));
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "\0\1\2", 3);
    nb_buf_free(&b);
    ASSERT_OK(vfs_resolve(v, NULL, "fifo", 0, &a));
    assert_true(S_ISFIFO(a.mode));
    vfs_bucket got;
    ASSERT_OK(vfs_bucket_get(v, "bkt", &got));
    assert_string_equal(got.owner, "AKIDOWNER");
    vfs_bucket_free(&got);
    ASSERT_OK(vfs_s3_lookup(v, NULL, "bkt", "x/y", &a));
    /* the implicit directory stays implicit: deleting the object removes it */
    ASSERT_OK(vfs_s3_delete(v, NULL, "bkt", "x/y"));
    ASSERT_RC(vfs_resolve(v, NULL, "bkt/x", 0, &a), -ENOENT);
    /* new slices never reuse a loaded id */
    vt_put_file(v, "new", "fresh", 5);
    assert_int_equal(vt_get_file(v, "hard", &back), sizeof data);
    assert_memory_equal(back, data, sizeof data);
    free(back);
    vfs_close(v);
    ASSERT_OK(vfs_fsck(g_dir, false, stderr));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_namespace),
        cmocka_unit_test(test_readdir_statfs_xattr),
        cmocka_unit_test(test_readdir_cookies),
        cmocka_unit_test(test_handles),
        cmocka_unit_test(test_large_and_sparse),
        cmocka_unit_test(test_corrupt_block),
        cmocka_unit_test(test_damaged_block_warm),
        cmocka_unit_test(test_read_only_and_perms),
        cmocka_unit_test(test_s3),
        cmocka_unit_test(test_maintain_and_fsck),
        cmocka_unit_test(test_dump_load),
        cmocka_unit_test(test_enospc),
        cmocka_unit_test(test_copy_shares),
        cmocka_unit_test(test_put_inline),
        cmocka_unit_test(test_multipart),
        cmocka_unit_test(test_s3_get),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (g_dir)
        nb_test_rmdir(g_dir);
    free(g_dir);
    return rc;
}
