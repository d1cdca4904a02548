/* A randomized model test of the whole data path. One chunk's slice list
 * is the "metadata"; the main thread writes slices, punches zero ranges,
 * compacts, releases replaced slices and runs the collector, while reader
 * threads pin, copy the current list and read random ranges, checking
 * every byte against the model. A reader must never see a block vanish
 * under it (the pin protocol) nor wrong bytes.
 *
 * NB_TEST_SEED replays a run; NB_SOAK=1 runs many more operations. */
#include <pthread.h>

#include "data/data_int.h"
#include "disk/disk.h"

#include "data_test.h"

#define SPAN (20u << 20)
#define MAXS 64

static char *dir;
static data_store *st;

/* The "metadata": guarded by meta_mu. */
static pthread_mutex_t meta_mu = PTHREAD_MUTEX_INITIALIZER;
static data_slice list[MAXS];
static size_t nlist;
static _Atomic int stop;
static _Atomic uint64_t reads_done;

/* Compacted slices hold bytes that are not dt_byte(id, i): their content
 * is kept here, refcounted by the snapshots that use it (meta_mu). */
typedef struct content {
    uint64_t id;
    uint8_t *bytes;
    int refs;
    bool released;
} content;
static content contents[16];

static content *content_find(uint64_t id)
{
    for (size_t i = 0; i < NB_ARRAY_LEN(contents); i++)
        if (contents[i].bytes && contents[i].id == id)
            return &contents[i];
    return NULL;
}

static void content_unref_locked(content *c)
{
    if (--c->refs == 0) {
        free(c->bytes);
        memset(c, 0, sizeof *c);
    }
}

static void snapshot(data_slice *out, size_t *n)
{
    pthread_mutex_lock(&meta_mu);
    memcpy(out, list, nlist * sizeof *list);
    *n = nlist;
    for (size_t i = 0; i < nlist; i++) {
        content *c = content_find(list[i].id);
        if (c)
            c->refs++;
    }
    pthread_mutex_unlock(&meta_mu);
}

static void snapshot_done(const data_slice *sl, size_t n)
{
    pthread_mutex_lock(&meta_mu);
    for (size_t i = 0; i < n; i++) {
        content *c = content_find(sl[i].id);
        if (c)
            content_unref_locked(c);
    }
    pthread_mutex_unlock(&meta_mu);
}

/* The model: paint the slices oldest first. */
static void model(const data_slice *sl, size_t n, uint32_t off, size_t len, uint8_t *out)
{
    memset(out, 0, len);
    uint64_t end = (uint64_t)off + len;
    for (size_t j = 0; j < n; j++) {
        uint64_t a = sl[j].chunk_off, b = a + sl[j].len;
        if (a < off)
            a = off;
        if (b > end)
            b = end;
        if (a >= b)
            continue;
        uint64_t so = sl[j].slice_off + (a - sl[j].chunk_off);
        /* The bytes stay put while the snapshot holds its ref; the table
         * itself is only read under the lock. */
        pthread_mutex_lock(&meta_mu);
        content *c = content_find(sl[j].id);
        const uint8_t *cb = c ? c->bytes : NULL;
        pthread_mutex_unlock(&meta_mu);
        if (cb)
            memcpy(out + (a - off), cb + so, b - a);
        else if (sl[j].id)
            dt_fill(sl[j].id, so, out + (a - off), b - a);
        else
            memset(out + (a - off), 0, b - a);
    }
}

typedef struct reader_arg {
    uint64_t seed;
    int failed;
    char msg[200];
} reader_arg;

static void *reader_main(void *p)
{
    reader_arg *ra_arg = p;
    uint64_t seed = ra_arg->seed;
    data_ra *ra = data_ra_new();
    uint8_t *got = nb_xmalloc(SPAN);
    uint8_t *want = nb_xmalloc(SPAN);
    data_slice snap[MAXS];
    size_t n;
    uint32_t seq_off = 0;
    while (!atomic_load(&stop) && !ra_arg->failed) {
        data_pin pin = data_pin_begin(st);
        snapshot(snap, &n);
        uint32_t off;
        size_t len;
        if (dt_below(&seed, 2)) { /* sequential stream */
            off = seq_off;
            len = 1 + (size_t)dt_below(&seed, 1u << 20);
            if (off + len > SPAN)
                len = SPAN - off;
            seq_off = off + (uint32_t)len >= SPAN ? 0 : off + (uint32_t)len;
        } else {
            off = (uint32_t)dt_below(&seed, SPAN);
            len = 1 + (size_t)dt_below(&seed, dt_below(&seed, 2) ? 8192 : SPAN - off);
            if (off + len > SPAN)
                len = SPAN - off;
        }
        int rc = data_chunk_read(st, ra, snap, n, off, len, got);
        data_pin_end(st, pin);
        if (rc) {
            snapshot_done(snap, n);
            snprintf(ra_arg->msg, sizeof ra_arg->msg, "read %u+%zu: %s", off, len, nb_errname(rc));
            ra_arg->failed = 1;
            break;
        }
        model(snap, n, off, len, want);
        snapshot_done(snap, n);
        if (memcmp(got, want, len) != 0) {
            snprintf(ra_arg->msg, sizeof ra_arg->msg, "read %u+%zu: wrong bytes", off, len);
            ra_arg->failed = 1;
        }
        atomic_fetch_add(&reads_done, 1);
    }
    data_ra_free(ra);
    free(got);
    free(want);
    return NULL;
}

static int live_fn(void *arg, data_live *l)
{
    (void)arg;
    pthread_mutex_lock(&meta_mu);
    for (size_t i = 0; i < nlist; i++)
        data_live_add(l, list[i].id, data_slice_blocks(list[i].slice_off + list[i].len));
    pthread_mutex_unlock(&meta_mu);
    return 0;
}

/* Replaces the list (the "metadata commit") and releases the slices that
 * dropped out of it. */
static void commit(const data_slice *nl, size_t n)
{
    data_slice old[MAXS];
    size_t nold;
    pthread_mutex_lock(&meta_mu);
    memcpy(old, list, nlist * sizeof *list);
    nold = nlist;
    if (n)
        memcpy(list, nl, n * sizeof *nl);
    nlist = n;
    pthread_mutex_unlock(&meta_mu);
    for (size_t i = 0; i < nold; i++) {
        bool kept = false;
        for (size_t j = 0; j < n && !kept; j++)
            kept = nl[j].id == old[i].id;
        if (!kept && old[i].id) {
            data_slice_release(st, old[i].id, old[i].slice_off + old[i].len);
            pthread_mutex_lock(&meta_mu);
            content *c = content_find(old[i].id);
            if (c) {
                c->released = true;
                content_unref_locked(c); /* the list's reference */
            }
            pthread_mutex_unlock(&meta_mu);
        }
    }
}

static void run_model(int ops, int nreaders, const char *backend)
{
    uint64_t seed = nb_test_seed();
    dir = nb_test_dir(strcmp(backend, "dir") == 0 ? "data_model_dir" : "data_model_disk");
    nb_log_set_level(NB_LOG_WARN);
    data_bs *bs;
    if (strcmp(backend, "dir") == 0) {
        ASSERT_OK(data_bs_open_dir(dir, &bs));
    } else {
        disk_options dopt;
        disk_options_init(&dopt);
        dopt.capacity = 512u << 20;
        ASSERT_OK(data_bs_open_disk(dir, &dopt, &bs));
    }
    data_store_options o = {0};
    o.cache_bytes = 24u << 20; /* small: forces eviction */
    o.read_threads = 4;
    o.write_threads = 2;
    ASSERT_OK(data_store_open(bs, &o, &st));
    nlist = 0;
    atomic_store(&stop, 0);
    atomic_store(&reads_done, 0);

    pthread_t th[4];
    reader_arg ra[4];
    for (int i = 0; i < nreaders; i++) {
        memset(&ra[i], 0, sizeof ra[i]);
        ra[i].seed = seed * 31 + (uint64_t)i + 1;
        assert_int_equal(pthread_create(&th[i], NULL, reader_main, &ra[i]), 0);
    }

    uint64_t next_id = 1;
    uint8_t *buf = nb_xmalloc(3u << 20);
    uint8_t *check = nb_xmalloc(SPAN);
    uint8_t *want = nb_xmalloc(SPAN);
    data_collect_opts co = {.grace_ns = 1, .wait_ns = 2 * NB_NS_PER_SEC};
    for (int op = 0; op < ops; op++) {
        data_slice nl[MAXS];
        size_t n;
        /* The main thread is the only writer of the list: a plain copy. */
        pthread_mutex_lock(&meta_mu);
        memcpy(nl, list, nlist * sizeof *list);
        n = nlist;
        pthread_mutex_unlock(&meta_mu);
        uint64_t r = dt_below(&seed, 100);
        if (n >= MAXS - 2 || (r < 8 && n > 1)) {
            /* Compact. */
            data_pin pin = data_pin_begin(st);
            data_slice c;
            uint64_t id = next_id++;
            int rc = data_chunk_compact(st, nl, n, id, &c);
            data_pin_end(st, pin);
            if (rc == NB_ENOTFOUND) {
                commit(NULL, 0);
                continue;
            }
            ASSERT_OK(rc);
            uint8_t *bytes = nb_xmalloc(c.len);
            model(nl, n, c.chunk_off, c.len, bytes);
            pthread_mutex_lock(&meta_mu);
            content *slot = NULL;
            for (size_t i = 0; i < NB_ARRAY_LEN(contents) && !slot; i++)
                if (!contents[i].bytes)
                    slot = &contents[i];
            NB_ASSERT(slot);
            slot->id = id;
            slot->bytes = bytes;
            slot->refs = 1; /* the list's */
            slot->released = false;
            pthread_mutex_unlock(&meta_mu);
            commit(&c, 1);
            data_slice_unhold(st, id);
        } else if (r < 14) {
            /* Collect with the current list as the live set. */
            data_collect_report rep;
            ASSERT_OK(data_collect(st, live_fn, NULL, &co, &rep));
        } else if (r < 20) {
            /* Punch zeros (a truncate-and-extend, say). */
            uint32_t a = (uint32_t)dt_below(&seed, SPAN);
            uint32_t len = 1 + (uint32_t)dt_below(&seed, SPAN - a);
            data_slice z = {0, a, len, 0, NULL};
            nl[n++] = z;
            commit(nl, n);
        } else if (r < 28) {
            /* A crash leftover: blocks written, never published. */
            uint64_t id = next_id++;
            ASSERT_OK(dt_write_slice(st, id, 1 + dt_below(&seed, 5u << 20)));
            data_slice_unhold(st, id);
        } else {
            /* Write a new slice, sometimes referenced through a window. */
            uint32_t a = (uint32_t)dt_below(&seed, SPAN);
            uint32_t len = 1 + (uint32_t)dt_below(&seed, dt_below(&seed, 5) ? 65536 : 3u << 20);
            if (a + len > SPAN)
                len = SPAN - a;
            uint32_t lead = dt_below(&seed, 4) == 0 ? (uint32_t)dt_below(&seed, 100000) : 0;
            uint64_t id = next_id++;
            size_t total = lead + len;
            if (total > (3u << 20))
                total = 3u << 20, len = (uint32_t)(total - lead);
            dt_fill(id, 0, buf, total);
            data_writer *w;
            ASSERT_OK(data_writer_new(st, id, &w));
            for (size_t off = 0; off < total;) {
                size_t step = 1 + (size_t)dt_below(&seed, 2u << 20);
                if (step > total - off)
                    step = total - off;
                ASSERT_OK(data_writer_append(w, buf + off, step));
                off += step;
            }
            ASSERT_OK(data_writer_finish(w, NULL));
            data_slice s = {id, a, len, lead, NULL};
            nl[n++] = s;
            commit(nl, n);
            data_slice_unhold(st, id);
        }
        if (op % 10 == 9) {
            /* A full check from this thread. */
            data_pin pin = data_pin_begin(st);
            snapshot(nl, &n);
            ASSERT_OK(data_chunk_read(st, NULL, nl, n, 0, SPAN, check));
            data_pin_end(st, pin);
            model(nl, n, 0, SPAN, want);
            snapshot_done(nl, n);
            assert_memory_equal(check, want, SPAN);
        }
        for (int i = 0; i < nreaders; i++)
            if (ra[i].failed)
                fail_msg("reader %d: %s (op %d)", i, ra[i].msg, op);
    }
    atomic_store(&stop, 1);
    for (int i = 0; i < nreaders; i++) {
        pthread_join(th[i], NULL);
        if (ra[i].failed)
            fail_msg("reader %d: %s", i, ra[i].msg);
    }
    /* Final collection: exactly the live blocks remain. */
    data_collect_report rep;
    ASSERT_OK(data_collect(st, live_fn, NULL, &co, &rep));
    ASSERT_OK(data_collect(st, live_fn, NULL, &co, &rep));
    assert_int_equal(rep.blocks_seen, rep.blocks_live);
    assert_int_equal(rep.blocks_freed, 0);
    fprintf(stderr, "model (%s): %d ops, %llu concurrent reads, %llu live blocks\n", backend, ops,
            (unsigned long long)atomic_load(&reads_done), (unsigned long long)rep.blocks_live);
    for (size_t i = 0; i < NB_ARRAY_LEN(contents); i++) {
        free(contents[i].bytes);
        memset(&contents[i], 0, sizeof contents[i]);
    }
    free(buf);
    free(check);
    free(want);
    data_store_close(st);
    st = NULL;
    nb_test_rmdir(dir);
    free(dir);
}

static int model_ops(void)
{
    return dt_soak() ? 4000 : dt_sanitized() ? 40 : 120;
}

static void test_model_dir(void **state)
{
    (void)state;
    run_model(model_ops(), 2, "dir");
}

static void test_model_disk(void **state)
{
    (void)state;
    run_model(model_ops(), 2, "disk");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model_dir),
        cmocka_unit_test(test_model_disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
