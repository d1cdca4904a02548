/*
 * test_meta_obj.c — meta_obj_get answers after changes: its answers are
 * kept while the store is unchanged (meta_objcache.c), so every kind of
 * change between two calls must show in the second one, and a kept
 * answer must be the one for the name asked.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "meta/meta.h"

#include "meta_test.h"

static const meta_cred root_cred = {0, 0, 0, NULL};

static int get_rec(meta *m, const char *bucket, const char *key, uint64_t *ino, char *rec,
                   size_t cap)
{
    meta_obj o;
    int rc = meta_obj_get(m, bucket, key, META_OBJ_DATA, &o);
    if (rc != 0)
        return rc;
    *ino = o.a.ino;
    snprintf(rec, cap, "%.*s", (int)o.rec.len, o.rec.data ? (const char *)o.rec.data : "");
    meta_obj_free(&o);
    return 0;
}

static void test_changes_show(void **state)
{
    (void)state;
    meta *m = fresh("meta-obj");
    meta_attr b, d, f, g;
    ASSERT_OK(meta_mkdir(m, &root_cred, META_ROOT_INO, "b", 0755, &b));
    ASSERT_OK(meta_mkdir(m, &root_cred, b.ino, "d", 0755, &d));
    ASSERT_OK(meta_mknod(m, &root_cred, d.ino, "k", S_IFREG | 0644, 0, &f));
    ASSERT_OK(meta_mknod(m, &root_cred, b.ino, "k", S_IFREG | 0644, 0, &g));
    uint64_t ino;
    char rec[64];
    for (int i = 0; i < 2; i++) { /* the second time from what was kept */
        ASSERT_OK(get_rec(m, "b", "d/k", &ino, rec, sizeof rec));
        assert_int_equal(ino, f.ino);
        assert_string_equal(rec, "");
        ASSERT_OK(get_rec(m, "b", "k", &ino, rec, sizeof rec));
        assert_int_equal(ino, g.ino);
    }
    /* The record changes. */
    ASSERT_OK(meta_objrec_set(m, f.ino, nb_slice_str("one")));
    ASSERT_OK(get_rec(m, "b", "d/k", &ino, rec, sizeof rec));
    assert_string_equal(rec, "one");
    meta_obj held; /* an answer held while the table moves on */
    ASSERT_OK(meta_obj_get(m, "b", "d/k", META_OBJ_DATA, &held));
    ASSERT_OK(meta_objrec_set(m, f.ino, nb_slice_str("two")));
    for (int i = 0; i < 3; i++) {
        ASSERT_OK(get_rec(m, "b", "d/k", &ino, rec, sizeof rec));
        assert_string_equal(rec, "two");
    }
    assert_int_equal(held.rec.len, 3);
    assert_memory_equal(held.rec.data, "one", 3);
    meta_obj_free(&held);
    /* The attributes change. */
    meta_obj o;
    ASSERT_OK(meta_obj_get(m, "b", "d/k", 0, &o));
    assert_int_equal(o.a.mode & 07777, 0644);
    meta_obj_free(&o);
    meta_sattr sa = {.valid = META_SET_MODE, .mode = 0600};
    ASSERT_OK(meta_setattr(m, &root_cred, f.ino, &sa, NULL));
    ASSERT_OK(meta_obj_get(m, "b", "d/k", 0, &o));
    assert_int_equal(o.a.mode & 07777, 0600);
    meta_obj_free(&o);
    /* The name moves, goes, comes back as another inode. */
    ASSERT_OK(meta_rename(m, &root_cred, d.ino, "k", d.ino, "k2", 0));
    assert_int_equal(get_rec(m, "b", "d/k", &ino, rec, sizeof rec), -ENOENT);
    ASSERT_OK(get_rec(m, "b", "d/k2", &ino, rec, sizeof rec));
    assert_int_equal(ino, f.ino);
    ASSERT_OK(meta_unlink(m, &root_cred, d.ino, "k2"));
    assert_int_equal(get_rec(m, "b", "d/k2", &ino, rec, sizeof rec), -ENOENT);
    meta_attr h;
    ASSERT_OK(meta_mknod(m, &root_cred, d.ino, "k2", S_IFREG | 0644, 0, &h));
    ASSERT_OK(get_rec(m, "b", "d/k2", &ino, rec, sizeof rec));
    assert_int_equal(ino, h.ino);
    assert_string_equal(rec, "");
    /* The other key was never disturbed. */
    ASSERT_OK(get_rec(m, "b", "k", &ino, rec, sizeof rec));
    assert_int_equal(ino, g.ino);
    meta_close(m);
}

/* Many names, more than one set of the table holds: each answer is its
 * own name's. */
static void test_many_names(void **state)
{
    (void)state;
    meta *m = fresh("meta-obj-many");
    meta_attr b;
    ASSERT_OK(meta_mkdir(m, &root_cred, META_ROOT_INO, "b", 0755, &b));
    enum { N = 6000 };
    static uint64_t inos[N];
    for (int i = 0; i < N; i++) {
        char name[32];
        snprintf(name, sizeof name, "k%d", i);
        meta_attr a;
        ASSERT_OK(meta_mknod(m, &root_cred, b.ino, name, S_IFREG | 0644, 0, &a));
        inos[i] = a.ino;
    }
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < N; i++) {
            char name[32], rec[8];
            snprintf(name, sizeof name, "k%d", i);
            uint64_t ino;
            ASSERT_OK(get_rec(m, "b", name, &ino, rec, sizeof rec));
            assert_int_equal(ino, inos[i]);
        }
    }
    meta_close(m);
}

int main(void)
{
    nb_log_set_level(NB_LOG_OFF);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_changes_show),
        cmocka_unit_test(test_many_names),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (g_dir)
        nb_test_rmdir(g_dir);
    free(g_dir);
    return rc;
}
