/*
 * bs_dir.c — the `dir` block store: one file per block.
 *
 * Layout under the data directory:
 *
 *   data.format          "nebula-data-dir 1\n"
 *   LOCK                 flock'ed by the process that has the store open
 *   tmp/                 blocks being written; emptied on open
 *   blocks/XX/YY/<slice id, 16 hex>.<block index, 8 hex>
 *
 * XX/YY are the top 16 bits of a multiplicative hash of the slice id, so
 * every block of a slice lands in one directory (one directory fsync per
 * slice) while consecutive slice ids spread over 65,536 directories.
 *
 * A put writes the header and payload to tmp/, fsyncs the file, renames it
 * into place and fsyncs the target directory (deferred to data_bs_sync with
 * DATA_PUT_DEFER_SYNC). A crash leaves either nothing, a file in tmp/
 * (removed on the next open), or a complete block that nothing may
 * reference yet (the collector's business). The format of a block file is
 * in data_format.h and docs/data.md.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "common/mem.h"
#include "data/data_format.h"
#include "data/data_int.h"

#define FANOUT 65536u

typedef struct bs_dir {
    data_bs base;
    char *root;
    int lock_fd;
    _Atomic uint64_t tmp_seq;
    pthread_mutex_t fan_mu;             /* creation of fan-out directories */
    _Atomic unsigned char made[FANOUT]; /* fan-out directory known to exist */
} bs_dir;

/* A parsed, verified block header. */
typedef struct blk_hdr {
    uint32_t len;  /* payload length */
    uint32_t hlen; /* header length = payload offset */
    uint32_t nsegs;
    const uint8_t *crcs; /* nsegs masked CRCs, inside the caller's buffer */
} blk_hdr;

static unsigned fanout_of(uint64_t slice_id)
{
    return (unsigned)((slice_id * 0x9E3779B97F4A7C15ull) >> 48);
}

static void fan_path(const bs_dir *d, unsigned fan, char *out, size_t n)
{
    snprintf(out, n, "%s/blocks/%02x/%02x", d->root, fan >> 8, fan & 0xff);
}

static void blk_path(const bs_dir *d, data_key k, char *out, size_t n)
{
    unsigned fan = fanout_of(k.slice_id);
    snprintf(out, n, "%s/blocks/%02x/%02x/%016" PRIx64 ".%08" PRIx32, d->root, fan >> 8, fan & 0xff,
             k.slice_id, k.block);
}

static int map_enospc(int rc)
{
    return (rc == -ENOSPC || rc == -EDQUOT) ? NB_ENOSPACE : rc;
}

static int make_fan(bs_dir *d, unsigned fan);

/* Creates blocks/XX/YY if needed; a directory we create is made durable in
 * its parent at once (rare: once per fan-out directory). */
static int ensure_fan(bs_dir *d, unsigned fan)
{
    if (atomic_load_explicit(&d->made[fan], memory_order_acquire))
        return 0;
    /* Serialized so that no put renames into a directory whose own entry
     * another thread has not made durable yet. */
    pthread_mutex_lock(&d->fan_mu);
    int rc = make_fan(d, fan);
    pthread_mutex_unlock(&d->fan_mu);
    return rc;
}

static int make_fan(bs_dir *d, unsigned fan)
{
    if (atomic_load_explicit(&d->made[fan], memory_order_acquire))
        return 0;
    char top[PATH_MAX], leaf[PATH_MAX], blocks[PATH_MAX];
    snprintf(blocks, sizeof blocks, "%s/blocks", d->root);
    snprintf(top, sizeof top, "%s/blocks/%02x", d->root, fan >> 8);
    fan_path(d, fan, leaf, sizeof leaf);
    bool made_top = false, made_leaf = false;
    if (mkdir(top, 0755) == 0)
        made_top = true;
    else if (errno != EEXIST)
        return map_enospc(-errno);
    if (mkdir(leaf, 0755) == 0)
        made_leaf = true;
    else if (errno != EEXIST)
        return map_enospc(-errno);
    int rc = 0;
    if (made_leaf)
        rc = nb_fsync_dir(top);
    if (rc == 0 && made_top)
        rc = nb_fsync_dir(blocks);
    if (rc == 0)
        atomic_store_explicit(&d->made[fan], 1, memory_order_release);
    return rc;
}

static size_t build_hdr(uint8_t *h, data_key k, const uint8_t *buf, uint32_t len)
{
    uint32_t nsegs = data_blk_nsegs(len);
    uint32_t hlen = data_blk_hdr_len(len);
    memset(h, 0, DATA_BLK_FIXED);
    memcpy(h, DATA_BLK_MAGIC, 4);
    nb_put_u16le(h + 4, DATA_BLK_VERSION);
    nb_put_u16le(h + 6, (uint16_t)hlen);
    nb_put_u64le(h + 8, k.slice_id);
    nb_put_u32le(h + 16, k.block);
    nb_put_u32le(h + 20, len);
    h[24] = DATA_SEG_SHIFT;
    nb_put_u32le(h + 28, nsegs);
    for (uint32_t i = 0; i < nsegs; i++) {
        uint32_t so = i << DATA_SEG_SHIFT;
        uint32_t sl = len - so < DATA_SEG_SIZE ? len - so : DATA_SEG_SIZE;
        nb_put_u32le(h + DATA_BLK_FIXED + 4 * i, nb_crc32c_mask(nb_crc32c(0, buf + so, sl)));
    }
    uint32_t hc = DATA_BLK_FIXED + 4 * nsegs;
    nb_put_u32le(h + hc, nb_crc32c_mask(nb_crc32c(0, h, hc)));
    return hlen;
}

static int dir_put(data_bs *bs, data_key k, const void *buf, size_t len, unsigned flags)
{
    bs_dir *d = (bs_dir *)bs;
    unsigned fan = fanout_of(k.slice_id);
    int rc = ensure_fan(d, fan);
    if (rc)
        return rc;
    uint8_t hdr[DATA_BLK_MAX_HDR];
    size_t hlen = build_hdr(hdr, k, buf, (uint32_t)len);

    char tmp[PATH_MAX], dst[PATH_MAX];
    uint64_t seq = atomic_fetch_add(&d->tmp_seq, 1);
    snprintf(tmp, sizeof tmp, "%s/tmp/%016" PRIx64 ".%08" PRIx32 ".%" PRIu64, d->root, k.slice_id,
             k.block, seq);
    blk_path(d, k, dst, sizeof dst);

    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return map_enospc(-errno);
    struct iovec iov[2] = {{hdr, hlen}, {(void *)buf, len}};
    ssize_t w = pwritev(fd, iov, len ? 2 : 1, 0);
    if (w < 0) {
        rc = -errno;
    } else if ((size_t)w < hlen + len) {
        /* Short write: finish it piecewise. */
        size_t done = (size_t)w;
        if (done < hlen)
            rc = nb_pwrite_full(fd, hdr + done, hlen - done, (off_t)done);
        if (rc == 0) {
            size_t pdone = done > hlen ? done - hlen : 0;
            rc = nb_pwrite_full(fd, (const uint8_t *)buf + pdone, len - pdone,
                                (off_t)(hlen + pdone));
        }
    }
    if (rc == 0 && fsync(fd) != 0)
        rc = -errno;
    if (close(fd) != 0 && rc == 0)
        rc = -errno;
    if (rc == 0 && rename(tmp, dst) != 0)
        rc = -errno;
    if (rc) {
        unlink(tmp);
        return map_enospc(rc);
    }
    if (!(flags & DATA_PUT_DEFER_SYNC)) {
        char fdir[PATH_MAX];
        fan_path(d, fan, fdir, sizeof fdir);
        rc = nb_fsync_dir(fdir);
    }
    return rc;
}

static int cmp_uint(const void *a, const void *b)
{
    unsigned x = *(const unsigned *)a, y = *(const unsigned *)b;
    return x < y ? -1 : x > y;
}

static int dir_sync(data_bs *bs, const data_key *keys, size_t n)
{
    bs_dir *d = (bs_dir *)bs;
    unsigned *fans = nb_xmalloc(n * sizeof *fans);
    for (size_t i = 0; i < n; i++)
        fans[i] = fanout_of(keys[i].slice_id);
    qsort(fans, n, sizeof *fans, cmp_uint);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (i > 0 && fans[i] == fans[i - 1])
            continue;
        char fdir[PATH_MAX];
        fan_path(d, fans[i], fdir, sizeof fdir);
        rc = nb_fsync_dir(fdir);
    }
    free(fans);
    return rc;
}

/* Opens block k for reading; NB_ENOTFOUND if absent. */
static int open_blk(bs_dir *d, data_key k, char *path, size_t pn, int *fd_out)
{
    blk_path(d, k, path, pn);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? NB_ENOTFOUND : -errno;
    *fd_out = fd;
    return 0;
}

/* Reads and verifies the header of an open block file into buf (at least
 * DATA_BLK_MAX_HDR bytes). */
static int read_hdr(int fd, const char *path, data_key k, uint8_t *buf, blk_hdr *h)
{
    size_t got = 0;
    int rc = nb_pread_full(fd, buf, DATA_BLK_MAX_HDR, 0, &got);
    if (rc)
        return rc;
    if (got < DATA_BLK_FIXED + 4 || memcmp(buf, DATA_BLK_MAGIC, 4) != 0)
        return NB_CORRUPT("block %s: bad magic or truncated header (%zu bytes)", path, got);
    uint16_t version = nb_get_u16le(buf + 4);
    if (version != DATA_BLK_VERSION) {
        NB_ERROR("block %s: format version %u, this build reads %u", path, version,
                 DATA_BLK_VERSION);
        return NB_EVERSION;
    }
    uint32_t len = nb_get_u32le(buf + 20);
    uint32_t nsegs = nb_get_u32le(buf + 28);
    uint32_t hlen = nb_get_u16le(buf + 6);
    if (len > DATA_BLOCK_SIZE || buf[24] != DATA_SEG_SHIFT || nsegs != data_blk_nsegs(len) ||
        hlen != data_blk_hdr_len(len) || got < hlen)
        return NB_CORRUPT("block %s: inconsistent header (len %u, segments %u, hlen %u)", path, len,
                          nsegs, hlen);
    uint32_t hc = DATA_BLK_FIXED + 4 * nsegs;
    if (nb_crc32c_unmask(nb_get_u32le(buf + hc)) != nb_crc32c(0, buf, hc)) {
        NB_ERROR("block %s: header checksum mismatch", path);
        return NB_ECHECKSUM;
    }
    if (nb_get_u64le(buf + 8) != k.slice_id || nb_get_u32le(buf + 16) != k.block)
        return NB_CORRUPT("block %s: header names block %016" PRIx64 ".%08" PRIx32, path,
                          nb_get_u64le(buf + 8), nb_get_u32le(buf + 16));
    h->len = len;
    h->hlen = hlen;
    h->nsegs = nsegs;
    h->crcs = buf + DATA_BLK_FIXED;
    return 0;
}

static uint32_t seg_len(const blk_hdr *h, uint32_t s)
{
    uint32_t so = s << DATA_SEG_SHIFT;
    return h->len - so < DATA_SEG_SIZE ? h->len - so : DATA_SEG_SIZE;
}

static int verify_seg(const blk_hdr *h, const char *path, uint32_t s, const uint8_t *p)
{
    uint32_t want = nb_crc32c_unmask(nb_get_u32le(h->crcs + 4 * s));
    uint32_t have = nb_crc32c(0, p, seg_len(h, s));
    if (want == have)
        return 0;
    NB_ERROR("block %s: checksum mismatch in segment %u (payload bytes %u..%u): stored %08x, "
             "computed %08x",
             path, s, s << DATA_SEG_SHIFT, (s << DATA_SEG_SHIFT) + seg_len(h, s), want, have);
    return NB_ECHECKSUM;
}

/* Reads segments [s0, s1) (all complete) into p and verifies them. */
static int read_segs(int fd, const blk_hdr *h, const char *path, uint32_t s0, uint32_t s1,
                     uint8_t *p)
{
    uint64_t start = (uint64_t)s0 << DATA_SEG_SHIFT;
    uint64_t end = (uint64_t)s1 << DATA_SEG_SHIFT;
    if (end > h->len)
        end = h->len;
    size_t got = 0;
    int rc = nb_pread_full(fd, p, end - start, (off_t)(h->hlen + start), &got);
    if (rc)
        return rc;
    if (got != end - start)
        return NB_CORRUPT("block %s: truncated: payload of %u bytes ends before %" PRIu64, path,
                          h->len, start + got);
    for (uint32_t s = s0; s < s1; s++) {
        rc = verify_seg(h, path, s, p + ((uint64_t)(s - s0) << DATA_SEG_SHIFT));
        if (rc)
            return rc;
    }
    return 0;
}

static int dir_get(data_bs *bs, data_key k, uint64_t off, size_t len, void *buf, size_t *got)
{
    bs_dir *d = (bs_dir *)bs;
    char path[PATH_MAX];
    int fd = -1;
    int rc = open_blk(d, k, path, sizeof path, &fd);
    if (rc)
        return rc;
    uint8_t hbuf[DATA_BLK_MAX_HDR];
    blk_hdr h;
    rc = read_hdr(fd, path, k, hbuf, &h);
    if (rc || off >= h.len) {
        close(fd);
        return rc;
    }
    size_t n = h.len - off < len ? h.len - off : len;
    uint64_t end = off + n;
    uint8_t *out = buf;
    uint8_t *scratch = NULL;
    uint32_t s = (uint32_t)(off >> DATA_SEG_SHIFT);
    uint32_t slast = (uint32_t)((end - 1) >> DATA_SEG_SHIFT);
    while (rc == 0 && s <= slast) {
        uint64_t sstart = (uint64_t)s << DATA_SEG_SHIFT;
        uint64_t send = sstart + seg_len(&h, s);
        if (sstart >= off && send <= end) {
            /* A run of whole segments goes straight into buf. */
            uint32_t s1 = s + 1;
            while (s1 <= slast && ((uint64_t)s1 << DATA_SEG_SHIFT) + seg_len(&h, s1) <= end)
                s1++;
            rc = read_segs(fd, &h, path, s, s1, out + (sstart - off));
            s = s1;
            continue;
        }
        if (!scratch)
            scratch = nb_xmalloc(DATA_SEG_SIZE);
        rc = read_segs(fd, &h, path, s, s + 1, scratch);
        if (rc == 0) {
            uint64_t a = sstart > off ? sstart : off;
            uint64_t b = send < end ? send : end;
            memcpy(out + (a - off), scratch + (a - sstart), b - a);
        }
        s++;
    }
    free(scratch);
    close(fd);
    if (rc == 0)
        *got = n;
    return rc;
}

static int dir_get_all(data_bs *bs, data_key k, uint8_t **out, size_t *len)
{
    bs_dir *d = (bs_dir *)bs;
    char path[PATH_MAX];
    int fd = -1;
    int rc = open_blk(d, k, path, sizeof path, &fd);
    if (rc)
        return rc;
    uint8_t hbuf[DATA_BLK_MAX_HDR];
    blk_hdr h;
    rc = read_hdr(fd, path, k, hbuf, &h);
    if (rc == 0 && h.len) {
        uint8_t *p = nb_xmalloc(h.len);
        rc = read_segs(fd, &h, path, 0, h.nsegs, p);
        if (rc == 0)
            *out = p;
        else
            free(p);
    }
    if (rc == 0)
        *len = h.len;
    close(fd);
    return rc;
}

static int dir_stat(data_bs *bs, data_key k, size_t *len)
{
    bs_dir *d = (bs_dir *)bs;
    char path[PATH_MAX];
    int fd = -1;
    int rc = open_blk(d, k, path, sizeof path, &fd);
    if (rc)
        return rc;
    uint8_t hbuf[DATA_BLK_MAX_HDR];
    blk_hdr h;
    rc = read_hdr(fd, path, k, hbuf, &h);
    if (rc == 0)
        *len = h.len;
    close(fd);
    return rc;
}

static int dir_del(data_bs *bs, data_key k)
{
    bs_dir *d = (bs_dir *)bs;
    char path[PATH_MAX];
    blk_path(d, k, path, sizeof path);
    if (unlink(path) != 0)
        return errno == ENOENT ? NB_ENOTFOUND : -errno;
    return 0;
}

static int dir_read_fd(data_bs *bs, data_key k, uint64_t off, size_t len, unsigned flags,
                       data_fdref *out)
{
    bs_dir *d = (bs_dir *)bs;
    char path[PATH_MAX];
    int fd = -1;
    int rc = open_blk(d, k, path, sizeof path, &fd);
    if (rc)
        return rc;
    uint8_t hbuf[DATA_BLK_MAX_HDR];
    blk_hdr h;
    rc = read_hdr(fd, path, k, hbuf, &h);
    if (rc == 0 && off < h.len && len > 0) {
        struct stat st;
        if (fstat(fd, &st) != 0)
            rc = -errno;
        else if ((uint64_t)st.st_size != (uint64_t)h.hlen + h.len)
            rc = NB_CORRUPT("block %s: file is %lld bytes, header says %u", path,
                            (long long)st.st_size, h.hlen + h.len);
        size_t n = h.len - off < len ? h.len - off : len;
        uint32_t s0 = (uint32_t)(off >> DATA_SEG_SHIFT);
        uint32_t s1 = (uint32_t)((off + n - 1) >> DATA_SEG_SHIFT) + 1;
        uint64_t fstart = h.hlen + ((uint64_t)s0 << DATA_SEG_SHIFT);
        uint64_t fend = h.hlen + (uint64_t)((s1 - 1) << DATA_SEG_SHIFT) + seg_len(&h, s1 - 1);
        uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
        uint64_t mstart = fstart & ~(page - 1);
        /* mmap verifies the segments without copying them to user space;
         * the pages stay in the page cache for the sendfile that follows. */
        void *m = MAP_FAILED;
        if (rc == 0 && !(flags & DATA__FD_NOVERIFY)) {
            m = mmap(NULL, fend - mstart, PROT_READ, MAP_SHARED, fd, (off_t)mstart);
            if (m == MAP_FAILED)
                rc = -errno;
        }
        for (uint32_t s = s0; rc == 0 && m != MAP_FAILED && s < s1; s++)
            rc = verify_seg(&h, path, s,
                            (const uint8_t *)m + (fstart - mstart) +
                                ((uint64_t)(s - s0) << DATA_SEG_SHIFT));
        if (m != MAP_FAILED)
            munmap(m, fend - mstart);
        out->off = h.hlen + off;
        out->len = n;
    } else if (rc == 0) {
        out->off = h.hlen + (off < h.len ? off : h.len);
        out->len = 0;
    }
    if (rc) {
        close(fd);
        out->off = 0;
        out->len = 0;
        return rc;
    }
    out->fd = fd;
    return 0;
}

static void dir_release_fd(data_bs *bs, data_fdref *ref)
{
    (void)bs;
    close(ref->fd);
}

static int parse_hex(const char *s, size_t n, uint64_t *v)
{
    uint64_t r = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        int x;
        if (c >= '0' && c <= '9')
            x = c - '0';
        else if (c >= 'a' && c <= 'f')
            x = c - 'a' + 10;
        else
            return -1;
        r = r << 4 | (uint64_t)x;
    }
    *v = r;
    return 0;
}

/* "<16 hex>.<8 hex>" exactly. */
static int parse_blk_name(const char *name, data_key *k)
{
    uint64_t id, blk;
    if (strlen(name) != 25 || name[16] != '.' || parse_hex(name, 16, &id) ||
        parse_hex(name + 17, 8, &blk))
        return -1;
    k->slice_id = id;
    k->block = (uint32_t)blk;
    return 0;
}

static bool is_hex2(const char *n)
{
    uint64_t v;
    return strlen(n) == 2 && parse_hex(n, 2, &v) == 0;
}

static int iter_leaf(const char *dir, data_bs_iter_fn fn, void *arg)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return errno == ENOENT ? 0 : -errno;
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(dp)) != NULL) {
        data_bs_entry e;
        if (parse_blk_name(de->d_name, &e.key) != 0)
            continue;
        struct stat st;
        if (fstatat(dirfd(dp), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
            if (errno == ENOENT)
                continue; /* deleted under us */
            rc = -errno;
            break;
        }
        e.bytes = (uint64_t)st.st_size;
        e.mtime_ns = (uint64_t)st.st_mtim.tv_sec * 1000000000ull + (uint64_t)st.st_mtim.tv_nsec;
        rc = fn(arg, &e);
    }
    closedir(dp);
    return rc;
}

static int dir_iterate(data_bs *bs, data_bs_iter_fn fn, void *arg)
{
    bs_dir *d = (bs_dir *)bs;
    char top[PATH_MAX];
    snprintf(top, sizeof top, "%s/blocks", d->root);
    DIR *dt = opendir(top);
    if (!dt)
        return -errno;
    int rc = 0;
    struct dirent *a;
    while (rc == 0 && (a = readdir(dt)) != NULL) {
        if (!is_hex2(a->d_name))
            continue;
        char mid[PATH_MAX];
        if (snprintf(mid, sizeof mid, "%s/%.2s", top, a->d_name) >= (int)sizeof mid)
            continue;
        DIR *dm = opendir(mid);
        if (!dm) {
            if (errno == ENOENT)
                continue;
            rc = -errno;
            break;
        }
        struct dirent *b;
        while (rc == 0 && (b = readdir(dm)) != NULL) {
            if (!is_hex2(b->d_name))
                continue;
            char leaf[PATH_MAX];
            if (snprintf(leaf, sizeof leaf, "%s/%.2s", mid, b->d_name) >= (int)sizeof leaf)
                continue;
            rc = iter_leaf(leaf, fn, arg);
        }
        closedir(dm);
    }
    closedir(dt);
    return rc;
}

static int dir_space(data_bs *bs, uint64_t *capacity, uint64_t *free_bytes)
{
    bs_dir *d = (bs_dir *)bs;
    struct statvfs sv;
    if (statvfs(d->root, &sv) != 0)
        return -errno;
    *capacity = (uint64_t)sv.f_blocks * sv.f_frsize;
    *free_bytes = (uint64_t)sv.f_bavail * sv.f_frsize;
    return 0;
}

static void dir_close(data_bs *bs)
{
    bs_dir *d = (bs_dir *)bs;
    nb_unlock_file(d->lock_fd);
    pthread_mutex_destroy(&d->fan_mu);
    free(d->root);
    free(d);
}

const data_bs_ops data__bs_dir_ops = {
    .name = "dir",
    .cheap_ranges = true,
    .put = dir_put,
    .sync = dir_sync,
    .get = dir_get,
    .get_all = dir_get_all,
    .stat = dir_stat,
    .del = dir_del,
    .read_fd = dir_read_fd,
    .release_fd = dir_release_fd,
    .iterate = dir_iterate,
    .space = dir_space,
    .close = dir_close,
};

/* Removes every file in tmp/: blocks whose put never returned. */
static int clean_tmp(const char *tmpdir)
{
    DIR *dp = opendir(tmpdir);
    if (!dp)
        return -errno;
    int rc = 0, removed = 0;
    struct dirent *de;
    while ((de = readdir(dp)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        if (unlinkat(dirfd(dp), de->d_name, 0) != 0 && errno != ENOENT) {
            rc = -errno;
            break;
        }
        removed++;
    }
    closedir(dp);
    if (removed)
        NB_INFO("data dir: removed %d unfinished block file(s) from %s", removed, tmpdir);
    return rc;
}

static int check_format(const char *root)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", root, DATA_DIR_FORMAT_FILE);
    char *text = NULL;
    size_t n = 0;
    int rc = nb_read_file(path, 4096, &text, &n);
    if (rc == -ENOENT)
        return nb_write_file_atomic(path, DATA_DIR_FORMAT_TEXT, strlen(DATA_DIR_FORMAT_TEXT), 0644);
    if (rc)
        return rc;
    unsigned version = 0;
    if (sscanf(text, "nebula-data-dir %u", &version) != 1) {
        rc = NB_CORRUPT("%s: not a NebulaStore data directory", path);
    } else if (version != 1) {
        NB_ERROR("%s: format version %u, this build reads 1", path, version);
        rc = NB_EVERSION;
    }
    free(text);
    return rc;
}

int data_bs_open_dir(const char *dir, data_bs **out)
{
    *out = NULL;
    int rc = nb_mkdir_p(dir, 0755);
    if (rc)
        return rc;
    bs_dir *d = nb_xcalloc(1, sizeof *d);
    d->base.ops = &data__bs_dir_ops;
    d->root = nb_xstrdup(dir);
    d->lock_fd = -1;
    pthread_mutex_init(&d->fan_mu, NULL);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/LOCK", dir);
    pid_t holder = 0;
    rc = nb_lock_file(path, &d->lock_fd, &holder);
    if (rc == NB_ELOCKED)
        NB_ERROR("data dir %s is in use by pid %d", dir, (int)holder);
    if (rc == 0)
        rc = check_format(dir);
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/blocks", dir);
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            rc = -errno;
    }
    if (rc == 0) {
        snprintf(path, sizeof path, "%s/tmp", dir);
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            rc = -errno;
        if (rc == 0)
            rc = clean_tmp(path);
    }
    if (rc == 0)
        rc = nb_fsync_dir(dir);
    if (rc) {
        dir_close(&d->base);
        return rc;
    }
    *out = &d->base;
    return 0;
}
