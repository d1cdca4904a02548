/*
 * Crash test: a child writes batches (unique keys per batch plus a shared
 * "last" key) and reports each acknowledged batch over a pipe; the parent
 * SIGKILLs it at a random moment, reopens the database and checks that
 * every acknowledged batch is entirely present and that no batch is partly
 * visible. NB_CRASH_CYCLES sets the number of cycles (default 50).
 */
#include <signal.h>
#include <sys/wait.h>

#include "nkv/nkv.h"

#include "test.h"

#define PER_BATCH_MAX 12

static int batch_size(int b)
{
    return 1 + (b * 7) % PER_BATCH_MAX;
}

static void bkey(int b, int j, char *k)
{
    snprintf(k, 32, "b%08d-%02d", b, j);
}

static size_t bval(int b, int j, char *v)
{
    size_t len = 20 + (size_t)((b * 31 + j * 17) % 400);
    for (size_t i = 0; i < len; i++)
        v[i] = (char)('a' + (b + j + (int)i) % 26);
    return len;
}

static nkv_options opts(void)
{
    nkv_options o;
    nkv_options_init(&o);
    o.write_buffer_size = 128 << 10;
    o.target_file_size = 128 << 10;
    o.max_bytes_for_level_base = 512 << 10;
    return o;
}

static NB_NORETURN void child(const char *dir, int first, int wfd, uint64_t seed)
{
    nkv_options o = opts();
    nkv_db *db;
    if (nkv_open(&o, dir, &db) != 0)
        _exit(3);
    nkv_batch *b;
    nkv_batch_new(&b);
    char k[32], v[512];
    uint64_t r = seed | 1;
    for (int id = first;; id++) {
        nkv_batch_clear(b);
        for (int j = 0; j < batch_size(id); j++) {
            bkey(id, j, k);
            size_t vl = bval(id, j, v);
            nkv_batch_put(b, k, strlen(k), v, vl);
        }
        snprintf(v, sizeof v, "%d", id);
        nkv_batch_put(b, "last", 4, v, strlen(v));
        r ^= r << 13;
        r ^= r >> 7;
        r ^= r << 17;
        nkv_write_options wo = {.sync = (r % 4) == 0};
        if (nkv_write(db, &wo, b) != 0)
            _exit(4);
        if (write(wfd, &id, sizeof id) != sizeof id)
            _exit(5);
    }
}

/* Returns the highest batch id present; checks that batches are whole. */
static int verify(const char *dir, int acked)
{
    nkv_options o = opts();
    nkv_db *db;
    ASSERT_OK(nkv_open(&o, dir, &db));
    nkv_iter *it;
    ASSERT_OK(nkv_iter_new(db, NULL, &it));
    int cur = -1, count = 0, maxid = -1;
    char want[32], v[512];
    for (nkv_iter_seek(it, "b", 1); nkv_iter_valid(it); nkv_iter_next(it)) {
        size_t kl, vl;
        const char *key = nkv_iter_key(it, &kl);
        const char *val = nkv_iter_value(it, &vl);
        if (kl == 4 && !memcmp(key, "last", 4))
            break;
        int id, j;
        if (sscanf(key, "b%08d-%02d", &id, &j) != 2)
            fail_msg("unexpected key %.*s", (int)kl, key);
        if (id != cur) {
            if (cur >= 0 && count != batch_size(cur))
                fail_msg("batch %d partly visible: %d of %d keys", cur, count, batch_size(cur));
            if (id != cur + 1 && !(cur < 0 && id == 0))
                fail_msg("batch %d missing (next present %d)", cur + 1, id);
            cur = id;
            count = 0;
        }
        bkey(id, j, want);
        size_t wl = bval(id, j, v);
        if (j != count || wl != vl || memcmp(v, val, vl))
            fail_msg("batch %d key %d damaged", id, j);
        count++;
        maxid = id;
    }
    ASSERT_OK(nkv_iter_status(it));
    nkv_iter_free(it);
    if (cur >= 0 && count != batch_size(cur))
        fail_msg("batch %d partly visible: %d of %d keys", cur, count, batch_size(cur));
    if (maxid < acked)
        fail_msg("acknowledged batch %d lost (max present %d)", acked, maxid);
    void *lv;
    size_t ll;
    if (maxid >= 0) {
        ASSERT_OK(nkv_get(db, NULL, "last", 4, &lv, &ll));
        char buf[32];
        snprintf(buf, sizeof buf, "%d", maxid);
        if (ll != strlen(buf) || memcmp(lv, buf, ll))
            fail_msg("\"last\" is %.*s, want %s", (int)ll, (char *)lv, buf);
        nkv_free(lv);
    }
    ASSERT_OK(nkv_close(db));
    return maxid;
}

static void test_crash(void **state)
{
    (void)state;
    const char *env = getenv("NB_CRASH_CYCLES");
    int cycles = env ? atoi(env) : 50;
    uint64_t seed = nb_test_seed();
    srand((unsigned)seed);
    char *dir = nb_test_dir("nkv_crash");
    int next = 0;
    long total_acked = 0;
    for (int c = 0; c < cycles; c++) {
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        if (pid == 0) {
            close(fds[0]);
            child(dir, next, fds[1], seed + (uint64_t)c);
        }
        close(fds[1]);
        uint64_t deadline = nb_mono_ns() + (uint64_t)(5 + rand() % 150) * NB_NS_PER_MS;
        int acked = next - 1, id;
        /* Read acks until the deadline, then kill without draining. */
        while (nb_mono_ns() < deadline) {
            ssize_t r = read(fds[0], &id, sizeof id);
            if (r != sizeof id)
                break;
            acked = id;
        }
        kill(pid, SIGKILL);
        /* Acks already in the pipe were acknowledged before the kill. */
        while (read(fds[0], &id, sizeof id) == sizeof id)
            acked = id;
        close(fds[0]);
        int st;
        waitpid(pid, &st, 0);
        if (WIFEXITED(st))
            fail_msg("child exited with %d before the kill", WEXITSTATUS(st));
        int maxid = verify(dir, acked);
        total_acked += acked - next + 1;
        next = maxid + 1;
    }
    fprintf(stderr, "%d cycles, %ld batches acknowledged, %d present\n", cycles, total_acked, next);
    nb_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
