/* nkv_tool on a real database: get, scan, stats, check, sst, manifest,
 * repair; exit codes and a few output lines. argv[1] is the tool. */
#include <sys/wait.h>

#include "nkv/nkv.h"

#include "test.h"

static const char *tool;

static int run(const char *args, char *out, size_t outlen)
{
    char *cmd = nb_xasprintf("%s %s 2>&1", tool, args);
    FILE *p = popen(cmd, "r");
    free(cmd);
    size_t n = fread(out, 1, outlen - 1, p);
    out[n] = 0;
    int st = pclose(p);
    return WEXITSTATUS(st);
}

static void test_tool(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nkv_tool");
    nkv_db *db;
    ASSERT_OK(nkv_open(NULL, dir, &db));
    char k[32];
    for (int i = 0; i < 100; i++) {
        snprintf(k, sizeof k, "key%03d", i);
        ASSERT_OK(nkv_put(db, NULL, k, strlen(k), "val", 3));
    }
    ASSERT_OK(nkv_flush(db, true));
    ASSERT_OK(nkv_put(db, NULL, "zz\x01", 3, "bin", 3));
    ASSERT_OK(nkv_close(db));
    static char out[1 << 16];
    char *a = nb_xasprintf("get %s key042", dir);
    assert_int_equal(run(a, out, sizeof out), 0);
    assert_string_equal(out, "val\n");
    free(a);
    a = nb_xasprintf("get %s nope", dir);
    assert_int_equal(run(a, out, sizeof out), 1);
    free(a);
    a = nb_xasprintf("scan %s key010 key013", dir);
    assert_int_equal(run(a, out, sizeof out), 0);
    assert_non_null(strstr(out, "key010 => val\nkey011 => val\nkey012 => val\n"));
    assert_null(strstr(out, "key013 =>"));
    free(a);
    a = nb_xasprintf("dump %s", dir);
    assert_int_equal(run(a, out, sizeof out), 0);
    assert_non_null(strstr(out, "zz\\x01 => bin"));
    free(a);
    a = nb_xasprintf("stats %s", dir);
    assert_int_equal(run(a, out, sizeof out), 0);
    assert_non_null(strstr(out, "total-sst-bytes"));
    free(a);
    a = nb_xasprintf("check %s", dir);
    assert_int_equal(run(a, out, sizeof out), 0);
    assert_non_null(strstr(out, "0 damaged tables"));
    free(a);
    a = nb_xasprintf("sst $(ls %s/*.sst | head -1)", dir);
    assert_int_equal(run(a, out, sizeof out), 0);
    assert_non_null(strstr(out, " PUT => val"));
    free(a);
    a = nb_xasprintf("manifest $(ls %s/MANIFEST-* | head -1)", dir);
    assert_int_equal(run(a, out, sizeof out), 0);
    assert_non_null(strstr(out, "+L0:"));
    free(a);
    a = nb_xasprintf("repair %s", dir);
    assert_int_equal(run(a, out, sizeof out), 0);
    free(a);
    a = nb_xasprintf("get %s key099", dir);
    assert_int_equal(run(a, out, sizeof out), 0);
    free(a);
    assert_int_equal(run("bogus", out, sizeof out), 2);
    nb_test_rmdir(dir);
    free(dir);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH-TO-nkv_tool\n", argv[0]);
        return 2;
    }
    tool = argv[1];
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tool),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
