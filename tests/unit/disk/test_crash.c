/*
 * SIGKILL crash test: a child process writes and deletes blobs from two
 * threads and reports over a pipe each operation before it starts (intent)
 * and when it is acknowledged. The parent kills it at a random moment,
 * reopens the engine and checks that every acknowledged blob is there byte
 * for byte, every acknowledged delete stayed deleted, and an operation in
 * flight either happened entirely or not at all. Cycles accumulate on the
 * same directory. NB_CRASH_CYCLES sets the number (default 30).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/wait.h>

#include "disk_test.h"

#define THREADS    2
#define IDS_PER_TH 40

typedef struct msg {
    uint8_t kind; /* 'I' intent, 'A' acknowledged */
    uint8_t del;
    uint16_t thread;
    uint32_t len;
    uint64_t id;
    uint64_t ver;
} msg;

typedef struct bstate {
    int present;
    uint64_t ver;
    uint32_t len;
} bstate;

typedef struct slot {
    bstate acked;
    int pending;
    bstate pend;
} slot;

static slot model[THREADS * IDS_PER_TH];
static int pipe_w;
static uint64_t cycle_no;
static const char *dir;

static void send_msg(const msg *m)
{
    if (write(pipe_w, m, sizeof *m) != (ssize_t)sizeof *m)
        _exit(3);
}

static void *child_thread(void *arg)
{
    disk_env *e = arg;
    static _Atomic int next_thread;
    int t = next_thread++;
    uint64_t rng = cycle_no * 1000003 + (uint64_t)t;
    uint8_t *buf = malloc(1u << 20);
    for (uint64_t n = 0;; n++) {
        uint64_t id = (uint64_t)t * IDS_PER_TH + dt_rand(&rng) % IDS_PER_TH;
        msg m = {.kind = 'I', .thread = (uint16_t)t, .id = id, .ver = (cycle_no << 32) | n};
        m.del = dt_rand(&rng) % 5 == 0;
        uint32_t r = (uint32_t)dt_rand(&rng);
        m.len = r % 16 == 0 ? (1u << 20) - r % 4096 : r % 30000;
        send_msg(&m);
        int rc;
        if (m.del) {
            rc = disk_delete(e, dt_id(id));
        } else {
            dt_fill(buf, m.len, dt_id(id), m.ver);
            rc = disk_put(e, dt_id(id), buf, m.len);
        }
        if (rc == 0 || (m.del && rc == NB_ENOTFOUND)) {
            m.kind = 'A';
            send_msg(&m);
        } else {
            _exit(4);
        }
    }
    return NULL;
}

static void child(void)
{
    disk_options o;
    dt_opts(&o, DISK_IO_AUTO, DISK_DIRECT_AUTO);
    o.capacity = 48ull << 20;
    o.max_blob = 1u << 20;
    o.wal_max_bytes = 4096; /* checkpoints happen while we are killed */
    disk_env *e;
    if (disk_open(&o, dir, &e) != 0)
        _exit(5);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        pthread_create(&th[i], NULL, child_thread, e);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    _exit(0);
}

static void apply_msg(const msg *m)
{
    slot *s = &model[m->id];
    bstate b = {.present = !m->del, .ver = m->ver, .len = m->len};
    if (m->kind == 'I') {
        s->pending = 1;
        s->pend = b;
    } else {
        s->pending = 0;
        s->acked = b;
    }
}

static int holds(disk_env *e, uint64_t id, const bstate *b, uint64_t len)
{
    if (!b->present || b->len != len)
        return 0;
    uint8_t *buf = malloc(len + 1);
    size_t got;
    ASSERT_OK(disk_read(e, dt_id(id), 0, len, buf, &got));
    int ok = got == len && dt_check(buf, len, dt_id(id), b->ver);
    free(buf);
    return ok;
}

static void verify(void)
{
    disk_options o;
    dt_opts(&o, DISK_IO_AUTO, DISK_DIRECT_AUTO);
    o.capacity = 0; /* the one the writer recorded */
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    for (uint64_t id = 0; id < THREADS * IDS_PER_TH; id++) {
        slot *s = &model[id];
        uint64_t len;
        int rc = disk_exists(e, dt_id(id), &len);
        if (rc == NB_ENOTFOUND) {
            if (s->acked.present && !(s->pending && !s->pend.present))
                fail_msg("cycle %llu: acked blob %llu ver %llx lost", (unsigned long long)cycle_no,
                         (unsigned long long)id, (unsigned long long)s->acked.ver);
            if (s->pending && !s->pend.present)
                s->acked = s->pend;
        } else {
            ASSERT_OK(rc);
            if (s->pending && holds(e, id, &s->pend, len))
                s->acked = s->pend;
            else if (!holds(e, id, &s->acked, len))
                fail_msg("cycle %llu: blob %llu holds neither acked nor in-flight content",
                         (unsigned long long)cycle_no, (unsigned long long)id);
        }
        s->pending = 0;
    }
    ASSERT_OK(disk_close(e));
}

static void test_sigkill(void **state)
{
    (void)state;
    char *d = nb_test_dir("disk_crash");
    dir = d;
    uint64_t seed = nb_test_seed();
    const char *env = getenv("NB_CRASH_CYCLES");
    int cycles = env ? atoi(env) : 30;
    uint64_t acks = 0;
    for (int c = 0; c < cycles; c++) {
        cycle_no = seed + (uint64_t)c;
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            pipe_w = p[1];
            child();
        }
        close(p[1]);
        uint64_t rng = cycle_no;
        nb_sleep_ns((10 + dt_rand(&rng) % 150) * NB_NS_PER_MS * (uint64_t)DT_SCALE);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        if (!WIFSIGNALED(status))
            fail_msg("writer exited on its own with status %d", WEXITSTATUS(status));
        msg m;
        ssize_t n;
        while ((n = read(p[0], &m, sizeof m)) == (ssize_t)sizeof m) {
            apply_msg(&m);
            acks += m.kind == 'A';
        }
        close(p[0]);
        verify();
    }
    fprintf(stderr, "sigkill: %d cycles, %llu acknowledged operations verified\n", cycles,
            (unsigned long long)acks);
    assert_true(acks > 0);
    nb_test_rmdir(d);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
