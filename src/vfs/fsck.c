/*
 * fsck.c — `nebula fsck DIR`: an offline check of a namespace through the
 * public meta and data APIs.
 *
 *   1. Walks the tree from the root: every dentry names an inode that
 *      exists with the dentry's type; a directory's parent pointer names
 *      the directory it is in.
 *   2. Link counts: a non-directory's nlink equals the dentries naming it,
 *      a directory's is 2 + its subdirectories.
 *   3. Chunk maps: every slice a map references has all its blocks, each
 *      of the length the slice's size implies; maps of unreachable inodes
 *      are orphans.
 *   4. Usage counters: inodes and bytes used against what the walk found.
 *   5. Blocks that no map references: crash leftovers (writes never
 *      published). Not an error — the collector frees them — but counted;
 *      with repair they are freed at once.
 *
 * It starts with meta_check (the raw records: dentry twins, link counts,
 * parents, cookies, orphans, map shapes, ids, usage counters). Repair
 * fixes what is safe without guessing: meta_check's repairs, garbage
 * slices released and unreferenced blocks freed. Missing blocks are
 * reported for a person.
 */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "vfs/vfs_int.h"

/* An open-addressing map from inode number to what the walk saw. */
typedef struct iseen {
    uint64_t ino; /* 0: empty */
    uint32_t links;
    uint32_t subdirs;
    uint32_t nlink;
    uint32_t mode;
    uint64_t size;
} iseen;

typedef struct imap {
    iseen *t;
    size_t cap, n;
} imap;

static iseen *imap_get(imap *m, uint64_t ino, bool add)
{
    if (add && (m->n + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 1024;
        iseen *nt = nb_xcalloc(ncap, sizeof(*nt));
        for (size_t i = 0; i < m->cap; i++) {
            if (!m->t[i].ino)
                continue;
            size_t j = (size_t)(m->t[i].ino * 0x9E3779B97F4A7C15ull) & (ncap - 1);
            while (nt[j].ino)
                j = (j + 1) & (ncap - 1);
            nt[j] = m->t[i];
        }
        free(m->t);
        m->t = nt;
        m->cap = ncap;
    }
    if (!m->cap)
        return NULL;
    size_t j = (size_t)(ino * 0x9E3779B97F4A7C15ull) & (m->cap - 1);
    while (m->t[j].ino && m->t[j].ino != ino)
        j = (j + 1) & (m->cap - 1);
    if (m->t[j].ino == ino)
        return &m->t[j];
    if (!add)
        return NULL;
    m->t[j].ino = ino;
    m->n++;
    return &m->t[j];
}

typedef struct fsck {
    meta *m;
    data_store *ds;
    FILE *out;
    uint64_t problems, leftovers;
    imap seen;
    imap slices; /* slice ids already checked (ino field = id) */
    uint64_t *queue;
    size_t qn, qcap;
    uint64_t cur_dir;
    int err;
} fsck;

NB_PRINTF(2, 3) static void problem(fsck *f, const char *fmt, ...)
{
    f->problems++;
    if (!f->out)
        return;
    va_list ap;
    va_start(ap, fmt);
    fputs("fsck: ", f->out);
    vfprintf(f->out, fmt, ap);
    fputc('\n', f->out);
    va_end(ap);
}

static void check_log(void *arg, const char *msg)
{
    fsck *f = arg;
    if (f->out)
        fprintf(f->out, "fsck: meta: %s\n", msg);
}

static int dirent_cb(void *arg, const meta_dirent *e)
{
    fsck *f = arg;
    if (!e->attr) {
        problem(f, "dentry %llu/%s names missing inode %llu", (unsigned long long)f->cur_dir,
                e->name, (unsigned long long)e->ino);
        return 0;
    }
    const meta_attr *a = e->attr;
    if ((a->mode & S_IFMT) != e->type)
        problem(f, "dentry %llu/%s: type %o but inode %llu has mode %o",
                (unsigned long long)f->cur_dir, e->name, e->type, (unsigned long long)e->ino,
                a->mode);
    iseen *s = imap_get(&f->seen, e->ino, true);
    bool first = s->links == 0 && s->mode == 0;
    s->links++;
    s->nlink = a->nlink;
    s->mode = a->mode;
    s->size = a->size;
    if (S_ISDIR(a->mode)) {
        iseen *p = imap_get(&f->seen, f->cur_dir, false);
        if (p)
            p->subdirs++;
        if (a->parent != f->cur_dir)
            problem(f, "directory %llu is in %llu but its parent says %llu",
                    (unsigned long long)e->ino, (unsigned long long)f->cur_dir,
                    (unsigned long long)a->parent);
        if (!first) {
            problem(f, "directory %llu has more than one name", (unsigned long long)e->ino);
            return 0;
        }
        if (f->qn == f->qcap) {
            f->qcap = f->qcap ? f->qcap * 2 : 64;
            f->queue = nb_xrealloc(f->queue, f->qcap * sizeof(*f->queue));
        }
        f->queue[f->qn++] = e->ino;
    }
    return 0;
}

/* Object versions kept by version records (docs/vfs.md "Versions"): each
 * record is one link of its inode, as a dentry is. */
static int version_cb(void *arg, const meta_version *ver)
{
    fsck *f = arg;
    if (!ver->ino)
        return 0;
    meta_attr a;
    int rc = meta_getattr(f->m, ver->ino, &a);
    if (rc != 0) {
        problem(f, "version %s of %s names missing inode %llu", ver->version_id, ver->key,
                (unsigned long long)ver->ino);
        return 0;
    }
    iseen *s = imap_get(&f->seen, ver->ino, true);
    s->links++;
    s->nlink = a.nlink;
    s->mode = a.mode;
    s->size = a.size;
    return 0;
}

static int bucket_versions_cb(void *arg, const meta_dirent *e)
{
    fsck *f = arg;
    if (e->type != S_IFDIR)
        return 0;
    f->err = meta_version_list(f->m, e->ino, NULL, 0, version_cb, f);
    return f->err != 0;
}

static int slice_cb(void *arg, uint64_t ino, uint32_t chunk, const meta_slice *s)
{
    fsck *f = arg;
    iseen *in = ino ? imap_get(&f->seen, ino, false) : NULL;
    if (ino && (!in || in->links == 0)) { /* ino 0: a multipart part's slice */
        problem(f, "inode %llu is not reachable but has chunk %u (orphan)", (unsigned long long)ino,
                chunk);
    }
    if (s->id == 0)
        return 0;
    if ((uint64_t)s->off + s->len > s->size ||
        (ino && (uint64_t)s->pos + s->len > META_CHUNK_SIZE)) {
        problem(f, "inode %llu chunk %u: slice %llu piece out of range", (unsigned long long)ino,
                chunk, (unsigned long long)s->id);
        return 0;
    }
    if (imap_get(&f->slices, s->id, false))
        return 0;
    imap_get(&f->slices, s->id, true);
    uint32_t nb = data_slice_blocks(s->size);
    for (uint32_t b = 0; b < nb; b++) {
        data_key k = {.slice_id = s->id, .block = b};
        size_t len = 0;
        int rc = data_bs_stat(data_store_bs(f->ds), k, &len);
        uint64_t want = s->size - (uint64_t)b * META_BLOCK_SIZE;
        if (want > META_BLOCK_SIZE)
            want = META_BLOCK_SIZE;
        if (rc == NB_ENOTFOUND)
            problem(f, "inode %llu chunk %u: block %llu.%u is missing", (unsigned long long)ino,
                    chunk, (unsigned long long)s->id, b);
        else if (rc != 0)
            return rc;
        else if (len != want)
            problem(f, "inode %llu chunk %u: block %llu.%u has %zu bytes, want %llu",
                    (unsigned long long)ino, chunk, (unsigned long long)s->id, b, len,
                    (unsigned long long)want);
    }
    return 0;
}

static int block_cb(void *arg, const data_bs_entry *e)
{
    fsck *f = arg;
    if (!imap_get(&f->slices, e->key.slice_id, false))
        f->leftovers++;
    return 0;
}

int vfs_fsck(const char *data_dir, bool repair, FILE *report)
{
    vfs_options o;
    vfs_options_init(&o);
    o.data_dir = data_dir;
    fsck f;
    memset(&f, 0, sizeof(f));
    f.out = report;
    int rc = vfs__open_stores(&o, &f.m, &f.ds);
    if (rc != 0)
        return rc;
    /* First meta's own check of the raw records (dentry twins, link
     * counts, parents, cookies, orphans, chunk map shapes, ids, usage);
     * with repair it fixes what is safe. Then the walk below checks the
     * same through the public API plus what meta cannot see: blocks. */
    meta_check_report mr;
    memset(&mr, 0, sizeof(mr));
    rc = meta_check(f.m, repair ? META_CHECK_REPAIR : 0, check_log, &f, &mr);
    if (rc == 0 && mr.problems > mr.repaired)
        f.problems += mr.problems - mr.repaired;
    if (rc == 0 && report && mr.problems)
        fprintf(report, "fsck: meta: %llu problems, %llu repaired\n",
                (unsigned long long)mr.problems, (unsigned long long)mr.repaired);
    meta_attr root;
    if (rc == 0)
        rc = meta_getattr(f.m, VFS_ROOT_INO, &root);
    if (rc == 0) {
        iseen *r = imap_get(&f.seen, VFS_ROOT_INO, true);
        r->links = 1;
        r->nlink = root.nlink;
        r->mode = root.mode;
        f.queue = nb_xmalloc(64 * sizeof(*f.queue));
        f.qcap = 64;
        f.queue[f.qn++] = VFS_ROOT_INO;
    }
    for (size_t qi = 0; rc == 0 && qi < f.qn; qi++) {
        f.cur_dir = f.queue[qi];
        rc = meta_readdir(f.m, f.cur_dir, 0, META_READDIR_ATTRS, dirent_cb, &f);
    }
    if (rc == 0)
        rc = meta_readdir(f.m, VFS_ROOT_INO, 0, 0, bucket_versions_cb, &f);
    if (rc == 0)
        rc = f.err;
    /* Link counts and usage. */
    uint64_t inodes = 0, bytes = 0;
    for (size_t i = 0; rc == 0 && i < f.seen.cap; i++) {
        iseen *s = &f.seen.t[i];
        if (!s->ino)
            continue;
        inodes++;
        if (S_ISREG(s->mode))
            bytes += s->size;
        uint32_t want = S_ISDIR(s->mode) ? 2 + s->subdirs : s->links;
        if (s->nlink != want)
            problem(&f, "inode %llu has nlink %u, want %u", (unsigned long long)s->ino, s->nlink,
                    want);
    }
    if (rc == 0)
        rc = meta_slice_scan(f.m, slice_cb, &f);
    if (rc == 0) {
        meta_statfs st;
        meta_statfs_get(f.m, &st);
        if (st.inodes_used != inodes)
            problem(&f, "usage counter: %llu inodes used, the tree has %llu",
                    (unsigned long long)st.inodes_used, (unsigned long long)inodes);
        if (st.bytes_used != bytes)
            problem(&f, "usage counter: %llu bytes used, the tree has %llu",
                    (unsigned long long)st.bytes_used, (unsigned long long)bytes);
    }
    /* Garbage slices still listed are pending work, not damage. */
    meta_garbage g[64];
    size_t ng = 0;
    if (rc == 0)
        rc = meta_garbage_list(f.m, 0, g, NB_ARRAY_LEN(g), &ng);
    for (size_t i = 0; i < ng; i++)
        imap_get(&f.slices, g[i].id, true);
    if (rc == 0)
        rc = data_bs_iterate(data_store_bs(f.ds), block_cb, &f);
    if (rc == 0 && repair) {
        vfs v;
        memset(&v, 0, sizeof(v));
        v.m = f.m;
        v.ds = f.ds;
        v.collect_grace_ns = 1; /* offline: nothing is being written */
        pthread_mutex_init(&v.maint_mu, NULL);
        pthread_rwlock_init(&v.share_lk, NULL);
        vfs_maint_report r;
        rc = vfs_maintain(&v, &r);
        pthread_rwlock_destroy(&v.share_lk);
        pthread_mutex_destroy(&v.maint_mu);
        if (rc == 0 && report)
            fprintf(report, "fsck: repair: %llu garbage slices released, %llu blocks freed\n",
                    (unsigned long long)r.slices_released, (unsigned long long)r.blocks_freed);
    }
    if (report)
        fprintf(report,
                "fsck: %llu inodes, %llu bytes, %llu problems, %llu unreferenced blocks%s%s\n",
                (unsigned long long)inodes, (unsigned long long)bytes,
                (unsigned long long)f.problems, (unsigned long long)f.leftovers,
                rc != 0 ? ", check failed: " : "", rc != 0 ? nb_strerror(rc) : "");
    free(f.seen.t);
    free(f.slices.t);
    free(f.queue);
    meta_close(f.m);
    data_store_close(f.ds);
    if (rc != 0)
        return rc;
    return f.problems ? NB_ECORRUPT : 0;
}
