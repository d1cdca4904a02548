/*
 * Model-based randomized test: random puts, deletes, batches, gets,
 * iterators (both directions, bounds, snapshots), flushes, compactions and
 * reopen cycles against an in-memory model; every answer must match.
 * Seeds: NB_TEST_SEED or time-based; NB_SOAK=1 runs many more steps.
 */
#include "nkv/nkv.h"

#include "test.h"

#define K    600 /* key space */
#define VMAX 300

typedef struct model {
    char *v[K]; /* NULL = absent */
    size_t len[K];
} model;

static uint64_t rs;
static uint64_t rnd(void)
{
    rs ^= rs << 13;
    rs ^= rs >> 7;
    rs ^= rs << 17;
    return rs;
}
static int rn(int n)
{
    return (int)(rnd() % (uint64_t)n);
}

static void key_of(int id, char *k)
{
    snprintf(k, 16, "key%05d", id);
}

static void model_set(model *m, int id, const char *v, size_t len)
{
    free(m->v[id]);
    m->v[id] = NULL;
    if (v) {
        m->v[id] = nb_xmalloc(len + 1);
        memcpy(m->v[id], v, len);
        m->len[id] = len;
    }
}

static void model_copy(model *dst, const model *src)
{
    for (int i = 0; i < K; i++) {
        dst->v[i] = NULL;
        if (src->v[i]) {
            dst->v[i] = nb_xmalloc(src->len[i] + 1);
            memcpy(dst->v[i], src->v[i], src->len[i]);
        }
        dst->len[i] = src->len[i];
    }
}

static void model_free(model *m)
{
    for (int i = 0; i < K; i++)
        free(m->v[i]);
}

static size_t gen_value(char *buf, int id)
{
    size_t len = (size_t)rn(8) == 0 ? (size_t)rn(VMAX * 8) : (size_t)rn(VMAX);
    for (size_t i = 0; i < len; i++)
        buf[i] = (char)('a' + (id + (int)i + (int)(rnd() & 3)) % 26);
    return len;
}

static void check_get(nkv_db *db, const model *m, const nkv_snapshot *snap, int id)
{
    char k[16];
    key_of(id, k);
    nkv_read_options ro;
    nkv_read_options_init(&ro);
    ro.snapshot = snap;
    void *v;
    size_t vl;
    int rc = nkv_get(db, &ro, k, strlen(k), &v, &vl);
    if (!m->v[id]) {
        if (rc != NKV_ENOTFOUND)
            fail_msg("get %s: want absent, got rc %d", k, rc);
        return;
    }
    if (rc != 0)
        fail_msg("get %s: want value, got %s", k, nb_errname(rc));
    if (vl != m->len[id] || memcmp(v, m->v[id], vl) != 0)
        fail_msg("get %s: value mismatch (len %zu want %zu)", k, vl, m->len[id]);
    nkv_free(v);
}

/* Next present id in [from, hi) stepping by dir; -1 if none. */
static int model_step(const model *m, int from, int dir, int lo, int hi)
{
    for (int i = from; i >= lo && i < hi; i += dir)
        if (m->v[i])
            return i;
    return -1;
}

static void check_pos(nkv_iter *it, const model *m, int want)
{
    if (want < 0) {
        if (nkv_iter_valid(it))
            fail_msg("iterator valid, want end");
        ASSERT_OK(nkv_iter_status(it));
        return;
    }
    if (!nkv_iter_valid(it))
        fail_msg("iterator at end (status %d), want id %d", nkv_iter_status(it), want);
    char k[16];
    key_of(want, k);
    size_t kl, vl;
    const void *key = nkv_iter_key(it, &kl);
    const void *val = nkv_iter_value(it, &vl);
    if (kl != strlen(k) || memcmp(key, k, kl) != 0)
        fail_msg("iterator key %.*s, want %s", (int)kl, (const char *)key, k);
    if (vl != m->len[want] || memcmp(val, m->v[want], vl) != 0)
        fail_msg("iterator value mismatch at %s", k);
}

static void check_iter(nkv_db *db, const model *m, const nkv_snapshot *snap)
{
    nkv_read_options ro;
    nkv_read_options_init(&ro);
    ro.snapshot = snap;
    int lo = 0, hi = K;
    char lk[16], hk[16];
    if (rn(2)) {
        lo = rn(K);
        key_of(lo, lk);
        ro.lower_bound = lk;
        ro.lower_bound_len = strlen(lk);
    }
    if (rn(2)) {
        hi = lo + rn(K - lo + 1);
        key_of(hi, hk);
        ro.upper_bound = hk;
        ro.upper_bound_len = hi < K ? strlen(hk) : 0;
        if (hi == K) {
            ro.upper_bound = NULL;
        }
    }
    nkv_iter *it;
    ASSERT_OK(nkv_iter_new(db, &ro, &it));
    int pos;
    int how = rn(4);
    char sk[16];
    int target = rn(K);
    key_of(target, sk);
    switch (how) {
    case 0:
        nkv_iter_seek_first(it);
        pos = model_step(m, lo, 1, lo, hi);
        break;
    case 1:
        nkv_iter_seek_last(it);
        pos = model_step(m, hi - 1, -1, lo, hi);
        break;
    case 2:
        nkv_iter_seek(it, sk, strlen(sk));
        pos = model_step(m, target < lo ? lo : target, 1, lo, hi);
        break;
    default:
        nkv_iter_seek_for_prev(it, sk, strlen(sk));
        pos = model_step(m, target >= hi ? hi - 1 : target, -1, lo, hi);
        break;
    }
    check_pos(it, m, pos);
    int steps = rn(40);
    for (int s = 0; s < steps && pos >= 0; s++) {
        if (rn(3)) {
            nkv_iter_next(it);
            pos = model_step(m, pos + 1, 1, lo, hi);
        } else {
            nkv_iter_prev(it);
            pos = model_step(m, pos - 1, -1, lo, hi);
        }
        check_pos(it, m, pos);
    }
    nkv_iter_free(it);
}

static nkv_db *reopen(nkv_db *db, const char *dir, nkv_options *o)
{
    if (db)
        ASSERT_OK(nkv_close(db));
    o->compression = (nkv_compression)rn(3);
    o->bloom_bits_per_key = rn(4) ? 10 : 0;
    o->block_cache_bytes = rn(4) ? (size_t)(256 << 10) : 0;
    o->background_threads = 1 + rn(3);
    ASSERT_OK(nkv_open(o, dir, &db));
    return db;
}

#define MAX_SNAPS 4

static void run_seed(uint64_t seed, int steps)
{
    rs = seed * 2654435761u + 1;
    char *dir = nb_test_dir("nkv_model");
    nkv_options o;
    nkv_options_init(&o);
    o.write_buffer_size = 64 << 10;
    o.target_file_size = 64 << 10;
    o.max_bytes_for_level_base = 256 << 10;
    o.block_size = 1024;
    o.l0_compaction_trigger = 2;
    nkv_db *db = reopen(NULL, dir, &o);
    model m;
    memset(&m, 0, sizeof m);
    nkv_snapshot *snaps[MAX_SNAPS];
    model *smodels[MAX_SNAPS];
    int nsnaps = 0;
    char *vbuf = nb_xmalloc(VMAX * 8 + 1);
    char k[16];
    nkv_batch *b;
    ASSERT_OK(nkv_batch_new(&b));
    for (int step = 0; step < steps; step++) {
        int op = rn(1000);
        if (op < 400) {
            int id = rn(K);
            key_of(id, k);
            size_t vl = gen_value(vbuf, id);
            ASSERT_OK(nkv_put(db, NULL, k, strlen(k), vbuf, vl));
            model_set(&m, id, vbuf, vl);
        } else if (op < 530) {
            int id = rn(K);
            key_of(id, k);
            ASSERT_OK(nkv_delete(db, NULL, k, strlen(k)));
            model_set(&m, id, NULL, 0);
        } else if (op < 600) {
            nkv_batch_clear(b);
            int n = 1 + rn(30);
            model tmp;
            model_copy(&tmp, &m);
            for (int i = 0; i < n; i++) {
                int id = rn(K);
                key_of(id, k);
                if (rn(4)) {
                    size_t vl = gen_value(vbuf, id);
                    ASSERT_OK(nkv_batch_put(b, k, strlen(k), vbuf, vl));
                    model_set(&tmp, id, vbuf, vl);
                } else {
                    ASSERT_OK(nkv_batch_delete(b, k, strlen(k)));
                    model_set(&tmp, id, NULL, 0);
                }
            }
            nkv_write_options wo = {.sync = rn(10) == 0};
            ASSERT_OK(nkv_write(db, &wo, b));
            model_free(&m);
            m = tmp;
        } else if (op < 800) {
            int s = nsnaps && rn(3) == 0 ? rn(nsnaps) : -1;
            check_get(db, s >= 0 ? smodels[s] : &m, s >= 0 ? snaps[s] : NULL, rn(K));
        } else if (op < 900) {
            int s = nsnaps && rn(3) == 0 ? rn(nsnaps) : -1;
            check_iter(db, s >= 0 ? smodels[s] : &m, s >= 0 ? snaps[s] : NULL);
        } else if (op < 930) {
            if (nsnaps < MAX_SNAPS) {
                ASSERT_OK(nkv_snapshot_new(db, &snaps[nsnaps]));
                smodels[nsnaps] = nb_xmalloc(sizeof(model));
                model_copy(smodels[nsnaps], &m);
                nsnaps++;
            } else {
                int s = rn(nsnaps);
                nkv_snapshot_free(db, snaps[s]);
                model_free(smodels[s]);
                free(smodels[s]);
                snaps[s] = snaps[nsnaps - 1];
                smodels[s] = smodels[nsnaps - 1];
                nsnaps--;
            }
        } else if (op < 945) {
            ASSERT_OK(nkv_flush(db, rn(2)));
        } else if (op < 952) {
            int a = rn(K), z = a + rn(K - a);
            char ka[16], kz[16];
            key_of(a, ka);
            key_of(z, kz);
            if (rn(3))
                ASSERT_OK(nkv_compact_range(db, ka, strlen(ka), kz, strlen(kz)));
            else
                ASSERT_OK(nkv_compact_range(db, NULL, 0, NULL, 0));
        } else if (op < 958) {
            for (int s = 0; s < nsnaps; s++) {
                nkv_snapshot_free(db, snaps[s]);
                model_free(smodels[s]);
                free(smodels[s]);
            }
            nsnaps = 0;
            db = reopen(db, dir, &o);
        } else {
            /* A burst of writes to push flushes and compactions. */
            for (int i = 0; i < 50; i++) {
                int id = rn(K);
                key_of(id, k);
                size_t vl = gen_value(vbuf, id);
                ASSERT_OK(nkv_put(db, NULL, k, strlen(k), vbuf, vl));
                model_set(&m, id, vbuf, vl);
            }
        }
    }
    /* Final full comparison, after a reopen. */
    for (int s = 0; s < nsnaps; s++) {
        nkv_snapshot_free(db, snaps[s]);
        model_free(smodels[s]);
        free(smodels[s]);
    }
    db = reopen(db, dir, &o);
    for (int id = 0; id < K; id++)
        check_get(db, &m, NULL, id);
    nkv_batch_free(b);
    ASSERT_OK(nkv_close(db));
    model_free(&m);
    free(vbuf);
    nb_test_rmdir(dir);
    free(dir);
}

static void test_model(void **state)
{
    (void)state;
    uint64_t seed = nb_test_seed();
    bool soak = getenv("NB_SOAK") != NULL;
    int seeds = soak ? 40 : 4;
    int steps = soak ? 30000 : 3000;
#ifdef NB_SANITIZED
    if (!soak)
        steps = 1500;
#endif
    for (int i = 0; i < seeds; i++) {
        fprintf(stderr, "model seed %llu\n", (unsigned long long)(seed + (uint64_t)i));
        run_seed(seed + (uint64_t)i, steps);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
