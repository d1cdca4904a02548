/*
 * repair.c — rebuild a database's MANIFEST from whatever can still be read.
 *
 *  1. Every WAL is replayed, skipping damaged records, into L0 tables.
 *  2. Every table is opened and scanned. An intact table is kept as is; a
 *     damaged one has its readable blocks copied into a new table and is
 *     renamed NNNNNN.sst.bad. A table whose index cannot be read is renamed
 *     aside entirely.
 *  3. A new MANIFEST lists every table at L0 (reads order L0 by sequence,
 *     so overlapping tables are fine), with the largest sequence seen;
 *     CURRENT is switched to it and old logs and MANIFESTs are removed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "nkv_db.h"

typedef struct scan {
    nkv_fmeta *f;
    nkv_mem *mem; /* salvage target */
    uint64_t max_seq;
} scan;

static void note_key(scan *s, nb_slice k)
{
    uint64_t seq = nkv__trailer(k) >> 8;
    nkv_fmeta *f = s->f;
    if (f->entries == 0 || nkv__icmp(k, nb_buf_slice(&f->smallest)) < 0) {
        nb_buf_reset(&f->smallest);
        NB_ASSERT(nb_buf_append(&f->smallest, k.ptr, k.len) == 0);
    }
    if (f->entries == 0 || nkv__icmp(k, nb_buf_slice(&f->largest)) > 0) {
        nb_buf_reset(&f->largest);
        NB_ASSERT(nb_buf_append(&f->largest, k.ptr, k.len) == 0);
    }
    if (f->entries == 0 || seq < f->smallest_seq)
        f->smallest_seq = seq;
    if (seq > f->largest_seq)
        f->largest_seq = seq;
    if (seq > s->max_seq)
        s->max_seq = seq;
    f->entries++;
}

static void salvage_fn(void *arg, nb_slice k, nb_slice v)
{
    scan *s = arg;
    uint64_t tr = nkv__trailer(k);
    nkv__mem_add(s->mem, tr >> 8, (int)(tr & 0xff), nkv__ukey(k), v);
    if ((tr >> 8) > s->max_seq)
        s->max_seq = tr >> 8;
}

static void move_aside(nkv_db *db, uint64_t num)
{
    char *from = nkv__path(db->dir, num, "sst");
    char *to = nb_xasprintf("%s.bad", from);
    db->env->rename(db->env->ctx, from, to);
    NB_WARN("nkv: repair moved damaged table %s aside to %s", from, to);
    free(from);
    free(to);
}

/* Scans table num; adds it (or its salvage) to e. */
static int repair_table(nkv_db *db, uint64_t num, nkv_edit *e, uint64_t *max_seq)
{
    char *path = nkv__path(db->dir, num, "sst");
    uint64_t size = 0;
    nkv_file *f = NULL;
    nkv_table *t = NULL;
    int rc = db->env->file_size(db->env->ctx, path, &size);
    if (!rc)
        rc = db->env->open_read(db->env->ctx, path, &f);
    if (!rc)
        rc = nkv__table_open(db->env, f, path, size, NULL, &t);
    free(path);
    if (rc) {
        move_aside(db, num);
        return 0;
    }
    scan s = {.f = nkv__fmeta_new()};
    s.f->num = num;
    s.f->size = size;
    nkv__it *it = nkv__table_iter(t, false, NULL, NULL, NULL);
    for (IT_FIRST(it); IT_VALID(it); IT_NEXT(it))
        note_key(&s, IT_KEY(it));
    int irc = IT_STATUS(it);
    IT_FREE(it);
    if (!irc) {
        if (s.f->entries)
            nkv__edit_add(e, 0, s.f);
        if (s.max_seq > *max_seq)
            *max_seq = s.max_seq;
        nkv__fmeta_unref(s.f);
        nkv__table_free(t);
        return 0;
    }
    nkv__fmeta_unref(s.f);
    /* Damaged: copy every readable block into a new table. */
    scan sv = {.mem = nkv__mem_new()};
    uint64_t bad = 0;
    nkv__table_salvage(t, salvage_fn, &sv, &bad);
    nkv__table_free(t);
    NB_WARN("nkv: repair salvaged %llu entries from table %llu (%llu bad blocks)",
            (unsigned long long)atomic_load(&sv.mem->entries), (unsigned long long)num,
            (unsigned long long)bad);
    rc = 0;
    if (atomic_load(&sv.mem->entries))
        rc = nkv__write_l0(db, sv.mem, NKV_MAX_SEQ, e);
    nkv__mem_unref(sv.mem);
    if (sv.max_seq > *max_seq)
        *max_seq = sv.max_seq;
    if (!rc)
        move_aside(db, num);
    return rc;
}

static int repair_log(nkv_db *db, uint64_t num, nkv_edit *e, uint64_t *max_seq)
{
    char *path = nkv__path(db->dir, num, "log");
    uint8_t *data;
    size_t len;
    int rc = nkv__env_read_all(db->env, path, &data, &len);
    if (rc) {
        free(path);
        return 0;
    }
    nkv_wal_reader r;
    nkv__wal_reader_init(&r, data, len, path);
    nkv_mem *m = nkv__mem_new();
    nb_slice rec;
    int got;
    while ((got = nkv__wal_read(&r, &rec)) != 0) {
        if (got < 0)
            continue;
        if (nkv__batch_iterate(rec.ptr, rec.len, NULL, NULL) != 0)
            continue;
        NB_ASSERT(nkv__batch_insert_mem(rec.ptr, rec.len, m) == 0);
        uint64_t seq = nb_get_u64le(rec.ptr);
        uint32_t count = nb_get_u32le(rec.ptr + 8);
        if (count && seq + count - 1 > *max_seq)
            *max_seq = seq + count - 1;
    }
    nkv__wal_reader_free(&r);
    free(data);
    rc = 0;
    if (atomic_load(&m->entries))
        rc = nkv__write_l0(db, m, NKV_MAX_SEQ, e);
    nkv__mem_unref(m);
    free(path);
    return rc;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int nkv_repair(const nkv_options *opts, const char *dir)
{
    nkv_db *db = nb_xcalloc(1, sizeof *db);
    if (opts)
        db->o = *opts;
    else
        nkv_options_init(&db->o);
    if (db->o.block_size < 256)
        db->o.block_size = 4096;
    db->env = db->o.env ? db->o.env : nkv_env_default();
    db->dir = nb_xstrdup(dir);
    pthread_mutex_init(&db->mu, NULL);
    nkv__vset_init(&db->vs, db->env, dir);
    char *lock = nb_xasprintf("%s/LOCK", dir);
    int token;
    int rc = db->env->lock(db->env->ctx, lock, &token);
    free(lock);
    if (rc)
        goto out;
    char **names;
    size_t n;
    rc = db->env->list_dir(db->env->ctx, dir, &names, &n);
    if (rc)
        goto unlock;
    uint64_t *logs = nb_xmalloc((n + 1) * sizeof *logs), *ssts = nb_xmalloc((n + 1) * 8);
    size_t nlogs = 0, nssts = 0;
    uint64_t maxnum = 1;
    for (size_t i = 0; i < n; i++) {
        uint64_t num;
        if ((num = nkv__parse_num(names[i], "log")) != 0)
            logs[nlogs++] = num;
        else if ((num = nkv__parse_num(names[i], "sst")) != 0)
            ssts[nssts++] = num;
        else if (!strncmp(names[i], "MANIFEST-", 9))
            num = strtoull(names[i] + 9, NULL, 10);
        if (num > maxnum)
            maxnum = num;
        free(names[i]);
    }
    free(names);
    qsort(logs, nlogs, 8, cmp_u64);
    db->vs.next_file = maxnum + 1;
    nkv_edit e;
    nkv__edit_init(&e);
    uint64_t max_seq = 0;
    for (size_t i = 0; i < nssts && !rc; i++)
        rc = repair_table(db, ssts[i], &e, &max_seq);
    for (size_t i = 0; i < nlogs && !rc; i++)
        rc = repair_log(db, logs[i], &e, &max_seq);
    if (!rc) {
        atomic_store(&db->vs.last_seq, max_seq);
        e.has_log = true;
        e.log_number = db->vs.next_file++; /* no WAL is live any more */
        rc = nkv__vset_apply(&db->vs, &e);
    }
    nkv__edit_free(&e);
    if (!rc) {
        for (size_t i = 0; i < nlogs; i++) {
            char *p = nkv__path(dir, logs[i], "log");
            db->env->unlink(db->env->ctx, p);
            free(p);
        }
        if (db->env->list_dir(db->env->ctx, dir, &names, &n) == 0) {
            for (size_t i = 0; i < n; i++) {
                if (!strncmp(names[i], "MANIFEST-", 9) &&
                    strtoull(names[i] + 9, NULL, 10) != db->vs.manifest_num) {
                    char *p = nb_xasprintf("%s/%s", dir, names[i]);
                    db->env->unlink(db->env->ctx, p);
                    free(p);
                }
                free(names[i]);
            }
            free(names);
        }
        NB_INFO("nkv: repaired %s: %zu tables, %zu logs, last sequence %llu", dir, nssts, nlogs,
                (unsigned long long)max_seq);
    }
    free(logs);
    free(ssts);
unlock:
    db->env->unlock(db->env->ctx, token);
out : {
    size_t nobs;
    free(nkv__vset_take_obsolete(&db->vs, &nobs));
}
    nkv__vset_free(&db->vs);
    pthread_mutex_destroy(&db->mu);
    free(db->dir);
    free(db);
    return rc;
}
