/*
 * Model-based randomized test: random puts (0 B to 300 KiB, some 4 MiB),
 * reads at random offsets, deletes, exists and refs against an in-memory
 * model, with a reopen every few hundred operations alternating the two
 * I/O paths. The engine is small, so ENOSPACE happens and must leave the
 * model unchanged. Replay a failure with NB_TEST_SEED.
 */
#include "disk_test.h"

#define IDS 200

typedef struct bstate {
    int present;
    uint64_t ver;
    size_t len;
} bstate;

static bstate model[IDS];

static void check_all(disk_env *e)
{
    uint8_t *b = malloc(4u << 20);
    int present = 0;
    for (uint64_t id = 0; id < IDS; id++) {
        uint64_t len;
        int rc = disk_exists(e, dt_id(id), &len);
        if (!model[id].present) {
            ASSERT_RC(rc, NB_ENOTFOUND);
            continue;
        }
        present++;
        ASSERT_OK(rc);
        assert_int_equal(len, model[id].len);
        size_t got;
        ASSERT_OK(disk_read(e, dt_id(id), 0, len, b, &got));
        assert_int_equal(got, len);
        assert_true(dt_check(b, len, dt_id(id), model[id].ver));
    }
    disk_stats st;
    disk_stats_get(e, &st);
    assert_int_equal(st.blobs, (uint64_t)present);
    free(b);
}

static void test_model(void **state)
{
    (void)state;
    char *dir = nb_test_dir("disk_model");
    uint64_t rng = nb_test_seed();
    memset(model, 0, sizeof model);
    uint8_t *buf = malloc(4u << 20), *rd = malloc(4u << 20);
    int rounds = 12, ops = 500 / DT_SCALE;
    uint64_t ver = 0, enospc = 0;
    for (int round = 0; round < rounds; round++) {
        disk_options o;
        dt_opts(&o, round % 2 ? DISK_IO_URING : DISK_IO_POSIX,
                round % 2 ? DISK_DIRECT_AUTO : DISK_DIRECT_OFF);
        o.capacity = 24ull << 20;
        static const char *const files[] = {"data.0", "data.1"}; /* blobs over two */
        o.files = files;
        o.n_files = 2;
        o.initial_size = 2ull << 20; /* grows, across reopens */
        o.grow_step = 2ull << 20;
        o.wal_max_bytes = 8192;
        o.close_checkpoint = round % 3 != 0; /* sometimes reopen from the WAL */
        o.no_sync = round % 4 >= 2;          /* fsyncs are the crash tests' business */
        disk_env *e;
        ASSERT_OK(disk_open(&o, dir, &e));
        check_all(e);
        for (int i = 0; i < ops; i++) {
            uint64_t id = dt_rand(&rng) % IDS;
            unsigned what = (unsigned)(dt_rand(&rng) % 10);
            if (what < 4) {
                size_t len = (size_t)(dt_rand(&rng) % (300 * 1024));
                if (dt_rand(&rng) % 20 == 0)
                    len = 4u << 20;
                else if (dt_rand(&rng) % 10 == 0)
                    len = (size_t)(dt_rand(&rng) % 10);
                dt_fill(buf, len, dt_id(id), ++ver);
                int rc = disk_put(e, dt_id(id), buf, len);
                if (rc == NB_ENOSPACE) {
                    enospc++;
                    continue;
                }
                ASSERT_OK(rc);
                model[id] = (bstate){1, ver, len};
            } else if (what < 6) {
                int rc = disk_delete(e, dt_id(id));
                ASSERT_RC(rc, model[id].present ? 0 : NB_ENOTFOUND);
                model[id].present = 0;
            } else if (what < 9) {
                uint64_t off = model[id].len ? dt_rand(&rng) % (model[id].len + 1) : 0;
                size_t len = (size_t)(dt_rand(&rng) % (model[id].len + 100));
                size_t got;
                int rc = disk_read(e, dt_id(id), off, len, rd, &got);
                if (!model[id].present) {
                    ASSERT_RC(rc, NB_ENOTFOUND);
                    continue;
                }
                ASSERT_OK(rc);
                size_t want = model[id].len - off < len ? model[id].len - off : len;
                assert_int_equal(got, want);
                dt_fill(buf, model[id].len, dt_id(id), model[id].ver);
                assert_memory_equal(rd, buf + off, want);
            } else {
                disk_ref ref;
                int rc = disk_read_ref(e, dt_id(id), DISK_REF_VERIFY, &ref);
                ASSERT_RC(rc, model[id].present ? 0 : NB_ENOTFOUND);
                if (!rc) {
                    assert_int_equal(ref.len, model[id].len);
                    size_t got;
                    ASSERT_OK(nb_pread_full(ref.fd, rd, ref.len, (off_t)ref.off, &got));
                    assert_int_equal(nb_crc32c(0, rd, ref.len), ref.crc32c);
                    disk_unpin(e, &ref);
                }
            }
        }
        check_all(e);
        ASSERT_OK(disk_close(e));
    }
    fprintf(stderr, "model: %d rounds x %d ops, %llu puts refused with ENOSPACE\n", rounds, ops,
            (unsigned long long)enospc);
    char *argv[] = {"disk", "check", dir, NULL};
    assert_int_equal(disk_tool_main(3, argv), 0);
    free(buf);
    free(rd);
    nb_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
