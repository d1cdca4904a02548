/*
 * fault_env.h — an nkv_env over the default one that remembers what was
 * synced (LevelDB's fault_injection_test): fault_drop_unsynced() truncates
 * every file to its last synced size and deletes files whose directory
 * entry was never synced, as a power loss would. It can also fail writes
 * with -ENOSPC, and go inactive (every write silently ignored, as after a
 * crash) so the database can be closed without flushing anything.
 */
#ifndef NKV_TEST_FAULT_ENV_H
#define NKV_TEST_FAULT_ENV_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/common.h"
#include "nkv/nkv.h"

typedef struct fault_entry {
    char *path;
    uint64_t size, synced;
    bool new_file; /* created since the last sync of its directory */
    struct fault_entry *next;
} fault_entry;

typedef struct fault_env {
    nkv_env env;
    const nkv_env *base;
    pthread_mutex_t mu;
    fault_entry *files;
    bool inactive;
    bool nospace;
    bool hold_tables;    /* fsyncs of .sst files wait (a slow flush) */
    pthread_cond_t held; /* signalled when hold_tables is cleared */
    uint64_t syncs;      /* file syncs while active */
} fault_env;

struct nkv_file;
typedef struct fault_file {
    struct nkv_file *inner;
    fault_env *fe;
    char *path;
} fault_file;

static fault_entry *fe_find(fault_env *fe, const char *path)
{
    for (fault_entry *e = fe->files; e; e = e->next)
        if (!strcmp(e->path, path))
            return e;
    return NULL;
}

static void fe_remove(fault_env *fe, const char *path)
{
    for (fault_entry **p = &fe->files; *p; p = &(*p)->next) {
        if (!strcmp((*p)->path, path)) {
            fault_entry *e = *p;
            *p = e->next;
            free(e->path);
            free(e);
            return;
        }
    }
}

static int fe_open_read(void *ctx, const char *path, nkv_file **out)
{
    fault_env *fe = ctx;
    nkv_file *inner;
    int rc = fe->base->open_read(fe->base->ctx, path, &inner);
    if (rc)
        return rc;
    fault_file *f = nb_xcalloc(1, sizeof *f);
    f->inner = inner;
    f->fe = fe;
    *out = (nkv_file *)f;
    return 0;
}

static int fe_open_write(void *ctx, const char *path, nkv_file **out)
{
    fault_env *fe = ctx;
    nkv_file *inner;
    int rc = fe->base->open_write(fe->base->ctx, path, &inner);
    if (rc)
        return rc;
    fault_file *f = nb_xcalloc(1, sizeof *f);
    f->inner = inner;
    f->fe = fe;
    f->path = nb_xstrdup(path);
    pthread_mutex_lock(&fe->mu);
    fault_entry *e = fe_find(fe, path);
    if (!e) {
        e = nb_xcalloc(1, sizeof *e);
        e->path = nb_xstrdup(path);
        e->next = fe->files;
        fe->files = e;
        e->new_file = true;
    }
    e->size = e->synced = 0;
    pthread_mutex_unlock(&fe->mu);
    *out = (nkv_file *)f;
    return 0;
}

static int fe_read_at(void *ctx, nkv_file *nf, uint64_t off, void *buf, size_t n, size_t *got)
{
    fault_env *fe = ctx;
    fault_file *f = (fault_file *)nf;
    return fe->base->read_at(fe->base->ctx, f->inner, off, buf, n, got);
}

static int fe_append(void *ctx, nkv_file *nf, const void *buf, size_t n)
{
    fault_env *fe = ctx;
    fault_file *f = (fault_file *)nf;
    pthread_mutex_lock(&fe->mu);
    bool inactive = fe->inactive, nospace = fe->nospace;
    pthread_mutex_unlock(&fe->mu);
    if (inactive)
        return 0;
    if (nospace)
        return -ENOSPC;
    int rc = fe->base->append(fe->base->ctx, f->inner, buf, n);
    if (!rc) {
        pthread_mutex_lock(&fe->mu);
        fault_entry *e = fe_find(fe, f->path);
        if (e)
            e->size += n;
        pthread_mutex_unlock(&fe->mu);
    }
    return rc;
}

static int fe_sync(void *ctx, nkv_file *nf)
{
    fault_env *fe = ctx;
    fault_file *f = (fault_file *)nf;
    pthread_mutex_lock(&fe->mu);
    size_t pl = strlen(f->path);
    while (fe->hold_tables && pl > 4 && !strcmp(f->path + pl - 4, ".sst"))
        pthread_cond_wait(&fe->held, &fe->mu);
    if (fe->inactive) {
        pthread_mutex_unlock(&fe->mu);
        return 0;
    }
    fault_entry *e = fe_find(fe, f->path);
    if (e)
        e->synced = e->size;
    fe->syncs++;
    pthread_mutex_unlock(&fe->mu);
    return 0; /* the data is in the page cache; durability is simulated */
}

static int fe_close(void *ctx, nkv_file *nf)
{
    fault_env *fe = ctx;
    fault_file *f = (fault_file *)nf;
    int rc = fe->base->close(fe->base->ctx, f->inner);
    free(f->path);
    free(f);
    return rc;
}

static int fe_file_size(void *ctx, const char *path, uint64_t *size)
{
    fault_env *fe = ctx;
    return fe->base->file_size(fe->base->ctx, path, size);
}

static int fe_rename(void *ctx, const char *from, const char *to)
{
    fault_env *fe = ctx;
    pthread_mutex_lock(&fe->mu);
    if (fe->inactive) {
        pthread_mutex_unlock(&fe->mu);
        return 0;
    }
    pthread_mutex_unlock(&fe->mu);
    int rc = fe->base->rename(fe->base->ctx, from, to);
    if (!rc) {
        pthread_mutex_lock(&fe->mu);
        fe_remove(fe, to);
        fault_entry *e = fe_find(fe, from);
        if (e) {
            free(e->path);
            e->path = nb_xstrdup(to);
            e->new_file = true;
        }
        pthread_mutex_unlock(&fe->mu);
    }
    return rc;
}

static int fe_unlink(void *ctx, const char *path)
{
    fault_env *fe = ctx;
    pthread_mutex_lock(&fe->mu);
    if (fe->inactive) {
        pthread_mutex_unlock(&fe->mu);
        return 0;
    }
    fe_remove(fe, path);
    pthread_mutex_unlock(&fe->mu);
    return fe->base->unlink(fe->base->ctx, path);
}

static int fe_sync_dir(void *ctx, const char *dir)
{
    fault_env *fe = ctx;
    pthread_mutex_lock(&fe->mu);
    if (!fe->inactive) {
        size_t n = strlen(dir);
        for (fault_entry *e = fe->files; e; e = e->next)
            if (!strncmp(e->path, dir, n) && e->path[n] == '/' && !strchr(e->path + n + 1, '/'))
                e->new_file = false;
    }
    pthread_mutex_unlock(&fe->mu);
    return 0;
}

static int fe_mkdir(void *ctx, const char *dir)
{
    fault_env *fe = ctx;
    return fe->base->mkdir(fe->base->ctx, dir);
}

static int fe_list_dir(void *ctx, const char *dir, char ***names, size_t *n)
{
    fault_env *fe = ctx;
    return fe->base->list_dir(fe->base->ctx, dir, names, n);
}

static int fe_lock(void *ctx, const char *path, int *token)
{
    fault_env *fe = ctx;
    return fe->base->lock(fe->base->ctx, path, token);
}

static void fe_unlock(void *ctx, int token)
{
    fault_env *fe = ctx;
    fe->base->unlock(fe->base->ctx, token);
}

static inline void fault_env_init(fault_env *fe)
{
    memset(fe, 0, sizeof *fe);
    fe->base = nkv_env_default();
    pthread_mutex_init(&fe->mu, NULL);
    pthread_cond_init(&fe->held, NULL);
    fe->env = (nkv_env){
        .ctx = fe,
        .open_read = fe_open_read,
        .open_write = fe_open_write,
        .read_at = fe_read_at,
        .append = fe_append,
        .sync = fe_sync,
        .close = fe_close,
        .file_size = fe_file_size,
        .rename = fe_rename,
        .unlink = fe_unlink,
        .sync_dir = fe_sync_dir,
        .mkdir = fe_mkdir,
        .list_dir = fe_list_dir,
        .lock = fe_lock,
        .unlock = fe_unlock,
    };
}

static inline void fault_set_inactive(fault_env *fe, bool v)
{
    pthread_mutex_lock(&fe->mu);
    fe->inactive = v;
    pthread_mutex_unlock(&fe->mu);
}

static inline void fault_hold_tables(fault_env *fe, bool v)
{
    pthread_mutex_lock(&fe->mu);
    fe->hold_tables = v;
    pthread_cond_broadcast(&fe->held);
    pthread_mutex_unlock(&fe->mu);
}

static inline void fault_set_nospace(fault_env *fe, bool v)
{
    pthread_mutex_lock(&fe->mu);
    fe->nospace = v;
    pthread_mutex_unlock(&fe->mu);
}

/* Simulates a power loss: unsynced bytes and unsynced directory entries
 * vanish. Returns the number of files touched. */
static inline int fault_drop_unsynced(fault_env *fe)
{
    int touched = 0;
    pthread_mutex_lock(&fe->mu);
    for (fault_entry *e = fe->files; e; e = e->next) {
        if (e->new_file) {
            unlink(e->path);
            touched++;
        } else if (e->synced < e->size) {
            if (truncate(e->path, (off_t)e->synced) == 0)
                touched++;
        }
    }
    while (fe->files) {
        fault_entry *e = fe->files;
        fe->files = e->next;
        free(e->path);
        free(e);
    }
    pthread_mutex_unlock(&fe->mu);
    return touched;
}

static inline void fault_env_free(fault_env *fe)
{
    while (fe->files) {
        fault_entry *e = fe->files;
        fe->files = e->next;
        free(e->path);
        free(e);
    }
    pthread_cond_destroy(&fe->held);
    pthread_mutex_destroy(&fe->mu);
}

#endif
