/*
 * gw_get.c — GET bodies: how the bytes of an object reach the socket.
 *
 *   inline in metadata ─► sent from the snapshot's bytes (held until MHD
 *                         is done), header and body in one call
 *   ≤ GW_SMALL_BODY ───► read into one buffer: MHD writes header and body
 *                         with one call
 *   one file range ────► sendfile from the block store's descriptor
 *   already checked       (MHD_create_response_from_fd_at_offset64 on a
 *                         dup of it; the pieces stay held by the request
 *                         until MHD has finished with them): one block
 *                         piece of the dir store
 *   other pieces ──────► the pieces mapped, checked on the mapping (disk
 *                         store) and sent from it as one I/O vector
 *                         (holes point at a page of zeros)
 *   cold, > one block ──► copied from the snapshot as MHD sends: each
 *                         block goes out once verified while the next
 *                         ones load (zero-copy pieces would verify them
 *                         all before the first byte)
 *   otherwise ─────────► the copying stream through vfs_read
 *
 * The current object's bytes come from the metadata snapshot its GET was
 * answered from (gw_get_obj_body: chunk 0's map, no open file); versions,
 * objects over one chunk and files with unpublished writes open the file
 * (gw_get_body).
 *
 * Every piece is verified when it is handed out (dir: the CRCs of the
 * 64 KiB segments it covers, docs/data.md) or, for the disk store, on the
 * mapping it is sent from just before the answer is queued
 * (vfs_refs_check): a corrupt block is an InternalError before the status
 * line is sent, or a connection closed without an answer (a mapped
 * piece), never a wrong body;
 * in a cold answer, a corrupt block after the first ends the body short
 * of its length before any of its bytes (the connection is closed).
 * Each answer counts its path (s3_gw_get_count, /metrics).
 */
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "s3/gw_int.h"

/* Bodies up to this size are read into memory and sent with the header. */
#define GW_SMALL_BODY (64u << 10)

/* Answers over more than one block may stream when cold (one block's
 * check is all a zero-copy answer waits for there). */
#define GW_COLD_MIN (4u << 20)

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22 /* Linux 5.14 */
#endif

/* Holes in mapped answers point here (read-only, shared by all). */
static const uint8_t zeros[64 << 10];

/* ---- setting the body up ----------------------------------------------------------------- */

static int read_all(vfs_file *f, uint64_t off, uint8_t *buf, size_t len)
{
    size_t done = 0;
    while (done < len) {
        size_t got = 0;
        int rc = vfs_read(f, off + done, buf + done, len - done, &got);
        if (rc != 0)
            return rc;
        if (got == 0)
            return S3_ERR_INTERNAL_ERROR; /* the file shrank under us */
        done += got;
    }
    return 0;
}

int gw_get_body(s3_gw_req *r, gw_answer *a, uint64_t ino, uint64_t off, uint64_t len)
{
    vfs_file *f = NULL;
    int rc = vfs_file_open(r->g->ns, NULL, ino, O_RDONLY, &f);
    if (rc == -ENOENT)
        return S3_ERR_NO_SUCH_KEY;
    if (rc != 0)
        return rc;
    a->file_len = len;
    if (len <= GW_SMALL_BODY) {
        a->raw = nb_xmalloc(len);
        rc = read_all(f, off, a->raw, (size_t)len);
        (void)vfs_release(f);
        return rc;
    }
    if (len > GW_COLD_MIN && vfs_s3_file_cold(f, off, len)) {
        /* As gw_get_obj_body's cold answer: stream through the file's
         * sequential reads (its readahead loads and verifies the blocks
         * ahead), the first piece read now so a bad first block is still
         * an error answer. Zero-copy pieces would verify the whole range,
         * every chunk of it, before the first byte. */
        size_t pre = GW_IO_BLOCK;
        uint8_t *buf = nb_xmalloc(pre);
        rc = read_all(f, off, buf, pre);
        if (rc != 0) {
            free(buf);
            (void)vfs_release(f);
            return rc;
        }
        a->raw = buf;
        a->pre_len = pre;
        a->file = f;
        a->file_off = off;
        return 0;
    }
    vfs_refs *refs = NULL;
    rc = vfs_read_refs(f, off, len, &refs);
    uint64_t total = 0;
    if (rc == 0) {
        size_t n;
        const vfs_piece *p = vfs_refs_pieces(refs, &n);
        for (size_t i = 0; i < n; i++)
            total += p[i].len;
    }
    if (rc == 0 && total == len) {
        a->refs = refs;
        (void)vfs_release(f);
        return 0;
    }
    vfs_refs_free(refs);
    if (rc == -EIO) { /* a block failed its checks (logged below us) */
        (void)vfs_release(f);
        return rc;
    }
    /* No descriptors from this block store (or the file changed size
     * meanwhile): the copying stream decides. */
    a->file = f;
    a->file_off = off;
    return 0;
}

int gw_get_obj_body(gw_answer *a, vfs_s3_obj **op, uint64_t off, uint64_t len)
{
    vfs_s3_obj *o = *op;
    a->file_len = len;
    const uint8_t *inl = len <= GW_SMALL_BODY ? vfs_s3_obj_inline(o, off, len) : NULL;
    if (inl) {
        /* Inline in metadata (a small PUT): sent from the snapshot's
         * bytes, which the answer holds until MHD has sent them. */
        a->inl = inl;
        a->inl_obj = o;
        *op = NULL;
        return 0;
    }
    if (len <= GW_SMALL_BODY) {
        uint8_t *buf = nb_xmalloc(len ? len : 1);
        int rc = vfs_s3_obj_read(o, off, buf, (size_t)len);
        if (rc != 0) {
            free(buf);
            return rc;
        }
        a->raw = buf;
        return 0;
    }
    if (len > GW_COLD_MIN && vfs_s3_obj_cold(o, off, len)) {
        /* Zero-copy pieces would verify every block before the first byte
         * goes out: stream instead, each block sent once verified while
         * the next ones load (docs/s3.md, "Cold GETs"). The first piece is
         * read now, so a bad first block is still an error answer. */
        size_t pre = len < GW_IO_BLOCK ? (size_t)len : GW_IO_BLOCK;
        uint8_t *buf = nb_xmalloc(pre);
        int rc = vfs_s3_obj_stream(o, off, buf, pre);
        if (rc != 0) {
            free(buf);
            return rc;
        }
        a->raw = buf;
        a->pre_len = pre;
        a->obj = o;
        a->file_off = off;
        *op = NULL;
        return 0;
    }
    vfs_refs *refs = NULL;
    int rc = vfs_s3_obj_refs(o, off, len, &refs);
    if (rc == 0)
        a->refs = refs;
    return rc;
}

/* ---- responses ----------------------------------------------------------------------------- */

typedef struct gw_stream {
    vfs_file *f;
    uint64_t off;
} gw_stream;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    gw_stream *s = cls;
    size_t got = 0;
    int rc = vfs_read(s->f, s->off + pos, buf, max, &got);
    if (rc != 0) {
        NB_WARN("s3: read of inode %llu at %llu failed: %s", (unsigned long long)vfs_file_ino(s->f),
                (unsigned long long)(s->off + pos), nb_strerror(rc));
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    if (got == 0)
        return MHD_CONTENT_READER_END_WITH_ERROR; /* the file shrank under us */
    return (ssize_t)got;
}

static void stream_free(void *cls)
{
    gw_stream *s = cls;
    (void)vfs_release(s->f);
    free(s);
}

/* A cold answer from the snapshot: the first piece was read when the
 * answer was set up, the rest is read as MHD sends, with the blocks ahead
 * loading and verifying in the background (the snapshot's readahead). */
typedef struct gw_cold {
    vfs_s3_obj *o; /* the snapshot's stream, or */
    vfs_file *f;   /* an open file's sequential reads */
    uint64_t off, len;
    uint8_t *pre;
    size_t pre_len;
} gw_cold;

static ssize_t cold_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    gw_cold *c = cls;
    if (pos < c->pre_len) {
        size_t n = c->pre_len - (size_t)pos < max ? c->pre_len - (size_t)pos : max;
        memcpy(buf, c->pre + pos, n);
        return (ssize_t)n;
    }
    uint64_t left = c->len > pos ? c->len - pos : 0;
    size_t n = left < max ? (size_t)left : max;
    if (n == 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    int rc;
    if (c->o) {
        rc = vfs_s3_obj_stream(c->o, c->off + pos, buf, n);
    } else {
        size_t got = 0;
        rc = vfs_read(c->f, c->off + pos, buf, n, &got);
        if (rc == 0 && got == 0)
            rc = S3_ERR_INTERNAL_ERROR; /* the file shrank under us */
        n = got;
    }
    if (rc != 0) {
        /* The status line is out: the connection is closed short of the
         * length, so the client sees a failed body, never wrong bytes. */
        NB_WARN("s3: read of inode %llu at %llu failed: %s",
                (unsigned long long)(c->o ? vfs_s3_obj_attr(c->o)->ino : vfs_file_ino(c->f)),
                (unsigned long long)(c->off + pos), nb_strerror(rc));
        return MHD_CONTENT_READER_END_WITH_ERROR;
    }
    return (ssize_t)n;
}

static void cold_free(void *cls)
{
    gw_cold *c = cls;
    vfs_s3_obj_free(c->o);
    if (c->f)
        (void)vfs_release(c->f);
    free(c->pre);
    free(c);
}

/* ---- lasting windows of large files -------------------------------------------------------- */

/* The disk engine keeps blobs in a few large data files: pieces of those
 * are sent from windows mapped once and kept for the gateway's life,
 * instead of an mmap, MADV_POPULATE_READ and munmap per piece per answer
 * (about a fifth of the server's CPU in warm 64 MiB GETs, perf: page-table
 * fills and teardowns, TLB shootdowns). A window maps GW_WIN_SPAN bytes
 * from a multiple of GW_WIN, so a piece of at most one block that starts
 * in it ends in it. A window may reach past the end of the file: only
 * pinned pieces, inside it, are read. Files of at most GW_WIN_MIN_FILE
 * (the dir store's block files) are mapped per answer. */
#define GW_WIN          (1ull << 30)
#define GW_WIN_SPAN     (GW_WIN + (64ull << 20))
#define GW_WIN_MIN_FILE (16ull << 20)

static uint8_t *win_find(s3_gw *g, uint64_t dev, uint64_t ino, uint64_t start)
{
    size_t n = atomic_load_explicit(&g->nwins, memory_order_acquire);
    for (size_t i = 0; i < n; i++)
        if (g->wins[i].ino == ino && g->wins[i].start == start && g->wins[i].dev == dev)
            return g->wins[i].p;
    return NULL;
}

/* Where the piece's bytes lie in a lasting window, or NULL (map it for
 * this answer). *base and *base_off: the window and the file offset it
 * maps. */
static const uint8_t *win_piece(s3_gw *g, const vfs_piece *pc, const uint8_t **base,
                                uint64_t *base_off)
{
    struct stat st;
    if (pc->len > GW_WIN_SPAN - GW_WIN || fstat(pc->fd, &st) != 0 || !S_ISREG(st.st_mode) ||
        (uint64_t)st.st_size <= GW_WIN_MIN_FILE)
        return NULL;
    uint64_t start = pc->off & ~(GW_WIN - 1);
    uint8_t *p = win_find(g, (uint64_t)st.st_dev, (uint64_t)st.st_ino, start);
    if (!p) {
        pthread_mutex_lock(&g->wins_mu);
        p = win_find(g, (uint64_t)st.st_dev, (uint64_t)st.st_ino, start);
        size_t n = atomic_load_explicit(&g->nwins, memory_order_relaxed);
        if (!p && n < GW_WINS_MAX) {
            void *q = mmap(NULL, GW_WIN_SPAN, PROT_READ, MAP_SHARED, pc->fd, (off_t)start);
            if (q != MAP_FAILED) {
                g->wins[n] = (gw_win){(uint64_t)st.st_dev, (uint64_t)st.st_ino, start, q};
                atomic_store_explicit(&g->nwins, n + 1, memory_order_release);
                p = q;
            }
        }
        pthread_mutex_unlock(&g->wins_mu);
        if (!p)
            return NULL;
    }
    *base = p;
    *base_off = start;
    return p + (pc->off - start);
}

void gw_get_wins_free(s3_gw *g)
{
    size_t n = atomic_load(&g->nwins);
    for (size_t i = 0; i < n; i++)
        munmap(g->wins[i].p, GW_WIN_SPAN);
    atomic_store(&g->nwins, 0);
}

/* A mapped answer: the mappings and the pieces they map. */
typedef struct gw_mapped {
    vfs_refs *refs;
    size_t n;
    struct {
        void *p;
        size_t len;
    } maps[];
} gw_mapped;

static void mapped_free(void *cls)
{
    gw_mapped *m = cls;
    for (size_t i = 0; i < m->n; i++)
        if (m->maps[i].p)
            munmap(m->maps[i].p, m->maps[i].len);
    vfs_refs_free(m->refs);
    free(m);
}

static struct MHD_Response *mapped_response(s3_gw *g, gw_answer *a)
{
    size_t n;
    const vfs_piece *p = vfs_refs_pieces(a->refs, &n);
    size_t niov = 0;
    for (size_t i = 0; i < n; i++)
        niov += p[i].fd >= 0 ? 1 : (p[i].len + sizeof zeros - 1) / sizeof zeros;
    gw_mapped *m = nb_xcalloc(1, sizeof *m + n * sizeof m->maps[0]);
    struct MHD_IoVec *iov = nb_xmalloc(niov * sizeof *iov);
    size_t k = 0;
    uint64_t page = (uint64_t)sysconf(_SC_PAGESIZE);
    bool ok = true;
    for (size_t i = 0; ok && i < n; i++) {
        if (p[i].fd < 0) {
            for (size_t left = p[i].len; left > 0;) {
                size_t l = left < sizeof zeros ? left : sizeof zeros;
                iov[k++] = (struct MHD_IoVec){zeros, l};
                left -= l;
            }
            continue;
        }
        /* A piece the block store did not check (disk) is checked here,
         * on the mapping it is then sent from: the CRCs of the segments
         * it touches, [lo, hi) of the data file. */
        uint64_t lo = p[i].off, hi = p[i].off + p[i].len;
        bool check = vfs_refs_check_span(a->refs, i, &lo, &hi);
        const uint8_t *base = NULL;
        uint64_t base_off = 0;
        const uint8_t *w = win_piece(g, &p[i], &base, &base_off);
        if (w && (!check || (lo >= base_off && hi <= base_off + GW_WIN_SPAN))) {
            if (check && vfs_refs_check(a->refs, i, base, base_off, GW_WIN_SPAN) != 0) {
                ok = false;
                break;
            }
            iov[k++] = (struct MHD_IoVec){w, p[i].len};
            continue;
        }
        if (lo > p[i].off)
            lo = p[i].off;
        if (hi < p[i].off + p[i].len)
            hi = p[i].off + p[i].len;
        uint64_t start = lo & ~(page - 1);
        size_t mlen = (size_t)(hi - start);
        void *q = mmap(NULL, mlen, PROT_READ, MAP_SHARED, p[i].fd, (off_t)start);
        if (q == MAP_FAILED) {
            ok = false;
            break;
        }
        /* The pages are mapped in one go, not fault by fault (where the
         * kernel lacks MADV_POPULATE_READ the check or the send faults
         * them in). */
        (void)madvise(q, mlen, MADV_POPULATE_READ);
        m->maps[i].p = q;
        m->maps[i].len = mlen;
        if (check && vfs_refs_check(a->refs, i, q, start, mlen) != 0) {
            ok = false;
            break;
        }
        iov[k++] = (struct MHD_IoVec){(uint8_t *)q + (p[i].off - start), p[i].len};
    }
    m->n = n;
    struct MHD_Response *resp =
        ok ? MHD_create_response_from_iovec(iov, (unsigned)k, mapped_free, m) : NULL;
    free(iov);
    if (!resp) {
        m->refs = NULL; /* the answer still owns them */
        mapped_free(m);
        return NULL;
    }
    m->refs = a->refs;
    a->refs = NULL;
    return resp;
}

const char *s3_get_path_name(s3_get_path p)
{
    static const char *const names[S3_GET_NPATHS] = {"memory", "sendfile", "mapped", "stream",
                                                     "cold"};
    return p < S3_GET_NPATHS ? names[p] : "?";
}

uint64_t s3_gw_get_count(s3_gw *g, s3_get_path p)
{
    return p < S3_GET_NPATHS ? atomic_load_explicit(&g->get_paths[p], memory_order_relaxed) : 0;
}

static void count_path(s3_gw_req *r, s3_get_path p)
{
    atomic_fetch_add_explicit(&r->g->get_paths[p], 1, memory_order_relaxed);
}

/* The pieces as one range of one file, when they are: blocks the disk
 * engine placed end to end in a data file (its allocator hands out large
 * extents in order), or a single piece. */
static bool one_range(const vfs_piece *p, size_t n, int *fd, uint64_t *off, uint64_t *len)
{
    if (n == 0 || p[0].fd < 0)
        return false;
    uint64_t end = p[0].off + p[0].len;
    for (size_t i = 1; i < n; i++) {
        if (p[i].fd != p[0].fd || p[i].off != end)
            return false;
        end += p[i].len;
    }
    *fd = p[0].fd;
    *off = p[0].off;
    *len = end - p[0].off;
    return true;
}

static void inl_free(void *cls)
{
    vfs_s3_obj_free(cls);
}

struct MHD_Response *gw_body_response(s3_gw_req *r, gw_answer *a)
{
    struct MHD_Response *resp = NULL;
    if (a->obj || (a->file && a->raw)) {
        gw_cold *c = nb_xmalloc(sizeof *c);
        *c = (gw_cold){a->obj,    a->obj ? NULL : a->file, a->file_off, a->file_len, a->raw,
                       a->pre_len};
        resp = MHD_create_response_from_callback(a->file_len, GW_IO_BLOCK, cold_read, c, cold_free);
        if (!resp) {
            free(c); /* the answer keeps what it owned */
            return NULL;
        }
        if (!a->obj)
            a->file = NULL;
        a->obj = NULL;
        a->raw = NULL;
        count_path(r, S3_GET_COLD);
        return resp;
    }
    if (a->inl) {
        resp = MHD_create_response_from_buffer_with_free_callback_cls(
            (size_t)a->file_len, (void *)a->inl, inl_free, a->inl_obj);
        if (resp) {
            a->inl = NULL;
            a->inl_obj = NULL;
            count_path(r, S3_GET_MEMORY);
        }
        return resp;
    }
    if (a->raw) {
        resp = MHD_create_response_from_buffer((size_t)a->file_len, a->raw, MHD_RESPMEM_MUST_FREE);
        if (resp) {
            a->raw = NULL;
            count_path(r, S3_GET_MEMORY);
        }
        return resp;
    }
    if (a->refs) {
        size_t n;
        const vfs_piece *p = vfs_refs_pieces(a->refs, &n);
        int src;
        uint64_t off, len;
        uint64_t lo, hi;
        bool check = false;
        for (size_t i = 0; !check && i < n; i++)
            check = vfs_refs_check_span(a->refs, i, &lo, &hi);
        /* sendfile only for pieces the block store checked: the others
         * are checked on the mapping they are sent from. */
        if (!check && one_range(p, n, &src, &off, &len)) {
            /* MHD closes the descriptor it is given; the blocks stay held
             * by the request until MHD has sent them. */
            int fd = fcntl(src, F_DUPFD_CLOEXEC, 0);
            if (fd >= 0) {
                resp = MHD_create_response_from_fd_at_offset64(len, fd, (int64_t)off);
                if (!resp)
                    close(fd);
            }
            if (resp) {
                vfs_refs_free(r->sent_refs);
                r->sent_refs = a->refs;
                a->refs = NULL;
                count_path(r, S3_GET_SENDFILE);
            }
            return resp;
        }
        resp = mapped_response(r->g, a);
        if (resp)
            count_path(r, S3_GET_MAPPED);
        return resp;
    }
    gw_stream *s = nb_xmalloc(sizeof *s);
    s->f = a->file;
    s->off = a->file_off;
    a->file = NULL;
    /* MHD allocates (and clears) a buffer of the block size per response:
     * no bigger than the body. */
    size_t block = a->file_len < GW_IO_BLOCK ? (size_t)a->file_len : GW_IO_BLOCK;
    resp = MHD_create_response_from_callback(a->file_len, block < 4096 ? 4096 : block, stream_read,
                                             s, stream_free);
    if (!resp)
        stream_free(s);
    else
        count_path(r, S3_GET_STREAM);
    return resp;
}
