/*
 * test.h — what every C test includes: cmocka plus NebulaStore helpers.
 *
 *   ASSERT_OK(rc)       fails with file:line and nb_strerror(rc) unless rc == 0
 *   ASSERT_RC(rc, want) fails unless rc == want, naming both codes
 *   nb_test_dir(name)   a fresh, empty scratch directory for this test
 *                       (under $NB_TEST_TMPDIR or /tmp); returns owned path
 *   nb_test_seed()      seed for randomized tests: $NB_TEST_SEED or the time,
 *                       printed so a failure can be replayed
 */
#ifndef NB_TESTS_TEST_H
#define NB_TESTS_TEST_H

// clang-format off
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
// clang-format on
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"

#define ASSERT_OK(expr)                                                                            \
    do {                                                                                           \
        int nb__rc = (expr);                                                                       \
        if (nb__rc != 0)                                                                           \
            fail_msg("%s:%d: %s returned %s (%s)", __FILE__, __LINE__, #expr, nb_errname(nb__rc),  \
                     nb_strerror(nb__rc));                                                         \
    } while (0)

#define ASSERT_RC(expr, want)                                                                      \
    do {                                                                                           \
        int nb__rc = (expr), nb__want = (want);                                                    \
        if (nb__rc != nb__want)                                                                    \
            fail_msg("%s:%d: %s returned %s, want %s", __FILE__, __LINE__, #expr,                  \
                     nb_errname(nb__rc), nb_errname(nb__want));                                    \
    } while (0)

static inline char *nb_test_dir(const char *name)
{
    const char *base = getenv("NB_TEST_TMPDIR");
    if (!base || !*base)
        base = "/tmp";
    char *dir = nb_xasprintf("%s/%s.%d", base, name, (int)getpid());
    char *cmd = nb_xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fail_msg("cannot clear %s", dir);
    free(cmd);
    if (nb_mkdir_p(dir, 0755) != 0)
        fail_msg("cannot create %s", dir);
    return dir;
}

static inline void nb_test_rmdir(const char *dir)
{
    char *cmd = nb_xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0)
        fprintf(stderr, "warning: cannot remove %s\n", dir);
    free(cmd);
}

static inline uint64_t nb_test_seed(void)
{
    const char *s = getenv("NB_TEST_SEED");
    uint64_t seed = s ? strtoull(s, NULL, 0) : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 16);
    fprintf(stderr, "seed: NB_TEST_SEED=%llu\n", (unsigned long long)seed);
    return seed;
}

#endif
