/*
 * test_crash.c — SIGKILL crash test. A forked child runs two threads of
 * creates with writes + fsync, renames, unlinks and S3 PUTs (atomic
 * replace) on one namespace and reports every acknowledged operation to
 * the parent over a pipe (records are smaller than PIPE_BUF, so each
 * write is atomic). The parent kills the child at a random moment,
 * runs vfs_fsck (must be clean), reopens and checks that every
 * acknowledged operation is there and nothing half-done is visible:
 *
 *   file id   create -> fsync -> ack C; rename f<id> -> r<id> -> sync ->
 *             ack R; unlink r<id> -> sync -> ack U. Without ack R the
 *             file is f<id> (or r<id>: renamed, not yet acknowledged);
 *             with R and without U it is r<id> or gone; with U gone.
 *             Whenever it exists its bytes are all of its content or,
 *             before ack C, possibly none (the publish is atomic).
 *             Some files are only closed (no fsync) -> ack C too: after
 *             SIGKILL they are whole (a close publishes; the kernel keeps
 *             what was written).
 *   PUT key   the object holds the last acknowledged version or one
 *             begun after it, in full, never a mix (each thread PUTs its
 *             own keys, so one key's versions are sequential).
 *
 * Power loss (dir block store, every second cycle): after the kill the
 * parent deletes every block whose put did not sync it and whose sync had
 * not returned (data's $NB_DATA_SYNC_LOG tells), the worst a power loss
 * can do to blocks written lazily (docs/vfs.md, "Durability"), before
 * fsck. fsck must still be clean (no map names a
 * lost block), every fsync-acknowledged file and every PUT must be whole,
 * and a file only closed may have lost bytes (they read as zeros), never
 * an I/O error. The metadata (nkv engine) loses power too: each of its
 * files is cut back to the size its last sync covered (nkv's
 * $NB_KV_SYNC_LOG tells), so a file only closed may then be gone or
 * empty, while every fsync-acknowledged file, rename, unlink and PUT
 * must still be there: an acknowledged PUT is durable.
 *
 * Cycles: NB_CRASH_CYCLES (default 20; 8 under sanitizers).
 */
#include <ftw.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "data/data.h"

#include "vfs_test.h"

enum { R_CREATE = 1, R_RENAME, R_UNLINK, R_PUT_BEGIN, R_PUT_ACK, R_CREATE_BEGIN, R_CLOSED };

typedef struct rec {
    uint32_t type;
    uint32_t key; /* PUT: key number */
    uint64_t id;
    uint64_t seed;
    uint64_t size;
} rec;

#define MAX_FILE (300u << 10)
#define NKEYS    8

static char *g_dir, *g_log, *g_kvlog;
static int g_pipe = -1;
static vfs *g_cv;

static void send_rec(uint32_t type, uint32_t key, uint64_t id, uint64_t seed, uint64_t size)
{
    rec r = {type, key, id, seed, size};
    if (write(g_pipe, &r, sizeof r) != (ssize_t)sizeof r)
        _exit(3);
}

static void child_check(int rc, const char *what)
{
    if (rc != 0) {
        fprintf(stderr, "crash child: %s failed: %s\n", what, nb_strerror(rc));
        _exit(2);
    }
}

typedef struct cthread {
    int t;
    uint64_t rng;
    uint64_t next_id;
} cthread;

static void *child_thread(void *arg)
{
    cthread *ct = arg;
    uint8_t *buf = nb_xmalloc(MAX_FILE);
    vfs_attr dir;
    child_check(vfs_resolve(g_cv, NULL, "c", 0, &dir), "resolve c");
    uint64_t live[64];
    int nlive = 0, renamed[64];
    for (;;) {
        unsigned op = (unsigned)vt_below(&ct->rng, 10);
        char name[64], name2[64];
        if (op < 4 || nlive == 0) {
            uint64_t id = ct->next_id++;
            uint64_t seed = vt_rand(&ct->rng);
            size_t size = (size_t)vt_below(&ct->rng, MAX_FILE);
            snprintf(name, sizeof name, "f%llu", (unsigned long long)id);
            send_rec(R_CREATE_BEGIN, 0, id, seed, size);
            vfs_file *f;
            child_check(vfs_create(g_cv, NULL, dir.ino, name, 0644, O_WRONLY | O_EXCL, NULL, &f),
                        "create");
            vt_fill(seed, buf, size);
            /* two writes, published together by fsync (or by close) */
            size_t half = size / 2;
            child_check(vfs_write(f, 0, buf, half, NULL), "write");
            child_check(vfs_write(f, half, buf + half, size - half, NULL), "write");
            bool durable = op < 2 || nlive == 0;
            if (durable)
                child_check(vfs_fsync(f, false), "fsync");
            child_check(vfs_release(f), "release");
            send_rec(durable ? R_CREATE : R_CLOSED, 0, id, seed, size);
            if (nlive < 64) {
                live[nlive] = id;
                renamed[nlive] = 0;
                nlive++;
            }
        } else if (op < 7) {
            int k = (int)vt_below(&ct->rng, (uint64_t)nlive);
            snprintf(name, sizeof name, "f%llu", (unsigned long long)live[k]);
            snprintf(name2, sizeof name2, "r%llu", (unsigned long long)live[k]);
            if (!renamed[k]) {
                child_check(vfs_rename(g_cv, NULL, dir.ino, name, dir.ino, name2, 0), "rename");
                child_check(vfs_sync(g_cv), "sync");
                send_rec(R_RENAME, 0, live[k], 0, 0);
                renamed[k] = 1;
            } else {
                child_check(vfs_unlink(g_cv, NULL, dir.ino, name2), "unlink");
                child_check(vfs_sync(g_cv), "sync");
                send_rec(R_UNLINK, 0, live[k], 0, 0);
                live[k] = live[nlive - 1];
                renamed[k] = renamed[nlive - 1];
                nlive--;
            }
        } else {
            /* each thread its own keys, so a key's versions are sequential
             * (two concurrent PUTs of one key may commit in either order) */
            uint32_t key = (uint32_t)vt_below(&ct->rng, NKEYS / 2) * 2 + (uint32_t)ct->t;
            uint64_t seed = vt_rand(&ct->rng);
            size_t size = (size_t)vt_below(&ct->rng, MAX_FILE);
            snprintf(name, sizeof name, "dir%u/k%u", key % 3, key);
            send_rec(R_PUT_BEGIN, key, 0, seed, size);
            vfs_put *p;
            child_check(vfs_put_begin(g_cv, NULL, "bkt", name, 0644, &p), "put_begin");
            vt_fill(seed, buf, size);
            for (size_t off = 0; off < size; off += 65536)
                child_check(vfs_put_write(p, buf + off, size - off < 65536 ? size - off : 65536),
                            "put_write");
            child_check(vfs_put_commit(p, nb_slice_of(NULL, 0), NULL), "put_commit");
            send_rec(R_PUT_ACK, key, 0, seed, size);
        }
    }
    return NULL;
}

static void child_main(int cycle, uint64_t seed)
{
    vfs_options o;
    vt_options(&o, g_dir);
    o.maintain_interval_ms = 20; /* the collector runs while we are killed */
    o.collect_grace_ns = 1;
    o.cache_bytes = 8u << 20;
    child_check(vfs_open(&o, &g_cv), "open");
    cthread ct[2];
    pthread_t th[2];
    for (int t = 0; t < 2; t++) {
        ct[t].t = t;
        ct[t].rng = seed + (uint64_t)t * 31337;
        ct[t].next_id = (uint64_t)cycle * 1000000 + (uint64_t)t * 100000 + 1;
        pthread_create(&th[t], NULL, child_thread, &ct[t]);
    }
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    _exit(0);
}

/* ---- The parent's model ------------------------------------------------------------------------
 */

typedef struct fstate {
    uint64_t id, seed, size;
    bool created, renamed, unlinked;
    bool synced;     /* acknowledged after fsync */
    bool maybe_lost; /* not synced when a power loss was simulated: bytes may be zeros */
    bool kv_lost;    /* ... and the metadata lost power too: may be gone or empty */
} fstate;

typedef struct kstate {
    /* versions begun, in order; acked = index of the last acknowledged (-1) */
    uint64_t seed[4096], size[4096];
    int n, acked;
} kstate;

static fstate *g_files;
static size_t g_nfiles, g_capfiles;
static kstate g_keys[NKEYS];

static fstate *file_get(uint64_t id)
{
    for (size_t i = g_nfiles; i-- > 0;)
        if (g_files[i].id == id)
            return &g_files[i];
    return NULL;
}

static void apply(const rec *r)
{
    switch (r->type) {
    case R_CREATE_BEGIN:
        if (g_nfiles == g_capfiles) {
            g_capfiles = g_capfiles ? g_capfiles * 2 : 256;
            g_files = nb_xrealloc(g_files, g_capfiles * sizeof(*g_files));
        }
        g_files[g_nfiles++] =
            (fstate){r->id, r->seed, r->size, false, false, false, false, false, false};
        break;
    case R_CREATE:
    case R_CLOSED:
        assert_non_null(file_get(r->id));
        file_get(r->id)->created = true;
        file_get(r->id)->synced = r->type == R_CREATE;
        break;
    case R_RENAME:
        assert_non_null(file_get(r->id));
        file_get(r->id)->renamed = true;
        break;
    case R_UNLINK:
        assert_non_null(file_get(r->id));
        file_get(r->id)->unlinked = true;
        break;
    case R_PUT_BEGIN: {
        kstate *k = &g_keys[r->key];
        if (k->n == 4096) { /* keep the newest half */
            int drop = 2048 < k->acked ? 2048 : (k->acked > 0 ? k->acked : 0);
            memmove(k->seed, k->seed + drop, (size_t)(k->n - drop) * sizeof(uint64_t));
            memmove(k->size, k->size + drop, (size_t)(k->n - drop) * sizeof(uint64_t));
            k->n -= drop;
            k->acked -= drop;
            assert_true(k->n < 4096);
        }
        k->seed[k->n] = r->seed;
        k->size[k->n] = r->size;
        k->n++;
        break;
    }
    case R_PUT_ACK: {
        kstate *k = &g_keys[r->key];
        for (int i = k->n - 1; i >= 0; i--)
            if (k->seed[i] == r->seed) {
                k->acked = i;
                break;
            }
        break;
    }
    default:
        fail_msg("bad record type %u", r->type);
    }
}

/* 1 if the file at path exists with exactly size bytes of content seed,
 * 0 if absent, 2 if it exists and is empty; fails on anything else. */
static int file_state(vfs *v, const char *path, uint64_t seed, uint64_t size, bool allow_empty,
                      bool allow_zeros)
{
    vfs_attr a;
    int rc = vfs_resolve(v, NULL, path, 0, &a);
    if (rc == -ENOENT)
        return 0;
    ASSERT_OK(rc);
    if (a.size == 0 && allow_empty)
        return 2;
    if (a.size != size)
        fail_msg("%s: size %llu, want %llu", path, (unsigned long long)a.size,
                 (unsigned long long)size);
    uint8_t *got;
    assert_int_equal(vt_get_file(v, path, &got), size);
    uint8_t *want = nb_xmalloc(size + 1);
    vt_fill(seed, want, size);
    for (size_t i = 0; i < size; i++)
        if (got[i] != want[i] && !(allow_zeros && got[i] == 0))
            fail_msg("%s: contents differ from what was written at byte %zu", path, i);
    free(got);
    free(want);
    return 1;
}

static void verify(vfs *v)
{
    char p1[64], p2[64];
    for (size_t i = 0; i < g_nfiles; i++) {
        fstate *f = &g_files[i];
        snprintf(p1, sizeof p1, "c/f%llu", (unsigned long long)f->id);
        snprintf(p2, sizeof p2, "c/r%llu", (unsigned long long)f->id);
        /* Before its ack a file may be there empty (created, not yet
         * published) or whole (published), never partly written. */
        bool may_be_empty = !f->created || f->kv_lost;
        int s1 = file_state(v, p1, f->seed, f->size, may_be_empty, f->maybe_lost);
        int s2 = file_state(v, p2, f->seed, f->size, may_be_empty, f->maybe_lost);
        if (!f->created) {
            if (s2)
                fail_msg("file %llu: renamed before its create was acknowledged",
                         (unsigned long long)f->id);
        } else if (f->unlinked) {
            if (s1 || s2)
                fail_msg("file %llu: unlink was acknowledged but it exists",
                         (unsigned long long)f->id);
        } else if (f->renamed) {
            if (s1)
                fail_msg("file %llu: rename was acknowledged but the old name exists",
                         (unsigned long long)f->id);
        } else if (!s1 && !s2 && !f->kv_lost) {
            fail_msg("file %llu: create+fsync was acknowledged but it is gone",
                     (unsigned long long)f->id);
        }
    }
    for (int k = 0; k < NKEYS; k++) {
        kstate *ks = &g_keys[k];
        char path[64];
        snprintf(path, sizeof path, "bkt/dir%d/k%d", k % 3, k);
        vfs_attr a;
        int rc = vfs_resolve(v, NULL, path, 0, &a);
        if (rc == -ENOENT || rc == -ENOTDIR) {
            if (ks->acked >= 0)
                fail_msg("key %d: a PUT was acknowledged but the object is gone", k);
            continue;
        }
        ASSERT_OK(rc);
        uint8_t *got;
        size_t n = vt_get_file(v, path, &got);
        bool ok = false;
        uint8_t *want = nb_xmalloc(MAX_FILE);
        for (int i = ks->acked >= 0 ? ks->acked : 0; i < ks->n && !ok; i++) {
            if (ks->size[i] != n)
                continue;
            vt_fill(ks->seed[i], want, n);
            ok = memcmp(want, got, n) == 0;
        }
        int older = -1;
        for (int i = 0; !ok && i < ks->n && older < 0; i++) {
            if (ks->size[i] != n)
                continue;
            vt_fill(ks->seed[i], want, n);
            if (memcmp(want, got, n) == 0)
                older = i;
        }
        free(want);
        free(got);
        if (!ok)
            fail_msg("key %d: the object (%zu bytes) is no version begun since the last ack "
                     "(acked %d of %d begun; it matches version %d)",
                     k, n, ks->acked, ks->n, older);
    }
}

/* Simulates a power loss under ordered write-back: every block put
 * without sync whose sync had not returned is gone. Returns the blocks
 * deleted; truncates the log. */
static uint64_t lose_unsynced(const char *dir, const char *log)
{
    FILE *fp = fopen(log, "r");
    if (!fp)
        return 0;
    typedef struct {
        uint64_t id;
        uint32_t b;
        bool synced;
    } lk;
    lk *t = NULL;
    size_t n = 0, cap = 0;
    char what;
    uint64_t id;
    uint32_t b;
    while (fscanf(fp, " %c %" SCNu64 " %" SCNu32, &what, &id, &b) == 3) {
        size_t i = n;
        while (i-- > 0 && !(t[i].id == id && t[i].b == b))
            ;
        if (i == SIZE_MAX) {
            if (n == cap) {
                cap = cap ? cap * 2 : 256;
                t = nb_xrealloc(t, cap * sizeof(*t));
            }
            i = n++;
            t[i].id = id;
            t[i].b = b;
        }
        t[i].synced = what == 'S';
    }
    fclose(fp);
    assert_int_equal(truncate(log, 0), 0);
    char *bdir = nb_xasprintf("%s/blocks", dir);
    data_bs *bs;
    ASSERT_OK(data_bs_open_dir(bdir, &bs));
    uint64_t lost = 0;
    for (size_t i = 0; i < n; i++) {
        data_key k = {.slice_id = t[i].id, .block = t[i].b};
        if (!t[i].synced && data_bs_delete(bs, k) == 0)
            lost++;
    }
    data_bs_close(bs);
    free(bdir);
    free(t);
    return lost;
}

/* The last size of each nkv file a power loss keeps (dev, ino). */
typedef struct kvcut {
    uint64_t dev, ino, size;
} kvcut;
static kvcut *g_cuts;
static size_t g_ncuts;
static uint64_t g_cut_bytes;

static int cut_one(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type != FTW_F)
        return 0;
    for (size_t i = 0; i < g_ncuts; i++)
        if (g_cuts[i].dev == (uint64_t)st->st_dev && g_cuts[i].ino == (uint64_t)st->st_ino &&
            (uint64_t)st->st_size > g_cuts[i].size) {
            g_cut_bytes += (uint64_t)st->st_size - g_cuts[i].size;
            assert_int_equal(truncate(path, (off_t)g_cuts[i].size), 0);
        }
    return 0;
}

/* Simulates a power loss for the metadata: every file nkv wrote is cut
 * back to what its last sync covered (0 if it was never synced). Returns
 * the bytes cut; truncates the log. */
static uint64_t lose_unsynced_kv(const char *dir, const char *log)
{
    FILE *fp = fopen(log, "r");
    if (!fp)
        return 0;
    char what;
    uint64_t dev, ino, size;
    size_t cap = 0;
    g_ncuts = 0;
    while (fscanf(fp, " %c %" SCNu64 " %" SCNu64 " %" SCNu64, &what, &dev, &ino, &size) == 4) {
        size_t i = 0;
        while (i < g_ncuts && !(g_cuts[i].dev == dev && g_cuts[i].ino == ino))
            i++;
        if (i == g_ncuts) {
            if (g_ncuts == cap) {
                cap = cap ? cap * 2 : 64;
                g_cuts = nb_xrealloc(g_cuts, cap * sizeof(*g_cuts));
            }
            g_ncuts++;
        }
        g_cuts[i] = (kvcut){dev, ino, what == 'O' ? 0 : size};
    }
    fclose(fp);
    assert_int_equal(truncate(log, 0), 0);
    /* only the metadata directory: inode numbers of files nkv deleted may
     * belong to block files by now */
    char *mdir = nb_xasprintf("%s/meta", dir);
    g_cut_bytes = 0;
    assert_int_equal(nftw(mdir, cut_one, 16, FTW_PHYS), 0);
    free(mdir);
    free(g_cuts);
    g_cuts = NULL;
    g_ncuts = 0;
    return g_cut_bytes;
}

static void test_crash(void **state)
{
    (void)state;
    g_dir = nb_test_dir("vfs_crash");
    /* outside g_dir: the store must not see it */
    g_log = nb_xasprintf("%s.synclog", g_dir);
    setenv("NB_DATA_SYNC_LOG", g_log, 1);
    g_kvlog = nb_xasprintf("%s.kvsynclog", g_dir);
    setenv("NB_KV_SYNC_LOG", g_kvlog, 1);
    for (int k = 0; k < NKEYS; k++)
        g_keys[k].acked = -1;
    /* the layout the child works in */
    vfs *v = vt_open(g_dir);
    ASSERT_OK(vfs_mkdir(v, NULL, VFS_ROOT_INO, "c", 0755, NULL));
    vfs_bucket b;
    memset(&b, 0, sizeof b);
    b.owner = "test";
    ASSERT_OK(vfs_bucket_create(v, NULL, "bkt", 0755, &b));
    vfs_close(v);

    const char *cs = getenv("NB_CRASH_CYCLES");
#ifdef NB_SANITIZED
    int cycles = cs ? atoi(cs) : 8;
    uint64_t min_ms = 200, span_ms = 800;
#else
    int cycles = cs ? atoi(cs) : 20;
    uint64_t min_ms = 30, span_ms = 400;
#endif
    uint64_t seed = nb_test_seed();
    uint64_t total_acks = 0, total_lost = 0, total_cut = 0;
    for (int cycle = 1; cycle <= cycles; cycle++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        uint64_t cseed = vt_rand(&seed);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            g_pipe = fds[1];
            child_main(cycle, cseed);
        }
        close(fds[1]);
        uint64_t deadline = nb_mono_ns() + (min_ms + vt_below(&seed, span_ms)) * NB_NS_PER_MS;
        rec r;
        size_t have = 0;
        bool child_gone = false;
        for (;;) {
            uint64_t now = nb_mono_ns();
            if (now >= deadline)
                break;
            struct pollfd pfd = {fds[0], POLLIN, 0};
            int pr = poll(&pfd, 1, (int)((deadline - now) / NB_NS_PER_MS) + 1);
            if (pr <= 0)
                continue;
            ssize_t n = read(fds[0], (uint8_t *)&r + have, sizeof r - have);
            if (n <= 0) {
                child_gone = true;
                break;
            }
            have += (size_t)n;
            if (have == sizeof r) {
                apply(&r);
                total_acks++;
                have = 0;
            }
        }
        kill(pid, SIGKILL);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        if (child_gone || !(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
            fail_msg("cycle %d: the child died on its own (status %d)", cycle, st);
        /* what it acknowledged before dying is still in the pipe */
        ssize_t n;
        while ((n = read(fds[0], (uint8_t *)&r + have, sizeof r - have)) > 0) {
            have += (size_t)n;
            if (have == sizeof r) {
                apply(&r);
                total_acks++;
                have = 0;
            }
        }
        close(fds[0]);
        if (!vt_disk_backend() && cycle % 2 == 0) {
            total_lost += lose_unsynced(g_dir, g_log);
            for (size_t i = 0; i < g_nfiles; i++)
                if (!g_files[i].synced)
                    g_files[i].maybe_lost = true;
        }
        if (cycle % 2 == 0) {
            total_cut += lose_unsynced_kv(g_dir, g_kvlog);
            /* an acknowledged rename or unlink was synced with the file */
            for (size_t i = 0; i < g_nfiles; i++)
                if (!g_files[i].synced && !g_files[i].renamed && !g_files[i].unlinked)
                    g_files[i].kv_lost = true;
        } else if (truncate(g_kvlog, 0) != 0) {
            assert_int_equal(errno, ENOENT); /* not the nkv engine: no log */
        }
        int rc = vfs_fsck(g_dir, false, stderr);
        if (rc != 0)
            fail_msg("cycle %d: fsck after SIGKILL: %s", cycle, nb_strerror(rc));
        v = vt_open(g_dir);
        verify(v);
        vfs_close(v);
    }
    fprintf(stderr,
            "%d cycles, %llu acknowledged operations checked, %llu unsynced blocks lost and "
            "%llu unsynced metadata bytes cut in simulated power losses\n",
            cycles, (unsigned long long)total_acks, (unsigned long long)total_lost,
            (unsigned long long)total_cut);
    /* a final repair pass frees whatever the kills left behind */
    ASSERT_OK(vfs_fsck(g_dir, true, stderr));
    ASSERT_OK(vfs_fsck(g_dir, false, stderr));
    free(g_files);
    g_files = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (g_dir)
        nb_test_rmdir(g_dir);
    free(g_dir);
    if (g_log)
        unlink(g_log);
    free(g_log);
    if (g_kvlog)
        unlink(g_kvlog);
    free(g_kvlog);
    return rc;
}
