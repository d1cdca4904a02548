/* Crash test: a child process writes slices through the data store and
 * reports each one on a pipe once data_writer_finish has returned; the
 * parent SIGKILLs it at a random moment, reopens the store and checks that
 * every acknowledged slice reads back intact, that the temporary files are
 * gone, and that the collector frees exactly the unacknowledged blocks. */
#include <errno.h>
#include <signal.h>
#include <sys/wait.h>

#include "data/data_int.h"
#include "disk/disk.h"

#include "data_test.h"

static int open_bs(const char *backend, const char *dir, data_bs **bs)
{
    if (strcmp(backend, "dir") == 0)
        return data_bs_open_dir(dir, bs);
    disk_options o;
    disk_options_init(&o);
    o.capacity = 256u << 20;
    return data_bs_open_disk(dir, &o, bs);
}

static uint64_t slice_len(uint64_t id)
{
    return 1 + (id * 2654435761u) % (6u << 20);
}

/* The child: writes slices first_id, first_id+1, ... until killed. */
static void child_main(const char *backend, const char *dir, int fd, uint64_t first_id)
{
    data_bs *bs;
    data_store *s;
    if (open_bs(backend, dir, &bs) != 0)
        _exit(3);
    data_store_options o = {0};
    o.write_threads = 3;
    if (data_store_open(bs, &o, &s) != 0)
        _exit(4);
    uint8_t *buf = nb_xmalloc(6u << 20);
    for (uint64_t id = first_id;; id++) {
        uint64_t len = slice_len(id);
        dt_fill(id, 0, buf, len);
        int rc = data_slice_write(s, id, buf, len);
        if (rc == NB_ENOSPACE || rc == -ENOSPC) {
            /* A fast machine can fill the small test store before the
             * kill comes: stop writing and wait for it. */
            for (;;)
                pause();
        }
        if (rc != 0)
            _exit(5);
        if (write(fd, &id, sizeof id) != sizeof id)
            _exit(6);
    }
}

typedef struct acked {
    uint64_t *ids;
    size_t n;
} acked;

static int live_fn(void *arg, data_live *l)
{
    acked *a = arg;
    for (size_t i = 0; i < a->n; i++)
        data_live_add(l, a->ids[i], data_slice_blocks(slice_len(a->ids[i])));
    return 0;
}

static void crash_cycles(const char *backend)
{
    uint64_t seed = nb_test_seed();
    char name[64];
    snprintf(name, sizeof name, "data_crash_%s", backend);
    char *dir = nb_test_dir(name);
    nb_log_set_level(NB_LOG_WARN);
    acked a = {NULL, 0};
    size_t total_acked = 0;
    uint64_t next_id = 1;
    int cycles = dt_sanitized() ? 3 : 5;
    for (int c = 0; c < cycles; c++) {
        int pfd[2];
        assert_int_equal(pipe(pfd), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(pfd[0]);
            child_main(backend, dir, pfd[1], next_id);
        }
        close(pfd[1]);
        /* The disk engine takes longer to open (it preallocates). */
        uint64_t base_ms = strcmp(backend, "dir") == 0 ? 50 : 300;
        if (dt_sanitized())
            base_ms *= 4;
        nb_sleep_ns((base_ms + dt_below(&seed, 500)) * NB_NS_PER_MS);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (!WIFSIGNALED(status))
            fail_msg("cycle %d: the writer exited with %d before the kill", c,
                     WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        uint64_t id;
        uint64_t last = next_id - 1;
        while (read(pfd[0], &id, sizeof id) == sizeof id) {
            a.ids = nb_xrealloc(a.ids, (a.n + 1) * sizeof *a.ids);
            a.ids[a.n++] = id;
            last = id;
        }
        close(pfd[0]);
        /* The slice in progress at the kill (and perhaps the next) was
         * never acknowledged: skip their ids. */
        next_id = last + 3;

        data_bs *bs;
        data_store *s;
        ASSERT_OK(open_bs(backend, dir, &bs));
        ASSERT_OK(data_store_open(bs, NULL, &s));
        /* Every acknowledged slice is intact. */
        uint8_t *got = nb_xmalloc(6u << 20);
        uint8_t *want = nb_xmalloc(6u << 20);
        for (size_t i = 0; i < a.n; i++) {
            uint64_t len = slice_len(a.ids[i]);
            data_slice sl = {a.ids[i], 0, (uint32_t)len, 0, NULL};
            ASSERT_OK(data_chunk_read(s, NULL, &sl, 1, 0, len, got));
            dt_fill(a.ids[i], 0, want, len);
            if (memcmp(got, want, len) != 0)
                fail_msg("cycle %d: acknowledged slice %llu differs", c,
                         (unsigned long long)a.ids[i]);
        }
        free(got);
        free(want);
        /* Leftovers go; acknowledged blocks stay. */
        data_collect_opts co = {.grace_ns = 1, .wait_ns = NB_NS_PER_SEC};
        data_collect_report rep;
        ASSERT_OK(data_collect(s, live_fn, &a, &co, &rep));
        ASSERT_OK(data_collect(s, live_fn, &a, &co, &rep));
        assert_int_equal(rep.blocks_freed, 0);
        assert_int_equal(rep.blocks_seen, rep.blocks_live);
        uint64_t want_blocks = 0;
        for (size_t i = 0; i < a.n; i++)
            want_blocks += data_slice_blocks(slice_len(a.ids[i]));
        assert_int_equal(rep.blocks_live, want_blocks);
        /* Keep the store small: drop all but the newest acknowledged
         * slices, as vfs would after an overwrite. */
        while (a.n > 4) {
            data_slice_release(s, a.ids[0], slice_len(a.ids[0]));
            memmove(a.ids, a.ids + 1, (a.n - 1) * sizeof *a.ids);
            a.n--;
            total_acked++;
        }
        data_store_close(s);
        if (strcmp(backend, "dir") == 0) {
            char *cmd = nb_xasprintf("test -z \"$(ls -A '%s/tmp')\"", dir);
            assert_int_equal(system(cmd), 0);
            free(cmd);
        }
    }
    fprintf(stderr, "crash (%s): %d cycles, %zu acknowledged slices\n", backend, cycles,
            total_acked + a.n);
    free(a.ids);
    nb_test_rmdir(dir);
    free(dir);
}

static void test_crash_dir(void **state)
{
    (void)state;
    crash_cycles("dir");
}

static void test_crash_disk(void **state)
{
    (void)state;
    crash_cycles("disk");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash_dir),
        cmocka_unit_test(test_crash_disk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
