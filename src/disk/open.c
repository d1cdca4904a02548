/*
 * open.c — creating, opening, recovering and closing an engine.
 *
 * Recovery (docs/disk.md has the argument for why it is enough):
 *
 *   1. Read CHECKPOINT; check magic, version (newer: NB_EVERSION), CRCs.
 *   2. Open data.0 (O_DIRECT when allowed), check the superblock against
 *      the checkpoint (uuid, AU, size) and that the file is not shorter
 *      than recorded.
 *   3. Load the entries into the index and mark their extents used; an
 *      extent out of range or overlapping another is NB_ECORRUPT.
 *   4. Replay WAL files wal_seq, wal_seq+1, ... while they exist: each
 *      file's records run until the first short, bad-CRC or out-of-sequence
 *      record (a torn tail, dropped); the next file must start at the next
 *      LSN or durable records are missing (NB_ECORRUPT).
 *   5. Start a fresh WAL file after the last good one, so a torn tail is
 *      never appended to; checkpoint now if the replay was long.
 *
 * The data region is never read.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/coding.h"
#include "common/crc32c.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/mem.h"

#include "disk_int.h"

void disk_options_init(disk_options *o)
{
    memset(o, 0, sizeof *o);
    o->reserve = DISK_RESERVE_AUTO;
    o->au_size = 4096;
    o->max_blob = 64u << 20;
    o->wal_max_bytes = 64ull << 20;
    o->inline_max = DISK_INLINE_DEFAULT;
    o->io_mode = DISK_IO_AUTO;
    o->direct = DISK_DIRECT_AUTO;
    o->close_checkpoint = 1;
}

static uint32_t crc_masked(const void *p, size_t n)
{
    return nb_crc32c_mask(nb_crc32c(0, p, n));
}

/* Reads a whole file through the I/O table. *buf owned; free(). */
static int read_all(disk_env *e, const char *path, uint8_t **buf, size_t *len)
{
    int fd;
    int rc = e->io->open(e->ioctx, path, DISK_O_RDONLY, &fd);
    if (rc)
        return rc;
    uint64_t size;
    rc = e->io->size(e->ioctx, fd, &size);
    if (!rc) {
        *buf = nb_xmalloc(size ? size : 1);
        size_t got = 0;
        rc = e->io->pread(e->ioctx, fd, *buf, size, 0, &got);
        *len = got;
        if (rc) {
            free(*buf);
            *buf = NULL;
        }
    }
    e->io->close(e->ioctx, fd);
    return rc;
}

uint64_t disk__file_limit(disk_env *e, unsigned i)
{
    disk__file *f = &e->files[i];
    if (f->fixed)
        return f->size;
    if (e->opt.capacity) {
        uint64_t cap = e->opt.capacity / e->au * e->au, others = 0;
        for (unsigned j = 0; j < e->n_files; j++)
            others += j == i ? 0 : e->files[j].size;
        return cap > others + f->size ? cap - others : f->size;
    }
    if (e->opt.io)
        return f->size + (1ull << 40); /* a test table: no file system to ask */
    struct statvfs sv;
    if (statvfs(f->path, &sv) != 0)
        return f->size;
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    uint64_t reserve = e->opt.reserve;
    if (reserve == DISK_RESERVE_AUTO) {
        reserve = (uint64_t)sv.f_blocks * sv.f_frsize / 20;
        if (reserve > (4ull << 30))
            reserve = 4ull << 30;
    }
    uint64_t room = avail > reserve ? avail - reserve : 0;
    return (f->size + room) / e->au * e->au;
}

static int is_blockdev(const disk_env *e, const char *path)
{
    struct stat st;
    return !e->opt.io && stat(path, &st) == 0 && S_ISBLK(st.st_mode);
}

/* Sets up e->files from a list of paths (relative to dir unless absolute). */
static void files_setup(disk_env *e, const char *const *list, unsigned n)
{
    static const char *const dflt[] = {DISK_DATA_FILE};
    if (!list || !n) {
        list = dflt;
        n = 1;
    }
    /* Room for every file there may ever be: disk_add_file() publishes a
     * new one without moving the array that readers index unlocked. */
    e->files = nb_xcalloc(DISK_MAX_FILES, sizeof *e->files);
    e->n_files = n;
    for (unsigned i = 0; i < n; i++) {
        disk__file *f = &e->files[i];
        f->path = list[i][0] == '/' ? nb_xstrdup(list[i]) : nb_xasprintf("%s/%s", e->dir, list[i]);
        f->fd = f->ref_fd = -1;
    }
}

/* Replaces DIR/name with text atomically: temporary file, sync, rename,
 * directory sync. */
static int meta_write(disk_env *e, const char *name, const char *text)
{
    char *tmp = nb_xasprintf("%s/%s.tmp", e->dir, name);
    char *dst = nb_xasprintf("%s/%s", e->dir, name);
    int fd;
    int rc = e->io->open(e->ioctx, tmp, DISK_O_CREAT | DISK_O_TRUNC, &fd);
    if (!rc) {
        rc = e->io->pwrite(e->ioctx, fd, text, strlen(text), 0);
        if (!rc)
            rc = disk__sync(e, fd);
        int crc = e->io->close(e->ioctx, fd);
        rc = rc ? rc : crc;
    }
    if (!rc)
        rc = e->io->rename(e->ioctx, tmp, dst);
    if (!rc)
        rc = e->io->sync_dir(e->ioctx, e->dir);
    free(tmp);
    free(dst);
    return rc;
}

/* Reads DIR/name, written by meta_write, as a NUL-terminated string of
 * *len bytes. *text owned; free(). -ENOENT when the file is absent. */
static int meta_read(disk_env *e, const char *name, char **text, size_t *len)
{
    char *path = nb_xasprintf("%s/%s", e->dir, name);
    uint8_t *b = NULL;
    int rc = read_all(e, path, &b, len);
    free(path);
    if (rc)
        return rc;
    *text = nb_xrealloc(b, *len + 1);
    (*text)[*len] = 0;
    return 0;
}

/* DIR/DATAFILES: the data files' paths as given at creation, one a line;
 * absent for the default (one file, data.0). */
static int files_record(disk_env *e)
{
    if (!e->opt.files || !e->opt.n_files ||
        (e->opt.n_files == 1 && strcmp(e->opt.files[0], DISK_DATA_FILE) == 0))
        return 0;
    char *text = nb_xstrdup("");
    for (unsigned i = 0; i < e->opt.n_files; i++) {
        char *t = nb_xasprintf("%s%s\n", text, e->opt.files[i]);
        free(text);
        text = t;
    }
    int rc = meta_write(e, DISK_FILES_FILE, text);
    free(text);
    return rc;
}

/* DIR/SIZE: the capacity the engine was made (or last grown) with;
 * absent when it has none (bounded by the file system's free space).
 * Reopening with capacity 0 uses it; with a larger one grows it (the new
 * value is recorded); with a smaller one is NB_EUSAGE: blobs may already
 * lie beyond it, and shrinking is not supported. An engine without SIZE
 * (unbounded, or made before SIZE existed) takes the capacity given. */
static int size_settle(disk_env *e)
{
    char *text = NULL;
    size_t len = 0;
    int rc = meta_read(e, DISK_SIZE_FILE, &text, &len);
    uint64_t recorded = 0;
    if (rc == 0) {
        char *end = NULL;
        if (len == 0 || len >= 32 /* 20 digits and a newline, with room */ ||
            text[len - 1] != '\n') {
            rc = NB_CORRUPT("disk %s: %s is not a byte count", e->dir, DISK_SIZE_FILE);
        } else {
            text[len - 1] = 0;
            errno = 0;
            recorded = strtoull(text, &end, 10);
            if (errno || *end || !recorded)
                rc = NB_CORRUPT("disk %s: %s is not a byte count", e->dir, DISK_SIZE_FILE);
        }
        free(text);
    } else if (rc == -ENOENT) {
        rc = 0;
    }
    if (rc)
        return rc;
    uint64_t want = e->opt.capacity / e->au * e->au;
    if (e->opt.read_only || want == 0 || want == recorded) {
        e->opt.capacity = recorded ? recorded : e->opt.capacity;
        return 0;
    }
    if (recorded && want < recorded) {
        NB_ERROR("disk %s: made with a capacity of %llu bytes; %llu asked (it cannot shrink)",
                 e->dir, (unsigned long long)recorded, (unsigned long long)want);
        return NB_EUSAGE;
    }
    if (recorded)
        NB_INFO("disk %s: capacity grows from %llu to %llu bytes", e->dir,
                (unsigned long long)recorded, (unsigned long long)want);
    char *line = nb_xasprintf("%llu\n", (unsigned long long)want);
    rc = meta_write(e, DISK_SIZE_FILE, line);
    free(line);
    if (!rc)
        e->opt.capacity = want;
    return rc;
}

/* Loads the recorded file list (or the default) into e->files, and checks
 * that opt.files, when given, names the same files. */
static int files_load(disk_env *e)
{
    char *text = NULL;
    size_t len = 0;
    int rc = meta_read(e, DISK_FILES_FILE, &text, &len);
    char **list = NULL;
    unsigned n = 0;
    if (rc == 0) {
        for (char *save = NULL, *t = strtok_r(text, "\n", &save); t && n < DISK_MAX_FILES;
             t = strtok_r(NULL, "\n", &save)) {
            list = nb_xrealloc(list, (n + 1) * sizeof *list);
            list[n++] = nb_xstrdup(t);
        }
        free(text);
        if (!n)
            rc = NB_CORRUPT("disk %s: %s lists no files", e->dir, DISK_FILES_FILE);
    } else if (rc == -ENOENT) {
        rc = 0;
    }
    if (!rc)
        files_setup(e, (const char *const *)list, n);
    for (unsigned i = 0; i < n; i++)
        free(list[i]);
    free(list);
    if (!rc && e->opt.files && e->opt.n_files) {
        int same = e->opt.n_files == e->n_files;
        for (unsigned i = 0; same && i < e->n_files; i++) {
            const char *p = e->opt.files[i];
            char *full = p[0] == '/' ? nb_xstrdup(p) : nb_xasprintf("%s/%s", e->dir, p);
            same = strcmp(full, e->files[i].path) == 0;
            free(full);
        }
        if (!same) {
            NB_ERROR("disk %s: the engine was made with other data files (%u, the first %s)",
                     e->dir, e->n_files, e->files[0].path);
            rc = NB_EUSAGE;
        }
    }
    return rc;
}

int disk__write_zeros(disk_env *e, int fd, uint64_t from, uint64_t to)
{
    size_t chunk = 1u << 20;
    uint8_t *z = nb_xaligned_alloc(4096, chunk);
    memset(z, 0, chunk);
    int rc = 0;
    for (uint64_t off = from; off < to && !rc; off += chunk) {
        size_t n = to - off < chunk ? (size_t)(to - off) : chunk;
        rc = e->io->pwrite(e->ioctx, fd, z, n, off);
    }
    free(z);
    return rc;
}

int disk__wal_create(disk_env *e, uint64_t seq, uint64_t start_lsn, int *fd, int *direct,
                     uint8_t *hdr, uint64_t *end)
{
    *direct = 0;
    uint8_t h[DISK_WAL_HEADER_SIZE] = {0};
    memcpy(h, DISK_WAL_MAGIC, 8);
    nb_put_u32le(h + 8, DISK_FORMAT_VERSION);
    nb_put_u32le(h + 12, DISK_WAL_REC_SIZE);
    nb_put_u64le(h + 16, seq);
    nb_put_u64le(h + 24, start_lsn);
    memcpy(h + 32, e->uuid, 16);
    nb_put_u32le(h + 60, crc_masked(h, 60));
    memcpy(hdr, h, sizeof h);
    char *path = disk__wal_path(e->dir, seq);
    /* Reuse the spare when there is one: its blocks are allocated and
     * written, and its old records all carry lsns below start_lsn. */
    int reused = 0;
    if (e->have_spare) {
        char *spare = nb_xasprintf("%s/%s", e->dir, DISK_WAL_SPARE);
        reused = e->io->rename(e->ioctx, spare, path) == 0;
        e->have_spare = 0;
        free(spare);
    }
    int rc = e->io->open(e->ioctx, path, DISK_O_CREAT | (reused ? 0 : DISK_O_TRUNC), fd);
    if (rc) {
        free(path);
        return rc;
    }
    /* A new file starts with DISK_WAL_STEP of zeros; appends extend it a
     * step at a time (disk.c). A reused one is written as far as it goes. */
    *end = DISK_WAL_STEP;
    if (!reused)
        rc = disk__write_zeros(e, *fd, DISK_WAL_HEADER_SIZE, DISK_WAL_STEP);
    else
        rc = e->io->size(e->ioctx, *fd, end);
    if (!rc)
        rc = e->io->pwrite(e->ioctx, *fd, h, sizeof h, 0);
    if (!rc)
        rc = disk__sync(e, *fd);
    if (!rc)
        rc = e->io->sync_dir(e->ioctx, e->dir);
    /* Appends go direct when the data file does: no page-cache writeback
     * in the commit path. Buffered stays the fallback. */
    int dfd;
    if (!rc && e->direct && e->io->open(e->ioctx, path, DISK_O_DIRECT, &dfd) == 0) {
        e->io->close(e->ioctx, *fd);
        *fd = dfd;
        *direct = 1;
    }
    free(path);
    if (rc) {
        e->io->close(e->ioctx, *fd);
        *fd = -1;
    }
    return rc;
}

void disk__wal_retire(disk_env *e, uint64_t from, uint64_t to)
{
    for (uint64_t s = from; s < to; s++) {
        char *p = disk__wal_path(e->dir, s);
        int rc;
        if (s + 1 == to && !e->have_spare) {
            char *spare = nb_xasprintf("%s/%s", e->dir, DISK_WAL_SPARE);
            rc = e->io->rename(e->ioctx, p, spare);
            e->have_spare = rc == 0;
            free(spare);
        } else {
            rc = e->io->unlink(e->ioctx, p);
        }
        if (rc && rc != -ENOENT)
            NB_WARN("disk: cannot retire %s: %s", p, nb_strerror(rc));
        free(p);
    }
}

int disk__ckpt_write(disk_env *e, const disk__ent *ents, uint64_t n, uint64_t wal_seq,
                     uint64_t next_lsn, uint64_t data_size)
{
    size_t size = DISK_CKPT_HEADER + n * DISK_CKPT_ENTRY;
    uint8_t *b = nb_xcalloc(1, size);
    uint8_t *p = b + DISK_CKPT_HEADER;
    for (uint64_t i = 0; i < n; i++, p += DISK_CKPT_ENTRY) {
        nb_put_u64le(p, ents[i].hi);
        nb_put_u64le(p + 8, ents[i].lo);
        nb_put_u64le(p + 16, ents[i].off);
        nb_put_u32le(p + 24, ents[i].len);
        nb_put_u32le(p + 28, ents[i].crc);
    }
    memcpy(b, DISK_CKPT_MAGIC, 8);
    nb_put_u32le(b + 8, DISK_FORMAT_VERSION);
    nb_put_u32le(b + 12, DISK_CKPT_ENTRY);
    memcpy(b + 16, e->uuid, 16);
    nb_put_u64le(b + 32, wal_seq);
    nb_put_u64le(b + 40, next_lsn);
    nb_put_u64le(b + 48, n);
    nb_put_u64le(b + 56, data_size);
    nb_put_u32le(b + 64, e->au);
    nb_put_u32le(b + 68, crc_masked(b + DISK_CKPT_HEADER, size - DISK_CKPT_HEADER));
    nb_put_u32le(b + 76, crc_masked(b, 76));

    /* Two copies: the new one replaces the older, so a damaged newest copy
     * still leaves the previous one (and the WAL files after it). */
    int slot = 1 - e->ckpt_slot;
    char *tmp = nb_xasprintf("%s/%s.tmp", e->dir, DISK_CKPT_FILE);
    char *dst = disk__ckpt_path(e->dir, slot);
    int fd;
    int rc = e->io->open(e->ioctx, tmp, DISK_O_CREAT | DISK_O_TRUNC, &fd);
    if (!rc) {
        rc = e->io->pwrite(e->ioctx, fd, b, size, 0);
        if (!rc)
            rc = disk__sync(e, fd);
        int crc = e->io->close(e->ioctx, fd);
        rc = rc ? rc : crc;
    }
    if (!rc)
        rc = e->io->rename(e->ioctx, tmp, dst);
    if (!rc)
        rc = e->io->sync_dir(e->ioctx, e->dir);
    if (!rc)
        e->ckpt_slot = slot;
    free(tmp);
    free(dst);
    free(b);
    return rc;
}

char *disk__ckpt_path(const char *dir, int slot)
{
    return nb_xasprintf("%s/%s", dir, slot ? DISK_CKPT_FILE2 : DISK_CKPT_FILE);
}

static void super_encode(disk_env *e, uint8_t *sb, unsigned i, unsigned count, uint64_t size)
{
    memset(sb, 0, e->au);
    memcpy(sb, DISK_SUPER_MAGIC, 8);
    nb_put_u32le(sb + 8, DISK_FORMAT_VERSION);
    nb_put_u32le(sb + 12, e->au);
    memcpy(sb + 16, e->uuid, 16);
    nb_put_u64le(sb + 32, size);
    nb_put_u64le(sb + 40, nb_wall_ns());
    nb_put_u32le(sb + 48, i);
    nb_put_u32le(sb + 52, count);
    nb_put_u32le(sb + 60, crc_masked(sb, 60));
}

/* First open: data files with their superblocks, DATAFILES, WAL 1, then
 * CHECKPOINT last: its presence is what says the engine exists. A regular
 * data file starts at initial_size (default: one growth step) and grows as
 * puts need room; a block device is used whole. */
static int create(disk_env *e)
{
    e->au = e->opt.au_size;
    uint64_t size = e->opt.initial_size ? e->opt.initial_size : DISK__GROW_MIN;
    if (e->opt.capacity && size > e->opt.capacity / e->n_files)
        size = e->opt.capacity / e->n_files;
    size = size / e->au * e->au;
    if (size < 2ull * e->au || e->n_files > DISK_MAX_FILES)
        return NB_EUSAGE;
    for (unsigned i = 0; i < e->n_files; i++)
        for (unsigned j = 0; j < i; j++)
            if (strcmp(e->files[i].path, e->files[j].path) == 0) {
                NB_ERROR("disk %s: data file %s listed twice", e->dir, e->files[i].path);
                return NB_EUSAGE;
            }
    if (getrandom(e->uuid, sizeof e->uuid, 0) != (ssize_t)sizeof e->uuid) {
        uint64_t x = nb_wall_ns() ^ nb_mono_ns();
        memcpy(e->uuid, &x, 8);
        x = nb_hash64(&x, 8, (uint64_t)getpid());
        memcpy(e->uuid + 8, &x, 8);
    }
    uint8_t *sb = nb_xaligned_alloc(4096, e->au);
    int rc = 0;
    for (unsigned i = 0; i < e->n_files && !rc; i++) {
        disk__file *f = &e->files[i];
        f->fixed = is_blockdev(e, f->path);
        int fd;
        rc = e->io->open(e->ioctx, f->path, f->fixed ? 0 : DISK_O_CREAT | DISK_O_TRUNC, &fd);
        if (rc) {
            NB_ERROR("disk %s: cannot create %s: %s", e->dir, f->path, nb_strerror(rc));
            break;
        }
        f->size = size;
        if (f->fixed) {
            rc = e->io->size(e->ioctx, fd, &f->size);
            f->size = f->size / e->au * e->au;
            if (!rc && f->size < 2ull * e->au)
                rc = NB_EUSAGE;
        } else {
            rc = e->io->resize(e->ioctx, fd, f->size);
            if (!rc && e->opt.prefill)
                rc = disk__write_zeros(e, fd, e->au, f->size);
        }
        super_encode(e, sb, i, e->n_files, f->size);
        if (!rc)
            rc = e->io->pwrite(e->ioctx, fd, sb, e->au, 0);
        if (!rc)
            rc = disk__sync(e, fd);
        e->io->close(e->ioctx, fd);
    }
    free(sb);
    if (!rc)
        rc = files_record(e);
    if (!rc && e->opt.capacity / e->au) {
        char *text = nb_xasprintf("%llu\n", (unsigned long long)(e->opt.capacity / e->au * e->au));
        rc = meta_write(e, DISK_SIZE_FILE, text);
        free(text);
    }
    int wfd = -1, wdirect;
    uint8_t hdr[DISK_WAL_HEADER_SIZE];
    uint64_t wend;
    if (!rc)
        rc = disk__wal_create(e, 1, 1, &wfd, &wdirect, hdr, &wend);
    if (wfd >= 0)
        e->io->close(e->ioctx, wfd);
    if (!rc)
        rc = disk__ckpt_write(e, NULL, 0, 1, 1, e->files[0].size);
    if (rc)
        NB_ERROR("disk %s: cannot create engine: %s", e->dir, nb_strerror(rc));
    return rc;
}

typedef struct ckpt_info {
    uint64_t wal_seq, next_lsn, n, data_size;
    uint32_t au;
    uint8_t uuid[16];
    const uint8_t *ents;
} ckpt_info;

static int parse_ckpt(disk_env *e, const char *name, const uint8_t *b, size_t len, ckpt_info *c)
{
    if (len < DISK_CKPT_HEADER || memcmp(b, DISK_CKPT_MAGIC, 8) != 0)
        return NB_CORRUPT("disk %s: %s: bad magic or short (%zu bytes)", e->dir, name, len);
    uint32_t version = nb_get_u32le(b + 8);
    if (version > DISK_FORMAT_VERSION) {
        NB_ERROR("disk %s: %s has format version %u, this build reads up to %u", e->dir, name,
                 version, DISK_FORMAT_VERSION);
        return NB_EVERSION;
    }
    if (nb_get_u32le(b + 76) != crc_masked(b, 76))
        return NB_CORRUPT("disk %s: %s header checksum mismatch", e->dir, name);
    c->wal_seq = nb_get_u64le(b + 32);
    c->next_lsn = nb_get_u64le(b + 40);
    c->n = nb_get_u64le(b + 48);
    c->data_size = nb_get_u64le(b + 56);
    c->au = nb_get_u32le(b + 64);
    if (nb_get_u32le(b + 12) != DISK_CKPT_ENTRY ||
        c->n > (len - DISK_CKPT_HEADER) / DISK_CKPT_ENTRY ||
        len != DISK_CKPT_HEADER + c->n * DISK_CKPT_ENTRY)
        return NB_CORRUPT("disk %s: %s is %zu bytes for %llu entries", e->dir, name, len,
                          (unsigned long long)c->n);
    if (nb_get_u32le(b + 68) != crc_masked(b + DISK_CKPT_HEADER, len - DISK_CKPT_HEADER))
        return NB_CORRUPT("disk %s: %s entries checksum mismatch", e->dir, name);
    if (c->au < 4096 || (c->au & (c->au - 1)) || c->data_size % c->au || c->wal_seq == 0)
        return NB_CORRUPT("disk %s: %s has bad geometry", e->dir, name);
    memcpy(c->uuid, b + 16, 16);
    c->ents = b + DISK_CKPT_HEADER;
    return 0;
}

/* Opens data file i and checks its superblock: this engine's, this
 * index, and for file 0 no shorter than the checkpoint records. */
static int open_file(disk_env *e, unsigned i, const ckpt_info *c, int allow_direct)
{
    disk__file *f = &e->files[i];
    unsigned base = e->opt.read_only ? DISK_O_RDONLY : 0;
    int rc = -EINVAL;
    f->direct = 0;
    f->fixed = is_blockdev(e, f->path);
    if (allow_direct && e->opt.direct != DISK_DIRECT_OFF) {
        rc = e->io->open(e->ioctx, f->path, base | DISK_O_DIRECT, &f->fd);
        if (!rc)
            f->direct = 1;
        else if (rc == -EINVAL && e->opt.direct == DISK_DIRECT_AUTO)
            NB_INFO("disk %s: O_DIRECT not supported for %s; using buffered I/O", e->dir, f->path);
    }
    if (rc == -EINVAL && e->opt.direct != DISK_DIRECT_ON)
        rc = e->io->open(e->ioctx, f->path, base, &f->fd);
    if (rc) {
        f->fd = -1;
        if (rc == -ENOENT)
            return NB_CORRUPT("disk %s: data file %s is missing", e->dir, f->path);
        return rc;
    }
    uint8_t *sb = nb_xaligned_alloc(4096, c->au);
    size_t got = 0;
    rc = e->io->pread(e->ioctx, f->fd, sb, c->au, 0, &got);
    if (rc == -EINVAL && f->direct && e->opt.direct == DISK_DIRECT_AUTO) {
        /* Some file systems accept O_DIRECT at open and refuse the I/O. */
        e->io->close(e->ioctx, f->fd);
        f->fd = -1;
        free(sb);
        return open_file(e, i, c, 0);
    }
    const char *p = f->path;
    if (!rc && got < DISK_SUPER_SIZE)
        rc = NB_CORRUPT("disk %s: %s is too short for a superblock", e->dir, p);
    if (!rc && memcmp(sb, DISK_SUPER_MAGIC, 8) != 0)
        rc = NB_CORRUPT("disk %s: %s: bad superblock magic", e->dir, p);
    if (!rc && nb_get_u32le(sb + 8) > DISK_FORMAT_VERSION) {
        NB_ERROR("disk %s: %s: superblock has format version %u", e->dir, p, nb_get_u32le(sb + 8));
        rc = NB_EVERSION;
    }
    if (!rc && nb_get_u32le(sb + 60) != crc_masked(sb, 60))
        rc = NB_CORRUPT("disk %s: %s: superblock checksum mismatch", e->dir, p);
    /* The superblock holds the size at creation; a file only grows. Index
     * and count are 0 in engines made before several files existed. The
     * count is the number of files when this one was made: files added
     * later carry higher counts, so a list missing them is caught. */
    uint32_t count = rc ? 0 : nb_get_u32le(sb + 52);
    if (!rc && (memcmp(sb + 16, e->uuid, 16) != 0 || nb_get_u32le(sb + 12) != c->au ||
                nb_get_u32le(sb + 48) != i ||
                (count ? count : 1) > (i < e->n_files ? e->n_files : i + 1) ||
                (i == 0 && nb_get_u64le(sb + 32) > c->data_size)))
        rc = NB_CORRUPT("disk %s: %s: superblock does not match the engine (another engine's "
                        "file, or files listed in another order?)",
                        e->dir, p);
    free(sb);
    uint64_t size = 0;
    if (!rc)
        rc = e->io->size(e->ioctx, f->fd, &size);
    if (!rc && i == 0 && size < c->data_size)
        rc = NB_CORRUPT("disk %s: %s is %llu bytes but the checkpoint records %llu", e->dir, p,
                        (unsigned long long)size, (unsigned long long)c->data_size);
    /* A file may have grown after the checkpoint: every growth was made
     * durable before any extent in it was used. */
    if (!rc)
        f->size = size / c->au * c->au;
    if (!rc && f->direct) {
        /* Refs hand out a descriptor for pread/sendfile at any alignment;
         * PUTDs write their extents through it (the page cache). */
        rc = e->io->open(e->ioctx, f->path, e->opt.read_only ? DISK_O_RDONLY : 0, &f->ref_fd);
    } else if (!rc) {
        f->ref_fd = f->fd;
    }
    return rc;
}

static int open_data(disk_env *e, const ckpt_info *c)
{
    int rc = 0;
    for (unsigned i = 0; i < e->n_files && !rc; i++)
        rc = open_file(e, i, c, 1);
    if (!rc)
        e->direct = e->files[0].direct;
    return rc;
}

static int extent_ok(const disk_env *e, uint64_t off, uint32_t len)
{
    uint64_t fi = off >> DISK__FILE_SHIFT, local = off & DISK__LOCAL_MASK;
    if (fi >= e->n_files)
        return 0;
    uint64_t size = e->files[fi].size;
    uint64_t n = len ? (len + e->au - 1) / e->au : 1;
    return local % e->au == 0 && local >= e->au && local < size && n <= (size - local) / e->au;
}

static disk__alloc *alloc_of(disk_env *e, uint64_t off)
{
    return &e->files[off >> DISK__FILE_SHIFT].alloc;
}

static uint64_t au_of(const disk_env *e, uint64_t off)
{
    return (off & DISK__LOCAL_MASK) / e->au - 1;
}

static int apply_put(disk_env *e, disk_id id, uint64_t off, uint32_t len, uint32_t crc)
{
    if (!extent_ok(e, off, len))
        return NB_CORRUPT("disk %s: blob %016llx:%016llx: extent %llu+%u of data file %llu is "
                          "outside the file (%llu bytes) or the engine (%u files)",
                          e->dir, (unsigned long long)id.hi, (unsigned long long)id.lo,
                          (unsigned long long)(off & DISK__LOCAL_MASK), len,
                          (unsigned long long)(off >> DISK__FILE_SHIFT),
                          (unsigned long long)((off >> DISK__FILE_SHIFT) < e->n_files
                                                   ? e->files[off >> DISK__FILE_SHIFT].size
                                                   : 0),
                          e->n_files);
    disk__ent ent = {id.hi, id.lo, off, len, crc}, old;
    uint64_t n = len ? (len + e->au - 1) / e->au : 1;
    if (disk__map_put(&e->index, &ent, &old)) {
        disk__alloc_put(alloc_of(e, old.off), au_of(e, old.off),
                        old.len ? (old.len + e->au - 1) / e->au : 1);
        e->bytes_live -= old.len;
    }
    e->bytes_live += len;
    if (disk__alloc_mark(alloc_of(e, off), au_of(e, off), n))
        return NB_CORRUPT("disk %s: blob %016llx:%016llx: extent %llu+%u overlaps another blob",
                          e->dir, (unsigned long long)id.hi, (unsigned long long)id.lo,
                          (unsigned long long)off, len);
    return 0;
}

static void apply_del(disk_env *e, disk_id id)
{
    disk__ent old;
    if (disk__map_del(&e->index, id.hi, id.lo, &old)) {
        disk__alloc_put(alloc_of(e, old.off), au_of(e, old.off),
                        old.len ? (old.len + e->au - 1) / e->au : 1);
        e->bytes_live -= old.len;
    }
}

/* A replayed PUTD: its blob's extent and where its data sits in the arena. */
typedef struct putd_ent {
    disk_id id;
    uint64_t lsn;
    uint64_t off;
    uint32_t len, crc;
    size_t at;
} putd_ent;

/* Replay state: records of the batch being read, and the last
 * DISK__COMMIT_DEPTH complete batches (records back to back, sizes in
 * held_n), held back until we know whether they are the final ones. */
typedef struct replay {
    disk__rec *cur, *last;
    size_t n_cur, n_last, cap_cur, cap_last;
    size_t held_n[DISK__COMMIT_DEPTH + 1];
    int held;
    uint64_t next; /* lsn after the last END seen: where the next file starts */
    /* PUTD data replayed, back to back in arena; putd[] says whose. */
    uint8_t *arena;
    size_t n_arena, cap_arena;
    putd_ent *putd; /* in lsn order */
    size_t n_putd, cap_putd;
    size_t n_putd_done; /* of which in complete batches */
    /* NOSYNC PUTs no SYNC record covers yet: their data is checked at the end. */
    putd_ent *unv;
    size_t n_unv, cap_unv;
} replay;

static int apply_batch(disk_env *e, const disk__rec *r, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (disk__rec_is_put(r[i].type)) {
            int rc = apply_put(e, r[i].id, r[i].off, r[i].len, r[i].crc);
            if (rc)
                return rc;
        } else if (r[i].type == DISK_REC_DEL) {
            apply_del(e, r[i].id);
        }
        e->replayed++;
    }
    return 0;
}

static void push(disk__rec **v, size_t *n, size_t *cap, const disk__rec *r)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 64;
        *v = nb_xrealloc(*v, *cap * sizeof **v);
    }
    (*v)[(*n)++] = *r;
}

/* The data files were synced after every record below lsn b was written
 * (a SYNC record, or a later WAL file): the PUTDs below b need no
 * restoring and the NOSYNC PUTs below b no checking. */
static void synced_below(replay *rp, uint64_t b)
{
    size_t k = 0;
    while (k < rp->n_putd && rp->putd[k].lsn < b)
        k++;
    if (k) {
        memmove(rp->putd, rp->putd + k, (rp->n_putd - k) * sizeof *rp->putd);
        rp->n_putd -= k;
        rp->n_putd_done = rp->n_putd_done > k ? rp->n_putd_done - k : 0;
        if (!rp->n_putd)
            rp->n_arena = 0;
    }
    k = 0;
    while (k < rp->n_unv && rp->unv[k].lsn < b)
        k++;
    if (k) {
        memmove(rp->unv, rp->unv + k, (rp->n_unv - k) * sizeof *rp->unv);
        rp->n_unv -= k;
    }
}

/* Replays one WAL file. Returns 0, 1 when the file is missing, 2 when its
 * header is unusable (torn, or left from a reuse cut short), or an error.
 * Reads 1 MiB at a time and stops at the end of the records, not of the
 * (preallocated) file. */
static int replay_file(disk_env *e, uint64_t seq, replay *rp)
{
    char *path = disk__wal_path(e->dir, seq);
    int fd;
    int rc = e->io->open(e->ioctx, path, DISK_O_RDONLY, &fd);
    if (rc) {
        free(path);
        return rc == -ENOENT ? 1 : rc;
    }
    uint8_t h[DISK_WAL_HEADER_SIZE];
    size_t len = 0;
    rc = e->io->pread(e->ioctx, fd, h, sizeof h, 0, &len);
    if (rc) {
        /* an I/O error */
    } else if (len >= 12 && memcmp(h, DISK_WAL_MAGIC, 8) == 0 &&
               nb_get_u32le(h + 8) > DISK_FORMAT_VERSION) {
        NB_ERROR("disk %s: %s has format version %u, this build reads up to %u", e->dir, path,
                 nb_get_u32le(h + 8), DISK_FORMAT_VERSION);
        rc = NB_EVERSION;
    } else if (len < DISK_WAL_HEADER_SIZE || memcmp(h, DISK_WAL_MAGIC, 8) != 0 ||
               nb_get_u32le(h + 60) != crc_masked(h, 60) || nb_get_u64le(h + 16) != seq) {
        /* Only a crash while creating or reusing the file does this; the
         * caller checks that no later file exists. */
        NB_WARN("disk %s: %s has no valid header (creation cut short)", e->dir, path);
        rc = 2;
    } else if (memcmp(h + 32, e->uuid, 16) != 0 || nb_get_u32le(h + 12) != DISK_WAL_REC_SIZE) {
        rc = NB_CORRUPT("disk %s: %s belongs to another engine", e->dir, path);
    } else if (nb_get_u64le(h + 24) != rp->next) {
        rc = NB_CORRUPT("disk %s: %s starts at lsn %llu but lsn %llu was expected: durable WAL "
                        "records are missing",
                        e->dir, path, (unsigned long long)nb_get_u64le(h + 24),
                        (unsigned long long)rp->next);
    }
    /* A valid later WAL file was created after the data files were synced
     * (a checkpoint or an open did it): the PUTDs of earlier files need no
     * restoring. */
    if (rc == 0)
        synced_below(rp, UINT64_MAX);
    /* Records vary in size (a PUTD carries its data): parse whole records
     * from the buffer, and re-read from the first incomplete one. */
    size_t chunk = (size_t)1 << 20;
    uint8_t *b = rc ? NULL : nb_xmalloc(chunk);
    uint64_t pos = DISK_WAL_HEADER_SIZE, lsn = rp->next;
    int end = 0;
    while (rc == 0 && !end) {
        rc = e->io->pread(e->ioctx, fd, b, chunk, pos, &len);
        if (rc)
            break;
        size_t i = 0;
        int grown = 0;
        while (!end && i + DISK_WAL_REC_SIZE <= len) {
            disk__rec r;
            if (disk__rec_decode(b + i, &r) != 0 || r.lsn != lsn) {
                end = 1;
                break;
            }
            size_t sz = disk__rec_size(&r);
            if (r.type == DISK_REC_PUTD) {
                if (i + sz > len) {
                    /* Incomplete here: re-read from it (in a buffer that
                     * holds it), unless the file ends. */
                    if (len == chunk && sz > chunk) {
                        chunk = sz;
                        free(b);
                        b = nb_xmalloc(chunk);
                        grown = 1;
                    }
                    break;
                }
                const uint8_t *d = b + i + DISK_WAL_REC_SIZE;
                if (nb_crc32c(0, d, r.len) != r.crc) {
                    end = 1; /* a torn record */
                    break;
                }
                if (rp->n_arena + r.len > rp->cap_arena) {
                    rp->cap_arena = (rp->n_arena + r.len) * 2;
                    rp->arena = nb_xrealloc(rp->arena, rp->cap_arena);
                }
                if (r.len)
                    memcpy(rp->arena + rp->n_arena, d, r.len);
                if (rp->n_putd == rp->cap_putd) {
                    rp->cap_putd = rp->cap_putd ? rp->cap_putd * 2 : 64;
                    rp->putd = nb_xrealloc(rp->putd, rp->cap_putd * sizeof *rp->putd);
                }
                rp->putd[rp->n_putd++] = (putd_ent){r.id, r.lsn, r.off, r.len, r.crc, rp->n_arena};
                rp->n_arena += r.len;
            }
            if (r.type == DISK_REC_SYNC)
                synced_below(rp, r.off);
            if (r.type == DISK_REC_PUT && (r.flags & DISK_REC_NOSYNC)) {
                if (rp->n_unv == rp->cap_unv) {
                    rp->cap_unv = rp->cap_unv ? rp->cap_unv * 2 : 64;
                    rp->unv = nb_xrealloc(rp->unv, rp->cap_unv * sizeof *rp->unv);
                }
                rp->unv[rp->n_unv++] = (putd_ent){r.id, r.lsn, r.off, r.len, r.crc, 0};
            }
            i += sz;
            lsn++;
            push(&rp->cur, &rp->n_cur, &rp->cap_cur, &r);
            if (r.flags & DISK_REC_END) {
                /* A complete batch joins the held ones; the oldest held
                 * batch, no longer among the final ones, is applied. */
                for (size_t k = 0; k < rp->n_cur; k++)
                    push(&rp->last, &rp->n_last, &rp->cap_last, &rp->cur[k]);
                rp->held_n[rp->held++] = rp->n_cur;
                rp->n_cur = 0;
                rp->next = lsn;
                rp->n_putd_done = rp->n_putd;
                if (rp->held > DISK__COMMIT_DEPTH) {
                    size_t k = rp->held_n[0];
                    rc = apply_batch(e, rp->last, k);
                    memmove(rp->last, rp->last + k, (rp->n_last - k) * sizeof *rp->last);
                    rp->n_last -= k;
                    memmove(rp->held_n, rp->held_n + 1,
                            (size_t)DISK__COMMIT_DEPTH * sizeof(size_t));
                    rp->held--;
                    if (rc)
                        break;
                }
            }
        }
        pos += i;
        if (len < chunk && !grown)
            end = 1;
    }
    /* PUTDs of a batch cut short are not replayed: forget their data. */
    if (rp->n_putd > rp->n_putd_done) {
        rp->n_arena = rp->putd[rp->n_putd_done].at;
        rp->n_putd = rp->n_putd_done;
    }
    if (rc == 0 && rp->n_cur)
        NB_WARN("disk %s: %s: dropping %zu records of a batch cut short by a crash (never "
                "acknowledged)",
                e->dir, path, rp->n_cur);
    rp->n_cur = 0;
    /* After a kill the tail may sit in the page cache only: make what we
     * replayed durable before anything is built on it. */
    if (rc == 0 && !e->opt.read_only)
        rc = disk__sync(e, fd);
    free(b);
    e->io->close(e->ioctx, fd);
    free(path);
    return rc;
}

/* The final batches: apply their records, except puts whose data did not
 * reach the disk (the data and WAL syncs of a batch race, and up to
 * DISK__COMMIT_DEPTH batches are synced at once; such a put was never
 * acknowledged). Reads the data of at most DISK__COMMIT_DEPTH batches. */
static int apply_final_batch(disk_env *e, replay *rp)
{
    int rc = 0;
    if (!e->opt.read_only && rp->n_last)
        rc = disk__sync_data(e); /* what we verify must be what is durable */
    for (size_t i = 0; i < rp->n_last && !rc; i++) {
        disk__rec *r = &rp->last[i];
        if (r->type == DISK_REC_PUT) { /* a PUTD's data came with it */
            if (!extent_ok(e, r->off, r->len))
                return apply_put(e, r->id, r->off, r->len, r->crc); /* reports it */
            uint8_t *b = nb_xmalloc(r->len ? r->len : 1);
            size_t got = 0;
            rc = r->len ? e->io->pread(e->ioctx, e->files[r->off >> DISK__FILE_SHIFT].ref_fd, b,
                                       r->len, r->off & DISK__LOCAL_MASK, &got)
                        : 0;
            int ok = !rc && got == r->len && nb_crc32c(0, b, r->len) == r->crc;
            free(b);
            if (rc)
                return rc;
            if (!ok) {
                NB_WARN("disk %s: blob %016llx:%016llx (lsn %llu): its data did not reach the "
                        "disk before the crash; dropping the never acknowledged put",
                        e->dir, (unsigned long long)r->id.hi, (unsigned long long)r->id.lo,
                        (unsigned long long)r->lsn);
                e->dropped++;
                continue;
            }
        }
        rc = apply_batch(e, r, 1);
    }
    return rc;
}

/* Writes the data of every replayed PUTD still in the index back to its
 * extent and syncs the data files: a power cut may have lost the extent's
 * unsynced copy, and the WAL files holding the data go at the next
 * checkpoint. A read-only open cannot; it reads what the extent holds
 * (after a power cut that can be a checksum error until a writable open). */
/* NOSYNC PUTs no sync covered: a blob whose data did not reach the disk
 * is dropped (it was never durable: its put said so). */
static int nosync_check(disk_env *e, replay *rp)
{
    int rc = 0;
    if (!e->opt.read_only && rp->n_unv)
        rc = disk__sync_data(e); /* what we verify must be what is durable */
    for (size_t i = 0; i < rp->n_unv && !rc; i++) {
        const putd_ent *p = &rp->unv[i];
        disk__ent *ent = disk__map_get(&e->index, p->id.hi, p->id.lo);
        if (!ent || ent->off != p->off || ent->len != p->len || ent->crc != p->crc)
            continue;
        uint8_t *b = nb_xmalloc(p->len ? p->len : 1);
        size_t got = 0;
        rc = p->len ? e->io->pread(e->ioctx, e->files[p->off >> DISK__FILE_SHIFT].ref_fd, b, p->len,
                                   p->off & DISK__LOCAL_MASK, &got)
                    : 0;
        int ok = !rc && got == p->len && nb_crc32c(0, b, p->len) == p->crc;
        free(b);
        if (rc || ok)
            continue;
        NB_WARN("disk %s: blob %016llx:%016llx (lsn %llu): put without sync whose data did not "
                "reach the disk before the crash; dropping it",
                e->dir, (unsigned long long)p->id.hi, (unsigned long long)p->id.lo,
                (unsigned long long)p->lsn);
        apply_del(e, p->id);
        e->dropped++;
    }
    return rc;
}

static int putd_cmp(const void *a, const void *b)
{
    uint64_t x = ((const putd_ent *)a)->off, y = ((const putd_ent *)b)->off;
    return x < y ? -1 : x > y;
}

static int putd_restore(disk_env *e, replay *rp)
{
    if (e->opt.read_only || !rp->n_putd)
        return 0;
    /* The live ones, by offset, so that neighbours go in one write (small
     * blobs are allocated next to each other). */
    size_t n = 0;
    for (size_t i = 0; i < rp->n_putd; i++) {
        const putd_ent *p = &rp->putd[i];
        disk__ent *ent = disk__map_get(&e->index, p->id.hi, p->id.lo);
        if (ent && ent->off == p->off && ent->len == p->len && ent->crc == p->crc)
            rp->putd[n++] = *p; /* not replaced or deleted since */
    }
    qsort(rp->putd, n, sizeof *rp->putd, putd_cmp);
    const size_t max_run = (size_t)8 << 20;
    uint8_t *buf = NULL;
    size_t cap = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc;) {
        /* A run of adjacent extents in one file, whole AUs, zero-padded. */
        uint64_t start = rp->putd[i].off, end = start;
        size_t j = i;
        while (j < n && rp->putd[j].off == end &&
               (rp->putd[j].off >> DISK__FILE_SHIFT) == (start >> DISK__FILE_SHIFT)) {
            uint64_t sz =
                rp->putd[j].len ? ((uint64_t)rp->putd[j].len + e->au - 1) / e->au * e->au : e->au;
            if (j > i && end + sz - start > max_run)
                break;
            end += sz;
            j++;
        }
        size_t len = (size_t)(end - start);
        if (len > cap) {
            free(buf);
            cap = len;
            buf = nb_xaligned_alloc(4096, cap);
        }
        memset(buf, 0, len);
        for (size_t k = i; k < j; k++)
            if (rp->putd[k].len)
                memcpy(buf + (rp->putd[k].off - start), rp->arena + rp->putd[k].at,
                       rp->putd[k].len);
        disk__file *f = &e->files[start >> DISK__FILE_SHIFT];
        rc = e->io->pwrite(e->ioctx, f->fd, buf, len, start & DISK__LOCAL_MASK);
        i = j;
    }
    free(buf);
    if (!rc && n)
        rc = disk__sync_data(e);
    return rc;
}

/* Picks the checkpoint to recover from: the valid copy with the higher
 * wal_seq; a damaged copy is skipped (logged); with no valid copy, one of
 * a newer format fails the open with NB_EVERSION. Records in e the slot and wal_seq it picked and
 * the oldest WAL file either valid copy needs. */
static int pick_ckpt(disk_env *e, uint8_t *const cb[2], const size_t clen[2], const int rcs[2],
                     ckpt_info *out)
{
    ckpt_info c[2];
    int prc[2], best = -1;
    for (int s = 0; s < 2; s++) {
        prc[s] = rcs[s];
        if (!prc[s])
            prc[s] = parse_ckpt(e, s ? DISK_CKPT_FILE2 : DISK_CKPT_FILE, cb[s], clen[s], &c[s]);
        if (prc[s] && prc[s] != -ENOENT && prc[s] != NB_ECORRUPT && prc[s] != NB_EVERSION)
            return prc[s]; /* an I/O error: nothing to decide on */
        if (!prc[s] && (best < 0 || c[s].wal_seq > c[best].wal_seq))
            best = s;
    }
    /* A copy that claims a newer format next to a valid one is bit rot or
     * a newer build's; either way the WAL files a newer build made carry
     * its version and stop the replay, so the valid copy is safe to use. */
    if (best < 0)
        return prc[0] == NB_EVERSION || prc[1] == NB_EVERSION ? NB_EVERSION
               : prc[0] == -ENOENT                            ? prc[1]
                                                              : prc[0];
    int other = 1 - best;
    if (prc[other] == NB_ECORRUPT || prc[other] == NB_EVERSION)
        NB_WARN("disk %s: %s is damaged; recovering from %s and the WAL after it", e->dir,
                other ? DISK_CKPT_FILE2 : DISK_CKPT_FILE, best ? DISK_CKPT_FILE2 : DISK_CKPT_FILE);
    if (!prc[other] && memcmp(c[other].uuid, c[best].uuid, 16) != 0)
        return NB_CORRUPT("disk %s: the two checkpoint copies belong to different engines", e->dir);
    *out = c[best];
    memcpy(e->uuid, c[best].uuid, 16);
    e->ckpt_slot = best;
    e->ckpt_seq = c[best].wal_seq;
    e->wal_first =
        !prc[other] && c[other].wal_seq < c[best].wal_seq ? c[other].wal_seq : c[best].wal_seq;
    return 0;
}

static int recover(disk_env *e, uint8_t *const cb[2], const size_t clen[2], const int rcs[2])
{
    ckpt_info c;
    int rc = pick_ckpt(e, cb, clen, rcs, &c);
    if (rc)
        return rc;
    e->au = c.au;
    rc = open_data(e, &c);
    if (rc)
        return rc;
    for (unsigned i = 0; i < e->n_files; i++)
        disk__alloc_init(&e->files[i].alloc, e->files[i].size / c.au - 1);
    disk__map_init(&e->index, c.n);
    const uint8_t *p = c.ents;
    for (uint64_t i = 0; i < c.n; i++, p += DISK_CKPT_ENTRY) {
        disk_id id = {nb_get_u64le(p), nb_get_u64le(p + 8)};
        if (disk__map_get(&e->index, id.hi, id.lo))
            return NB_CORRUPT("disk %s: CHECKPOINT lists blob %016llx:%016llx twice", e->dir,
                              (unsigned long long)id.hi, (unsigned long long)id.lo);
        rc = apply_put(e, id, nb_get_u64le(p + 16), nb_get_u32le(p + 24), nb_get_u32le(p + 28));
        if (rc)
            return rc;
    }
    replay rp = {.next = c.next_lsn};
    uint64_t seq = c.wal_seq, last_good = 0;
    for (;; seq++) {
        rc = replay_file(e, seq, &rp);
        if (rc == 0) {
            last_good = seq;
            continue;
        }
        if (rc == 1 && seq == c.wal_seq) {
            rc = NB_CORRUPT("disk %s: WAL file %llu named by CHECKPOINT is missing", e->dir,
                            (unsigned long long)seq);
        } else if (rc == 2) {
            char *next = disk__wal_path(e->dir, seq + 1);
            int later = 0;
            int fd;
            if (e->io->open(e->ioctx, next, DISK_O_RDONLY, &fd) == 0) {
                later = 1;
                e->io->close(e->ioctx, fd);
            }
            free(next);
            if (later || seq == c.wal_seq)
                rc = NB_CORRUPT("disk %s: WAL file %llu has a damaged header", e->dir,
                                (unsigned long long)seq);
            else
                rc = 0;
        } else if (rc == 1) {
            rc = 0;
        }
        break;
    }
    if (!rc)
        rc = apply_final_batch(e, &rp);
    if (!rc)
        rc = nosync_check(e, &rp);
    if (!rc)
        rc = putd_restore(e, &rp);
    free(rp.cur);
    free(rp.last);
    free(rp.arena);
    free(rp.putd);
    free(rp.unv);
    if (rc)
        return rc;
    e->wal_seq = last_good + 1; /* replaces a file with a torn header */
    char *spare = nb_xasprintf("%s/%s", e->dir, DISK_WAL_SPARE);
    int sfd;
    if (e->io->open(e->ioctx, spare, DISK_O_RDONLY, &sfd) == 0) {
        e->have_spare = 1;
        e->io->close(e->ioctx, sfd);
    }
    free(spare);
    e->next_lsn = rp.next;
    e->synced_b = rp.next; /* recovery verified or restored everything */
    e->durable_lsn = e->written_lsn = rp.next - 1;
    return 0;
}

int disk_open(const disk_options *opts, const char *dir, disk_env **out)
{
    *out = NULL;
    disk_env *e = nb_xcalloc(1, sizeof *e);
    if (opts)
        e->opt = *opts;
    else
        disk_options_init(&e->opt);
    if (e->opt.au_size < 4096 || (e->opt.au_size & (e->opt.au_size - 1)) || e->opt.max_blob == 0) {
        free(e);
        return NB_EUSAGE;
    }
    e->dir = nb_xstrdup(dir);
    e->lock_fd = e->wal_fd = -1;
    pthread_mutex_init(&e->ckpt_mu, NULL);
    pthread_mutex_init(&e->grow_mu, NULL);
    pthread_mutex_init(&e->wal_mu, NULL);
    pthread_cond_init(&e->wal_cv, NULL);
    nb_cond_init_mono(&e->gather_cv);
    pthread_cond_init(&e->grow_cv, NULL);
    pthread_mutex_init(&e->mu, NULL);
    disk__map_init(&e->pins, 16);
    uint64_t t0 = nb_mono_ns();
    int rc = 0;

    if (e->opt.io) {
        e->io = e->opt.io;
        e->ioctx = e->opt.io_ctx;
    } else {
        e->io = &disk__io_posix;
        if (e->opt.io_mode != DISK_IO_POSIX) {
            const disk_io_ops *ops;
            rc = disk__uring_new(&e->uring, &ops);
            if (!rc) {
                e->io = ops;
                e->ioctx = e->uring;
            } else if (e->opt.io_mode == DISK_IO_AUTO) {
                NB_INFO("disk %s: io_uring unavailable (%s); using pread/pwrite", dir,
                        nb_strerror(rc));
                rc = 0;
            }
        }
        if (!rc) {
            struct stat st;
            if (e->opt.read_only && stat(dir, &st) != 0)
                rc = NB_ENOTFOUND;
            else if (!e->opt.read_only)
                rc = nb_mkdir_p(dir, 0755);
        }
        if (!rc) {
            char *lock = nb_xasprintf("%s/%s", dir, DISK_LOCK_FILE);
            pid_t holder = 0;
            rc = nb_lock_file(lock, &e->lock_fd, &holder);
            if (rc == NB_ELOCKED)
                NB_ERROR("disk %s: in use by process %d", dir, (int)holder);
            free(lock);
        }
    }

    uint8_t *cb[2] = {NULL, NULL};
    size_t clen[2] = {0, 0};
    int rcs[2] = {0, 0};
    e->ckpt_slot = 1; /* so a new engine's first checkpoint is CHECKPOINT */
    if (!rc) {
        for (int s = 0; s < 2; s++) {
            char *path = disk__ckpt_path(dir, s);
            rcs[s] = read_all(e, path, &cb[s], &clen[s]);
            free(path);
        }
        rc = rcs[0] == -ENOENT && rcs[1] == -ENOENT ? -ENOENT : 0;
        if (rc == -ENOENT && e->opt.read_only) {
            rc = NB_ENOTFOUND;
        } else if (rc == -ENOENT) {
            /* No engine yet, or a crash during creation (which is redone).
             * A WAL without a checkpoint is someone's data: refuse. */
            char *w1 = disk__wal_path(dir, 2);
            int fd;
            if (e->io->open(e->ioctx, w1, DISK_O_RDONLY, &fd) == 0) {
                e->io->close(e->ioctx, fd);
                rc = NB_CORRUPT("disk %s: WAL files but no CHECKPOINT", dir);
            } else {
                files_setup(e, e->opt.files, e->opt.n_files);
                rc = create(e);
                char *path = disk__ckpt_path(dir, 0);
                if (!rc)
                    rc = rcs[0] = read_all(e, path, &cb[0], &clen[0]);
                free(path);
            }
            free(w1);
        }
    }
    if (!rc && !e->files)
        rc = files_load(e);
    if (!rc)
        rc = recover(e, cb, clen, rcs);
    if (!rc)
        rc = size_settle(e);
    free(cb[0]);
    free(cb[1]);
    e->recovery_ns = nb_mono_ns() - t0; /* load + replay, before the new WAL file */
    if (!rc && !e->opt.read_only) {
        int fd = -1, direct = 0;
        uint8_t hdr[DISK_WAL_HEADER_SIZE];
        uint64_t end = 0;
        rc = disk__wal_create(e, e->wal_seq, e->next_lsn, &fd, &direct, hdr, &end);
        if (!rc)
            disk__wal_use(e, fd, direct, hdr, end);
        /* Files older than the checkpoint whose removal a crash undid. */
        uint64_t first = e->wal_first;
        while (!rc && first > 1) {
            char *p = disk__wal_path(dir, first - 1);
            int gone = e->io->unlink(e->ioctx, p) == -ENOENT;
            free(p);
            if (gone)
                break;
            first--;
        }
    }
    if (!rc && !e->opt.read_only &&
        (e->dropped || e->wal_seq - e->wal_first >= 4 ||
         e->replayed * DISK_WAL_REC_SIZE >= e->opt.wal_max_bytes / 2)) {
        /* After dropping puts, the checkpoint is what keeps a later replay
         * from judging those records again once their extents are reused;
         * then both copies must postdate the decision (a fallback to an
         * older copy would replay those records as settled). */
        rc = disk__checkpoint(e);
        if (!rc && e->dropped)
            rc = disk__checkpoint(e);
    }
    if (rc) {
        e->opt.close_checkpoint = 0;
        e->opt.read_only = 1; /* nothing to flush */
        disk_close(e);
        return rc;
    }
    disk__grower_start(e);
    NB_DEBUG("disk %s: open, %llu blobs, %llu WAL records replayed in %.1f ms", dir,
             (unsigned long long)e->index.n, (unsigned long long)e->replayed,
             (double)e->recovery_ns / 1e6);
    *out = e;
    return 0;
}

int disk_close(disk_env *e)
{
    if (!e)
        return 0;
    int rc = 0;
    disk__grower_stop(e);
    pthread_mutex_lock(&e->wal_mu);
    while (e->starting || e->inflight || e->blocked)
        pthread_cond_wait(&e->wal_cv, &e->wal_mu);
    int failed = e->failed;
    /* Records written, or replayed at open: either way the next open would
     * replay something without a checkpoint now. */
    int dirty = e->wal_fd >= 0 && (e->wal_off > DISK_WAL_HEADER_SIZE || e->replayed > 0);
    pthread_mutex_unlock(&e->wal_mu);
    if (!e->opt.read_only && !failed && e->wal_fd >= 0) {
        if (e->opt.close_checkpoint && dirty) {
            rc = disk__checkpoint(e);
        } else {
            /* The data files synced and a SYNC record saying so: the next
             * open restores no PUTD's data from the WAL. */
            if (dirty)
                rc = disk__sync_all(e, 1);
            if (!rc && e->opt.no_sync)
                rc = disk__sync_data(e);
            if (!rc && e->opt.no_sync)
                rc = disk__sync(e, e->wal_fd);
        }
    }
    if (e->wal_fd >= 0)
        e->io->close(e->ioctx, e->wal_fd);
    for (unsigned i = 0; i < e->n_files; i++) {
        disk__file *f = &e->files[i];
        if (f->ref_fd >= 0 && f->ref_fd != f->fd)
            e->io->close(e->ioctx, f->ref_fd);
        if (f->fd >= 0)
            e->io->close(e->ioctx, f->fd);
        disk__alloc_free_all(&f->alloc);
        free(f->path);
    }
    free(e->files);
    nb_unlock_file(e->lock_fd);
    disk__uring_free(e->uring);
    disk__map_free(&e->index);
    disk__map_free(&e->pins);
    free(e->pending);
    free(e->deferred);
    free(e->wal_buf);
    free(e->wal_tail);
    pthread_mutex_destroy(&e->ckpt_mu);
    pthread_mutex_destroy(&e->grow_mu);
    pthread_mutex_destroy(&e->wal_mu);
    pthread_cond_destroy(&e->wal_cv);
    pthread_cond_destroy(&e->gather_cv);
    pthread_cond_destroy(&e->grow_cv);
    pthread_mutex_destroy(&e->mu);
    free(e->dir);
    free(e);
    return rc;
}

/* DIR/DATAFILES holds the paths as given: relative ones are stored
 * relative to the engine's directory again. */
static const char *given_path(const disk_env *e, const char *full)
{
    size_t n = strlen(e->dir);
    if (strncmp(full, e->dir, n) == 0 && full[n] == '/')
        return full + n + 1;
    return full;
}

int disk_add_file(disk_env *e, const char *path)
{
    if (e->opt.read_only || !path || !*path || strchr(path, '\n'))
        return NB_EUSAGE;
    pthread_mutex_lock(&e->ckpt_mu);
    pthread_mutex_lock(&e->grow_mu);
    unsigned i = e->n_files;
    disk__file *f = &e->files[i];
    char *full = path[0] == '/' ? nb_xstrdup(path) : nb_xasprintf("%s/%s", e->dir, path);
    int rc = i + 1 > DISK_MAX_FILES ? NB_EUSAGE : 0;
    for (unsigned j = 0; j < i && !rc; j++)
        if (strcmp(full, e->files[j].path) == 0)
            rc = NB_EUSAGE;
    int fixed = is_blockdev(e, full), fd = -1;
    if (!rc && !fixed && e->io->open(e->ioctx, full, DISK_O_RDONLY, &fd) == 0) {
        /* Never truncate a file we did not make (also a stray one left by
         * an add cut short: remove it and add again). */
        e->io->close(e->ioctx, fd);
        fd = -1;
        NB_ERROR("disk %s: %s exists; a data file to add must not", e->dir, full);
        rc = NB_EUSAGE;
    }
    uint64_t size = 0;
    if (!rc) {
        rc = e->io->open(e->ioctx, full, fixed ? 0 : DISK_O_CREAT | DISK_O_TRUNC, &fd);
        if (rc)
            NB_ERROR("disk %s: cannot create %s: %s", e->dir, full, nb_strerror(rc));
    }
    if (!rc && fixed) {
        rc = e->io->size(e->ioctx, fd, &size);
        size = size / e->au * e->au;
        if (!rc && size < 2ull * e->au)
            rc = NB_EUSAGE;
    } else if (!rc) {
        /* One growth step, within what the capacity leaves. */
        size = e->opt.initial_size ? e->opt.initial_size : DISK__GROW_MIN;
        if (e->opt.capacity) {
            uint64_t cap = e->opt.capacity / e->au * e->au, used = 0;
            for (unsigned j = 0; j < i; j++)
                used += e->files[j].size;
            uint64_t room = cap > used ? cap - used : 0;
            if (size > room)
                size = room;
        }
        size = size / e->au * e->au;
        if (size < 2ull * e->au) {
            NB_ERROR("disk %s: the capacity leaves no room for another file (raise it first)",
                     e->dir);
            rc = NB_ENOSPACE;
        }
        if (!rc)
            rc = e->io->resize(e->ioctx, fd, size);
        if (!rc && e->opt.prefill)
            rc = disk__write_zeros(e, fd, e->au, size);
    }
    if (!rc) {
        uint8_t *sb = nb_xaligned_alloc(4096, e->au);
        super_encode(e, sb, i, i + 1, size);
        rc = e->io->pwrite(e->ioctx, fd, sb, e->au, 0);
        free(sb);
    }
    if (!rc)
        rc = disk__sync(e, fd);
    if (fd >= 0)
        e->io->close(e->ioctx, fd);
    if (!rc && !fixed)
        rc = e->io->sync_dir(e->ioctx, e->dir);
    if (!rc) {
        /* The commit point: once DATAFILES names the file, every open
         * expects it; before, it is a stray file nothing refers to. */
        char *text = nb_xstrdup("");
        for (unsigned j = 0; j <= i; j++) {
            char *t = nb_xasprintf("%s%s\n", text, j < i ? given_path(e, e->files[j].path) : path);
            free(text);
            text = t;
        }
        rc = meta_write(e, DISK_FILES_FILE, text);
        free(text);
    }
    if (!rc) {
        f->path = full;
        full = NULL;
        f->fd = f->ref_fd = -1;
        ckpt_info c = {.au = e->au, .data_size = e->files[0].size};
        memcpy(c.uuid, e->uuid, 16);
        rc = open_file(e, i, &c, e->direct);
        if (!rc) {
            pthread_mutex_lock(&e->mu);
            disk__alloc_init(&f->alloc, f->size / e->au - 1);
            __atomic_store_n(&e->n_files, i + 1, __ATOMIC_RELEASE);
            e->grow_gen++;
            pthread_mutex_unlock(&e->mu);
            NB_INFO("disk %s: added data file %s (%llu bytes)", e->dir, f->path,
                    (unsigned long long)f->size);
        } else {
            /* Listed but not usable now: the next open reports it. */
            NB_ERROR("disk %s: cannot open the added %s: %s", e->dir, f->path, nb_strerror(rc));
            if (f->ref_fd >= 0 && f->ref_fd != f->fd)
                e->io->close(e->ioctx, f->ref_fd);
            if (f->fd >= 0)
                e->io->close(e->ioctx, f->fd);
            f->fd = f->ref_fd = -1;
            free(f->path); /* not counted in n_files: disk_close would not free it */
            f->path = NULL;
        }
    }
    if (rc && full) {
        if (!fixed && fd >= 0)
            e->io->unlink(e->ioctx, full);
        free(full);
    }
    pthread_mutex_unlock(&e->grow_mu);
    pthread_mutex_unlock(&e->ckpt_mu);
    return rc;
}
