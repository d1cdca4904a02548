/*
 * gw_lifecycle.c — the lifecycle executor: a background thread of the
 * gateway that runs the buckets' stored lifecycle rules every interval
 * (docs/s3.md "Lifecycle"). Per enabled rule, filtered by prefix, tags
 * and object size:
 *   - Expiration Days/Date: current objects that are due are deleted
 *     (a delete marker in a versioned bucket, as a DELETE does);
 *   - NoncurrentVersionExpiration: noncurrent versions NoncurrentDays
 *     after they stopped being current, keeping the NewerNoncurrentVersions
 *     newest, are removed for good;
 *   - ExpiredObjectDeleteMarker: a delete marker that is the only version
 *     of its key left is removed;
 *   - AbortIncompleteMultipartUpload: uploads DaysAfterInitiation old are
 *     aborted.
 * Transitions wait for the cold tier. A "day" is 86400 s unless the
 * test-only day length says otherwise; due times are rounded up to the
 * next day boundary, as S3 rounds to the next midnight UTC.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/common.h"
#include "s3/gw_int.h"

#define LC_BATCH 1000 /* entries examined between actions */

typedef struct lc_bucket {
    s3_gw *g;
    const char *name;
    int versioning;
    int64_t now_ns, day_ns;
    s3_lifecycle_report *rep;
} lc_bucket;

/* When something dated t becomes due after days: t + days, rounded up to
 * the next day boundary. */
static int64_t due(const lc_bucket *b, int64_t t_ns, int32_t days)
{
    int64_t d = t_ns + (int64_t)days * b->day_ns;
    int64_t r = d % b->day_ns;
    return r ? d - r + b->day_ns : d;
}

static bool key_matches(const s3_lifecycle_rule *rule, const char *key)
{
    return strncmp(key, rule->prefix ? rule->prefix : "",
                   strlen(rule->prefix ? rule->prefix : "")) == 0;
}

/* Tags and size of the object ino against the rule's filter. */
static bool object_matches(lc_bucket *b, const s3_lifecycle_rule *rule, uint64_t ino, uint64_t size)
{
    if (rule->size_gt >= 0 && size <= (uint64_t)rule->size_gt)
        return false;
    if (rule->size_lt >= 0 && size >= (uint64_t)rule->size_lt)
        return false;
    if (rule->tags.n == 0)
        return true;
    nb_buf v = NB_BUF_INIT;
    vfs_objrec rec;
    memset(&rec, 0, sizeof rec);
    bool ok =
        vfs_objrec_get(b->g->ns, ino, &v) == 0 && vfs_objrec_decode(nb_buf_slice(&v), &rec) == 0;
    for (size_t i = 0; ok && i < rule->tags.n; i++) {
        bool found = false;
        for (size_t j = 0; j < rec.ntags && !found; j++)
            found = strcmp(rec.tags[j].key, rule->tags.tags[i].key) == 0 &&
                    strcmp(rec.tags[j].value, rule->tags.tags[i].value) == 0;
        ok = found;
    }
    vfs_objrec_free(&rec);
    nb_buf_free(&v);
    return ok;
}

/* ---- Expiration of current objects ---------------------------------------------------------- */

typedef struct cur_item {
    char *key;
    uint64_t ino, size;
    int64_t mtime_ns;
} cur_item;

typedef struct cur_page {
    cur_item *v;
    size_t n;
} cur_page;

static int cur_cb(void *arg, const vfs_list_entry *e)
{
    cur_page *p = arg;
    if (e->is_prefix || !e->attr || !S_ISREG(e->attr->mode))
        return 0;
    p->v[p->n++] = (cur_item){.key = nb_xstrndup(e->key, e->key_len),
                              .ino = e->attr->ino,
                              .size = e->attr->size,
                              .mtime_ns = e->attr->mtime_ns};
    return 0;
}

static bool expiration_due(const lc_bucket *b, const s3_lifecycle_rule *rule, int64_t mtime_ns)
{
    if (rule->expiration_days > 0 && b->now_ns >= due(b, mtime_ns, rule->expiration_days))
        return true;
    return rule->expiration_date >= 0 &&
           b->now_ns >= rule->expiration_date * (int64_t)NB_NS_PER_SEC;
}

static void expire_current(lc_bucket *b, const s3_lifecycle_rule *rule)
{
    char *after = NULL;
    for (;;) {
        cur_page p = {.v = nb_xcalloc(LC_BATCH, sizeof(cur_item))};
        vfs_list_opts o = {.prefix = rule->prefix, .start_after = after, .max_keys = LC_BATCH};
        bool trunc = false;
        char *next = NULL;
        int rc = vfs_s3_list(b->g->ns, NULL, b->name, &o, cur_cb, &p, &trunc, &next);
        for (size_t i = 0; rc == 0 && i < p.n; i++) {
            cur_item *c = &p.v[i];
            if (!expiration_due(b, rule, c->mtime_ns) || !object_matches(b, rule, c->ino, c->size))
                continue;
            int drc;
            if (b->versioning == VFS_VER_OFF) {
                drc = vfs_s3_delete(b->g->ns, NULL, b->name, c->key);
            } else {
                char id[17] = "null";
                drc = b->versioning == VFS_VER_ENABLED ? vfs_version_id_new(b->g->ns, id) : 0;
                if (drc == 0)
                    drc = vfs_version_mark(b->g->ns, b->name, c->key, b->versioning, id, NULL);
            }
            if (drc == 0) {
                b->rep->expired++;
                gw_notify_key(b->g, b->name, c->key, c->ino);
            } else if (drc != -ENOENT) {
                NB_WARN("lifecycle: %s/%s: cannot expire: %s", b->name, c->key, nb_strerror(drc));
            }
        }
        for (size_t i = 0; i < p.n; i++)
            free(p.v[i].key);
        free(p.v);
        free(after);
        after = next;
        if (rc != 0 || !trunc || !after)
            break;
    }
    free(after);
}

/* ---- Noncurrent versions and lone delete markers -------------------------------------------- */

typedef struct ver_item {
    char *key;
    char id[VFS_VERSION_ID_MAX + 1];
} ver_item;

typedef struct ver_scan {
    lc_bucket *b;
    const s3_lifecycle_rule *rule;
    ver_item *todo;
    size_t ntodo;
    size_t seen;
    char *resume_key; /* where the next page starts */
    uint64_t resume_seq;
    bool done;
    /* per key, carried across pages */
    char *cur_key;
    int32_t nth;      /* noncurrent object versions of cur_key seen so far */
    bool lone_marker; /* cur_key's newest record is a marker, nothing else seen */
    char lone_id[VFS_VERSION_ID_MAX + 1];
} ver_scan;

static void todo_add(ver_scan *s, const char *key, const char *id)
{
    s->todo = nb_xrealloc(s->todo, (s->ntodo + 1) * sizeof *s->todo);
    s->todo[s->ntodo].key = nb_xstrdup(key);
    snprintf(s->todo[s->ntodo].id, sizeof s->todo[s->ntodo].id, "%s", id);
    s->ntodo++;
}

/* A key's records are over: a marker alone, with no current object, goes. */
static void key_end(ver_scan *s)
{
    if (s->cur_key && s->lone_marker && s->rule->expired_delete_marker) {
        vfs_attr a;
        if (vfs_s3_lookup(s->b->g->ns, NULL, s->b->name, s->cur_key, &a) == -ENOENT)
            todo_add(s, s->cur_key, s->lone_id);
    }
    free(s->cur_key);
    s->cur_key = NULL;
}

static int ver_cb(void *arg, const vfs_version *v)
{
    ver_scan *s = arg;
    if (s->seen == LC_BATCH) {
        free(s->resume_key);
        s->resume_key = nb_xstrdup(v->key);
        s->resume_seq = v->seq;
        return 1;
    }
    s->seen++;
    const char *prefix = s->rule->prefix ? s->rule->prefix : "";
    if (strncmp(v->key, prefix, strlen(prefix)) != 0) {
        if (strcmp(v->key, prefix) > 0)
            s->done = true;
        return s->done;
    }
    if (!s->cur_key || strcmp(s->cur_key, v->key) != 0) {
        key_end(s);
        s->cur_key = nb_xstrdup(v->key);
        s->nth = 0;
        s->lone_marker = v->delete_marker;
        snprintf(s->lone_id, sizeof s->lone_id, "%s", v->version_id);
    } else {
        s->lone_marker = false;
    }
    if (v->delete_marker || s->rule->noncurrent_days <= 0)
        return 0;
    int32_t nth = s->nth++;
    if (s->rule->newer_noncurrent > 0 && nth < s->rule->newer_noncurrent)
        return 0;
    if (s->b->now_ns < due(s->b, v->noncurrent_ns, s->rule->noncurrent_days))
        return 0;
    vfs_attr a;
    if (vfs_getattr(s->b->g->ns, v->ino, &a) != 0 || !object_matches(s->b, s->rule, v->ino, a.size))
        return 0;
    todo_add(s, v->key, v->version_id);
    return 0;
}

static void expire_versions(lc_bucket *b, const s3_lifecycle_rule *rule)
{
    ver_scan s = {.b = b, .rule = rule};
    const char *prefix = rule->prefix && *rule->prefix ? rule->prefix : NULL;
    char *start = prefix ? nb_xstrdup(prefix) : NULL;
    uint64_t seq = UINT64_MAX;
    for (;;) {
        s.seen = 0;
        free(s.resume_key);
        s.resume_key = NULL;
        int rc = vfs_version_list(b->g->ns, b->name, start, seq, ver_cb, &s);
        bool more = rc == 0 && s.resume_key && !s.done;
        if (!more && rc == 0)
            key_end(&s);
        for (size_t i = 0; i < s.ntodo; i++) {
            bool marker = false;
            int drc = vfs_version_delete(b->g->ns, b->name, s.todo[i].key, s.todo[i].id, &marker);
            if (drc == 0) {
                if (marker)
                    b->rep->markers_removed++;
                else
                    b->rep->noncurrent_removed++;
            } else if (drc != NB_ENOTFOUND) {
                NB_WARN("lifecycle: %s/%s version %s: %s", b->name, s.todo[i].key, s.todo[i].id,
                        nb_strerror(drc));
            }
            free(s.todo[i].key);
        }
        free(s.todo);
        s.todo = NULL;
        s.ntodo = 0;
        if (!more)
            break;
        free(start);
        start = nb_xstrdup(s.resume_key);
        seq = s.resume_seq;
    }
    free(start);
    free(s.resume_key);
    free(s.cur_key);
}

/* ---- Incomplete multipart uploads ----------------------------------------------------------- */

typedef struct up_scan {
    lc_bucket *b;
    const s3_lifecycle_rule *rule;
    uint64_t *ids;
    size_t n;
} up_scan;

static int up_cb(void *arg, const vfs_upload *u)
{
    up_scan *s = arg;
    if (key_matches(s->rule, u->key) &&
        s->b->now_ns >= due(s->b, u->initiated_ns, s->rule->abort_upload_days)) {
        s->ids = nb_xrealloc(s->ids, (s->n + 1) * sizeof *s->ids);
        s->ids[s->n++] = u->id;
    }
    return 0;
}

static void abort_uploads(lc_bucket *b, const s3_lifecycle_rule *rule)
{
    up_scan s = {.b = b, .rule = rule};
    int rc = vfs_mpu_list(b->g->ns, NULL, b->name, NULL, 0, up_cb, &s);
    for (size_t i = 0; rc == 0 && i < s.n; i++)
        if (vfs_mpu_abort(b->g->ns, s.ids[i]) == 0)
            b->rep->uploads_aborted++;
    free(s.ids);
}

/* ---- The scan ------------------------------------------------------------------------------- */

static void run_bucket(s3_gw *g, const char *name, int64_t now_ns, int64_t day_ns,
                       s3_lifecycle_report *rep)
{
    vfs_bucket vb;
    if (vfs_bucket_get(g->ns, name, &vb) != 0)
        return; /* no record: no rules */
    s3_lifecycle lc = {0};
    int rc = vb.lifecycle.len ? s3_parse_lifecycle(vb.lifecycle.data, vb.lifecycle.len, &lc)
                              : NB_ENOTFOUND;
    lc_bucket b = {.g = g,
                   .name = name,
                   .versioning = (int)vb.versioning,
                   .now_ns = now_ns,
                   .day_ns = day_ns,
                   .rep = rep};
    vfs_bucket_free(&vb);
    if (rc != 0)
        return;
    rep->buckets++;
    for (size_t i = 0; i < lc.n; i++) {
        const s3_lifecycle_rule *rule = &lc.rules[i];
        if (!rule->enabled)
            continue;
        if (rule->expiration_days > 0 || rule->expiration_date >= 0)
            expire_current(&b, rule);
        if (rule->noncurrent_days > 0 || rule->expired_delete_marker)
            expire_versions(&b, rule);
        if (rule->abort_upload_days > 0)
            abort_uploads(&b, rule);
    }
    s3_lifecycle_free(&lc);
}

typedef struct names {
    char **v;
    size_t n;
} names;

static int bucket_name_cb(void *arg, const vfs_dirent *e)
{
    names *ns = arg;
    if (e->type == S_IFDIR && e->name[0] != '.') {
        ns->v = nb_xrealloc(ns->v, (ns->n + 1) * sizeof *ns->v);
        ns->v[ns->n++] = nb_xstrdup(e->name);
    }
    return 0;
}

int s3_gw_lifecycle_run(s3_gw *g, int64_t now_ns, s3_lifecycle_report *rep)
{
    memset(rep, 0, sizeof *rep);
    names ns = {0};
    int rc = vfs_readdir(g->ns, VFS_ROOT_INO, 0, 0, bucket_name_cb, &ns);
    int64_t day_ns = g->lc_day_ns > 0 ? g->lc_day_ns : 86400 * (int64_t)NB_NS_PER_SEC;
    for (size_t i = 0; i < ns.n; i++) {
        if (rc == 0)
            run_bucket(g, ns.v[i], now_ns, day_ns, rep);
        free(ns.v[i]);
    }
    free(ns.v);
    return rc;
}

static void *lc_main(void *arg)
{
    s3_gw *g = arg;
    pthread_mutex_lock(&g->lc_mu);
    while (!g->lc_stop) {
        struct timespec ts = nb_mono_timespec_in((uint64_t)g->lc_interval_ns);
        while (!g->lc_stop && pthread_cond_timedwait(&g->lc_cv, &g->lc_mu, &ts) == 0)
            ;
        if (g->lc_stop)
            break;
        pthread_mutex_unlock(&g->lc_mu);
        s3_lifecycle_report rep;
        int rc = s3_gw_lifecycle_run(g, (int64_t)nb_wall_ns(), &rep);
        if (rc != 0)
            NB_WARN("lifecycle: scan failed: %s", nb_strerror(rc));
        else if (rep.expired || rep.noncurrent_removed || rep.markers_removed ||
                 rep.uploads_aborted)
            NB_INFO("lifecycle: %llu expired, %llu noncurrent versions and %llu delete markers "
                    "removed, %llu uploads aborted",
                    (unsigned long long)rep.expired, (unsigned long long)rep.noncurrent_removed,
                    (unsigned long long)rep.markers_removed,
                    (unsigned long long)rep.uploads_aborted);
        pthread_mutex_lock(&g->lc_mu);
    }
    pthread_mutex_unlock(&g->lc_mu);
    return NULL;
}

int gw_lifecycle_start(s3_gw *g, double interval_s, double day_s)
{
    pthread_mutex_init(&g->lc_mu, NULL);
    nb_cond_init_mono(&g->lc_cv);
    g->lc_day_ns = day_s > 0 ? (int64_t)(day_s * (double)NB_NS_PER_SEC) : 0;
    if (interval_s <= 0)
        return 0;
    g->lc_interval_ns = (int64_t)(interval_s * (double)NB_NS_PER_SEC);
    int rc = -pthread_create(&g->lc_thread, NULL, lc_main, g);
    g->lc_running = rc == 0;
    return rc;
}

void gw_lifecycle_stop(s3_gw *g)
{
    if (g->lc_running) {
        pthread_mutex_lock(&g->lc_mu);
        g->lc_stop = true;
        pthread_cond_signal(&g->lc_cv);
        pthread_mutex_unlock(&g->lc_mu);
        pthread_join(g->lc_thread, NULL);
        g->lc_running = false;
    }
    pthread_cond_destroy(&g->lc_cv);
    pthread_mutex_destroy(&g->lc_mu);
}
