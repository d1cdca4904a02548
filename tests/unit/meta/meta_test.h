/* meta_test.h — helpers shared by the meta tests: options naming the kv
 * backend from $NB_KV_ENGINE (unset: kv's default) and a fresh store in a
 * scratch directory that the next fresh() replaces. */
#ifndef NB_TESTS_META_TEST_H
#define NB_TESTS_META_TEST_H

#include <stdlib.h>

#include "meta/meta.h"

#include "test.h"

/* The directory of the store fresh() opened last. */
static char *g_dir;

static inline const meta_options *opts(void)
{
    static meta_options o;
    meta_options_init(&o);
    o.engine = getenv("NB_KV_ENGINE");
    return &o;
}

static inline meta *fresh(const char *name)
{
    if (g_dir)
        nb_test_rmdir(g_dir);
    free(g_dir);
    g_dir = nb_test_dir(name);
    meta *m = NULL;
    ASSERT_OK(meta_open(g_dir, opts(), &m));
    return m;
}

/* Closes m and opens the store in g_dir again. */
static inline meta *reopen(meta *m)
{
    meta_close(m);
    m = NULL;
    ASSERT_OK(meta_open(g_dir, opts(), &m));
    return m;
}

#endif
