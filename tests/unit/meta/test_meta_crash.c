/*
 * test_meta_crash.c — meta under SIGKILL.
 *
 * Each cycle forks a child that opens the store and runs two threads of
 * namespace operations on names of their own (create with a published
 * slice, rename, unlink, open-unlink-hold), reporting every acknowledged
 * operation through a pipe. The parent kills the child with SIGKILL at a
 * random moment, reopens the store and requires: meta_check finds nothing
 * (batches were atomic, counters add up, orphans were reclaimed), every
 * acknowledged operation is visible (the one in flight may or may not
 * be), and new ids are above every acknowledged one.
 *
 * NB_CRASH_CYCLES overrides the number of cycles (default 8; 4 under
 * sanitizers).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "meta/meta.h"

#include "meta_test.h"

enum { OP_CREATE = 1, OP_RENAME = 2, OP_UNLINK = 3, OP_ORPHAN = 4 };

typedef struct ack {
    uint8_t thread;
    uint8_t op;
    uint16_t pad;
    uint32_t item;
    uint64_t id; /* slice id published with a create */
} ack;

#define MAXITEMS 100000

typedef struct child_ctx {
    meta *m;
    int fd;
    int thread;
    uint64_t dir;
    int cycle;
} child_ctx;

static void send_ack(int fd, int t, int op, uint32_t item, uint64_t id)
{
    ack a = {.thread = (uint8_t)t, .op = (uint8_t)op, .item = item, .id = id};
    if (write(fd, &a, sizeof(a)) != (ssize_t)sizeof(a))
        _exit(3);
}

static void *child_thread(void *arg)
{
    child_ctx *c = arg;
    char f[32], g[32];
    for (uint32_t i = 0; i < MAXITEMS; i++) {
        snprintf(f, sizeof(f), "c%df%u", c->cycle, i);
        snprintf(g, sizeof(g), "c%dg%u", c->cycle, i);
        meta_attr a;
        if (meta_create(c->m, NULL, c->dir, f, 0644, &a) != 0)
            _exit(4);
        uint64_t id;
        if (meta_id_alloc(c->m, META_ID_SLICE, 1, &id) != 0)
            _exit(4);
        meta_write w = {.chunk = 0, .slice = {.id = id, .size = 100, .len = 100, .pos = 0}};
        if (meta_publish(c->m, a.ino, &w, 1, 0, 0, 0, nb_slice_of(NULL, 0), 0, NULL) != 0)
            _exit(4);
        if (i % 4 == 3) {
            /* Keep it open and unlink it: an orphan the crash leaves. */
            if (meta_unlink(c->m, NULL, c->dir, f) != 0)
                _exit(4);
            send_ack(c->fd, c->thread, OP_ORPHAN, i, id);
            continue;
        }
        if (meta_release(c->m, a.ino) != 0)
            _exit(4);
        send_ack(c->fd, c->thread, OP_CREATE, i, id);
        if (i % 3 == 1) {
            if (meta_rename(c->m, NULL, c->dir, f, c->dir, g, 0) != 0)
                _exit(4);
            send_ack(c->fd, c->thread, OP_RENAME, i, 0);
        } else if (i % 5 == 2) {
            if (meta_unlink(c->m, NULL, c->dir, f) != 0)
                _exit(4);
            send_ack(c->fd, c->thread, OP_UNLINK, i, 0);
        }
    }
    return NULL;
}

static void child_main(const char *dir, int fd, int cycle, uint64_t dirs[2])
{
    meta *m = NULL;
    if (meta_open(dir, opts(), &m) != 0)
        _exit(2);
    send_ack(fd, 0, 0, 0, 0); /* open: the parent starts its clock */
    child_ctx c[2];
    pthread_t th[2];
    for (int t = 0; t < 2; t++) {
        c[t] = (child_ctx){.m = m, .fd = fd, .thread = t, .dir = dirs[t], .cycle = cycle};
        pthread_create(&th[t], NULL, child_thread, &c[t]);
    }
    for (int t = 0; t < 2; t++)
        pthread_join(th[t], NULL);
    _exit(0);
}

/* What the parent knows of one item: 0 none, 'f', 'g' or '-' (gone). */
typedef struct item {
    char state;
    char next; /* a state the in-flight operation may have reached */
} item;

static void expect_item(meta *m, uint64_t dir, int cycle, uint32_t i, const item *it)
{
    char f[32], g[32];
    snprintf(f, sizeof(f), "c%df%u", cycle, i);
    snprintf(g, sizeof(g), "c%dg%u", cycle, i);
    int hf = meta_lookup(m, NULL, dir, f, NULL) == 0;
    int hg = meta_lookup(m, NULL, dir, g, NULL) == 0;
    char now = hf && !hg ? 'f' : hg && !hf ? 'g' : !hf && !hg ? '-' : '?';
    if (now != it->state && now != it->next)
        fail_msg("cycle %d item %u: state %c, acknowledged %c (or %c)", cycle, i, now, it->state,
                 it->next ? it->next : it->state);
}

static void test_crash(void **state)
{
    (void)state;
    char *dir = nb_test_dir("meta_crash");
    uint64_t seed = nb_test_seed();
    srand((unsigned)seed);
    int cycles = 8;
#ifdef NB_SANITIZED
    cycles = 4;
#endif
    if (getenv("NB_CRASH_CYCLES"))
        cycles = atoi(getenv("NB_CRASH_CYCLES"));
    meta *m = NULL;
    meta_attr a;
    uint64_t dirs[2];
    ASSERT_OK(meta_open(dir, opts(), &m));
    ASSERT_OK(meta_mkdir(m, NULL, META_ROOT_INO, "t0", 0755, &a));
    dirs[0] = a.ino;
    ASSERT_OK(meta_mkdir(m, NULL, META_ROOT_INO, "t1", 0755, &a));
    dirs[1] = a.ino;
    meta_close(m);
    item *items[2];
    items[0] = nb_xcalloc(MAXITEMS, sizeof(item));
    items[1] = nb_xcalloc(MAXITEMS, sizeof(item));

    for (int cycle = 0; cycle < cycles; cycle++) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(p[0]);
            child_main(dir, p[1], cycle, dirs);
        }
        close(p[1]);
        ack k;
        if (read(p[0], &k, sizeof(k)) != (ssize_t)sizeof(k) || k.op != 0)
            fail_msg("cycle %d: the child did not open the store", cycle);
        nb_sleep_ns((uint64_t)(5 + rand() % 150) * NB_NS_PER_MS);
        kill(pid, SIGKILL);
        int st;
        waitpid(pid, &st, 0);
        if (!WIFSIGNALED(st))
            fail_msg("child ended by itself (status %d)", st);

        /* Replay the acknowledgements. */
        memset(items[0], 0, MAXITEMS * sizeof(item));
        memset(items[1], 0, MAXITEMS * sizeof(item));
        uint32_t last[2] = {0, 0};
        int any[2] = {0, 0};
        uint64_t max_id = 0;
        size_t nacks = 0;
        while (read(p[0], &k, sizeof(k)) == (ssize_t)sizeof(k)) {
            assert_true(k.thread < 2 && k.item < MAXITEMS);
            item *it = &items[k.thread][k.item];
            it->state = k.op == OP_CREATE ? 'f' : k.op == OP_RENAME ? 'g' : '-';
            last[k.thread] = k.item;
            any[k.thread] = 1;
            if (k.id > max_id)
                max_id = k.id;
            nacks++;
        }
        close(p[0]);

        ASSERT_OK(meta_open(dir, opts(), &m));
        meta_check_report r;
        ASSERT_OK(meta_check(m, 0, NULL, NULL, &r));
        if (r.problems)
            fail_msg("cycle %d: meta_check found %llu problems", cycle,
                     (unsigned long long)r.problems);
        for (int t = 0; t < 2; t++) {
            if (!any[t])
                continue;
            for (uint32_t i = 0; i <= last[t]; i++) {
                item *it = &items[t][i];
                if (i == last[t] && it->state == 'f')
                    it->next = i % 3 == 1 ? 'g' : i % 5 == 2 ? '-' : 0;
                expect_item(m, dirs[t], cycle, i, it);
            }
        }
        uint64_t id;
        ASSERT_OK(meta_id_alloc(m, META_ID_SLICE, 1, &id));
        assert_true(id > max_id);
        meta_close(m);
        if (getenv("NB_CRASH_VERBOSE"))
            fprintf(stderr, "cycle %d: %zu acknowledgements, %llu inodes\n", cycle, nacks,
                    (unsigned long long)r.inodes);
    }
    free(items[0]);
    free(items[1]);
    nb_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    nb_log_set_level(NB_LOG_OFF);
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_crash)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
