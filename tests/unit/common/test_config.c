/* Option parsing: precedence flags > env > file > default, validation and
 * the one-line errors. */
#include "test.h"

static const nb_opt opts[] = {
    {"data", NB_OPT_STR, "./d", "DIR", "Data directory.", 0, 0},
    {"port", NB_OPT_INT, "8080", "N", "Port.", 0, 65535},
    {"verbose", NB_OPT_BOOL, "false", NULL, "Talk more.", 0, 0},
    {"cache-size", NB_OPT_SIZE, "8M", "BYTES", "Cache.", 0, 0},
    {"timeout", NB_OPT_FLOAT, "1.5", "SECONDS", "Timeout.", 0, 60},
};
static const nb_cmd_spec spec = {"test", "nebula test", "A test.", opts, NB_ARRAY_LEN(opts), 1, 0};

static int parse(int argc, char **argv, nb_config **cfg, char *err)
{
    return nb_config_parse(&spec, argc, argv, cfg, err, 256);
}

static void clear_env(void)
{
    unsetenv("NEBULA_PORT");
    unsetenv("NEBULA_DATA");
    unsetenv("NEBULA_CONFIG");
    unsetenv("NEBULA_CACHE_SIZE");
}

static void test_defaults_and_flags(void **state)
{
    (void)state;
    clear_env();
    nb_config *cfg;
    char err[256];
    char *argv[] = {"--port", "9000", "--verbose", "--cache-size=1G", "pos"};
    ASSERT_OK(parse(5, argv, &cfg, err));
    assert_int_equal(nb_config_int(cfg, "port"), 9000);
    assert_string_equal(nb_config_source(cfg, "port"), "flag");
    assert_true(nb_config_bool(cfg, "verbose"));
    assert_true(nb_config_int(cfg, "cache-size") == 1073741824);
    assert_string_equal(nb_config_str(cfg, "data"), "./d");
    assert_string_equal(nb_config_source(cfg, "data"), "default");
    assert_int_equal(nb_config_nargs(cfg), 1);
    assert_string_equal(nb_config_arg(cfg, 0), "pos");
    assert_string_equal(nb_config_str(cfg, "log-level"), "info");
    assert_true(nb_config_float(cfg, "timeout") == 1.5);
    nb_config_free(cfg);

    char *neg[] = {"--no-verbose"};
    ASSERT_OK(parse(1, neg, &cfg, err));
    assert_false(nb_config_bool(cfg, "verbose"));
    nb_config_free(cfg);
}

static void test_precedence(void **state)
{
    (void)state;
    clear_env();
    char *dir = nb_test_dir("config_prec");
    char *file = nb_xasprintf("%s/nebula.conf", dir);
    const char *text = "# comment\n\nport = 7000\ndata = /from/file  # trailing\n"
                       "cache-size = 64K\n";
    ASSERT_OK(nb_write_file_atomic(file, text, strlen(text), 0644));
    setenv("NEBULA_CONFIG", file, 1);
    setenv("NEBULA_PORT", "7500", 1);
    nb_config *cfg;
    char err[256];
    ASSERT_OK(parse(0, NULL, &cfg, err));
    assert_int_equal(nb_config_int(cfg, "port"), 7500); /* env beats file */
    assert_string_equal(nb_config_source(cfg, "port"), "env");
    assert_string_equal(nb_config_str(cfg, "data"), "/from/file");
    assert_string_equal(nb_config_source(cfg, "data"), "file");
    assert_int_equal(nb_config_int(cfg, "cache-size"), 65536);
    nb_config_free(cfg);
    char *argv[] = {"--port=7600"};
    ASSERT_OK(parse(1, argv, &cfg, err));
    assert_int_equal(nb_config_int(cfg, "port"), 7600); /* flag beats env */
    nb_config_free(cfg);
    clear_env();
    nb_test_rmdir(dir);
    free(file);
    free(dir);
}

static void expect_usage(int argc, char **argv, const char *needle)
{
    nb_config *cfg = (nb_config *)1;
    char err[256] = "";
    ASSERT_RC(parse(argc, argv, &cfg, err), NB_EUSAGE);
    assert_null(cfg);
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
}

static void test_errors(void **state)
{
    (void)state;
    clear_env();
    char *a1[] = {"--bogus"};
    expect_usage(1, a1, "unknown option '--bogus'");
    char *a2[] = {"--port", "abc"};
    expect_usage(2, a2, "'abc' is not an integer");
    char *a3[] = {"--port", "70000"};
    expect_usage(2, a3, "out of range");
    char *a4[] = {"--port"};
    expect_usage(1, a4, "needs a value");
    char *a5[] = {"x", "y"};
    expect_usage(2, a5, "unexpected argument 'y'");
    char *a6[] = {"-p"};
    expect_usage(1, a6, "unknown option '-p'");
    char *a7[] = {"--cache-size", "12Q"};
    expect_usage(2, a7, "not a size");
    char *a7b[] = {"--timeout", "soon"};
    expect_usage(2, a7b, "'soon' is not a number");
    char *a7c[] = {"--timeout", "61"};
    expect_usage(2, a7c, "out of range");

    char *dir = nb_test_dir("config_err");
    char *file = nb_xasprintf("%s/bad.conf", dir);
    const char *text = "port = 1\nthis line is wrong\n";
    ASSERT_OK(nb_write_file_atomic(file, text, strlen(text), 0644));
    char *flag = nb_xasprintf("--config=%s", file);
    char *a8[] = {flag};
    expect_usage(1, a8, "line 2: expected 'key = value'");
    const char *text2 = "nosuch = 1\n";
    ASSERT_OK(nb_write_file_atomic(file, text2, strlen(text2), 0644));
    expect_usage(1, a8, "line 1: unknown option 'nosuch'");
    char *a9[] = {"--config", "/nonexistent/x.conf"};
    expect_usage(2, a9, "/nonexistent/x.conf");
    nb_test_rmdir(dir);
    free(flag);
    free(file);
    free(dir);
}

static void test_help(void **state)
{
    (void)state;
    nb_config *cfg;
    char err[256];
    char *argv[] = {"--port", "1", "--help", "--bogus"};
    ASSERT_OK(parse(4, argv, &cfg, err));
    assert_true(nb_config_help_requested(cfg));
    nb_config_free(cfg);
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    nb_config_print_help(&spec, f);
    fclose(f);
    assert_non_null(strstr(text, "--cache-size BYTES"));
    assert_non_null(strstr(text, "NEBULA_CACHE_SIZE"));
    assert_non_null(strstr(text, "--log-level"));
    free(text);
}

static void test_sizes(void **state)
{
    (void)state;
    int64_t v;
    ASSERT_OK(nb_parse_size("4096", &v));
    assert_int_equal(v, 4096);
    ASSERT_OK(nb_parse_size("4KiB", &v));
    assert_int_equal(v, 4096);
    ASSERT_OK(nb_parse_size("1.5M", &v));
    assert_int_equal(v, 1572864);
    ASSERT_RC(nb_parse_size("", &v), NB_EUSAGE);
    ASSERT_RC(nb_parse_size("-1", &v), NB_EUSAGE);
    ASSERT_RC(nb_parse_size("1X", &v), NB_EUSAGE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_flags),
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_sizes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
