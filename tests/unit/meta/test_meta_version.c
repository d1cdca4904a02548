/*
 * test_meta_version.c — S3 version records ('V', docs/metadata-format.md):
 * a versioned install keeps the replaced file as a noncurrent version (its
 * inode and slices live on, out of the namespace), delete markers, the
 * null version under suspension, removal (slices to the garbage list),
 * making a version current again, listing order, and meta_check counting
 * version records as links (and repairing records of a vanished bucket).
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "meta/meta.h"

#include "meta_test.h"

static const meta_cred root_cred = {0, 0, 0, NULL};
static void print_problem(void *arg, const char *msg)
{
    (void)arg;
    fprintf(stderr, "meta_check: %s\n", msg);
}

static void expect_clean(meta *m)
{
    meta_check_report r;
    ASSERT_OK(meta_check(m, 0, print_problem, NULL, &r));
    assert_int_equal(r.problems, 0);
}

static int has_garbage(meta *m, uint64_t id)
{
    meta_garbage gb[64];
    size_t n;
    ASSERT_OK(meta_garbage_list(m, 0, gb, 64, &n));
    for (size_t i = 0; i < n; i++)
        if (gb[i].id == id)
            return 1;
    return 0;
}

/* An unnamed file with one slice (id) and a record naming version vid,
 * installed at bucket/name, versioned when vp is not NULL. */
static uint64_t put(meta *m, uint64_t bucket, const char *name, const char *vid, uint64_t id,
                    const meta_verput *vp)
{
    meta_attr a;
    ASSERT_OK(meta_tmpfile(m, &root_cred, bucket, 0644, &a));
    uint64_t ino = a.ino;
    meta_write w = {.chunk = 0, .slice = {.id = id, .size = 10, .len = 10}};
    ASSERT_OK(meta_publish(m, ino, &w, 1, 10, META_PUBLISH_SIZE, 0, nb_slice_of(NULL, 0), 0, &a));
    meta_objrec r = {.version_id = (char *)vid};
    nb_buf rec = NB_BUF_INIT;
    ASSERT_OK(meta_objrec_encode(&r, &rec));
    if (vp)
        ASSERT_OK(meta_install_ver(m, &root_cred, ino, bucket, name, nb_buf_slice(&rec), vp, &a));
    else
        ASSERT_OK(meta_install(m, &root_cred, ino, bucket, name, META_INSTALL_REPLACE,
                               nb_buf_slice(&rec), &a));
    ASSERT_OK(meta_release(m, ino));
    nb_buf_free(&rec);
    return ino;
}

/* "id:ino-or-M," for every version record of bucket. */
static int list_cb(void *arg, const meta_version *v)
{
    nb_buf *b = arg;
    if (v->delete_marker)
        ASSERT_OK(nb_buf_appendf(b, "%s/%s:M,", v->key, v->version_id));
    else
        ASSERT_OK(
            nb_buf_appendf(b, "%s/%s:%llu,", v->key, v->version_id, (unsigned long long)v->ino));
    return 0;
}

static void expect_versions(meta *m, uint64_t bucket, const char *want)
{
    nb_buf b = NB_BUF_INIT;
    ASSERT_OK(meta_version_list(m, bucket, NULL, 0, list_cb, &b));
    ASSERT_OK(nb_buf_put_u8(&b, 0));
    assert_string_equal((const char *)b.data, want);
    nb_buf_free(&b);
}

static uint64_t current(meta *m, uint64_t dir, const char *name)
{
    meta_attr a;
    int rc = meta_lookup(m, &root_cred, dir, name, &a);
    return rc == 0 ? a.ino : 0;
}

static void test_versions(void **state)
{
    (void)state;
    meta *m = fresh("meta_versions");
    meta_bucket b = {.owner = "root", .versioning = META_VERSIONING_ENABLED};
    ASSERT_OK(meta_bucket_create(m, &root_cred, "bkt", 0755, &b));
    meta_verput vp = {.bucket = b.ino, .key = "k"};
    char buf[256];

    /* Written before versioning: the null version. */
    uint64_t i0 = put(m, b.ino, "k", NULL, 100, NULL);
    uint64_t i1 = put(m, b.ino, "k", "a1", 101, &vp);
    uint64_t i2 = put(m, b.ino, "k", "a2", 102, &vp);
    assert_int_equal(current(m, b.ino, "k"), i2);
    snprintf(buf, sizeof buf, "k/a1:%llu,k/null:%llu,", (unsigned long long)i1,
             (unsigned long long)i0);
    expect_versions(m, b.ino, buf);
    /* Noncurrent versions keep their inode (one link) and slices. */
    meta_attr a;
    ASSERT_OK(meta_getattr(m, i1, &a));
    assert_int_equal(a.nlink, 1);
    assert_false(has_garbage(m, 100) || has_garbage(m, 101));
    expect_clean(m);

    /* A delete marker: the file leaves the namespace, all versions stay. */
    meta_version mk;
    ASSERT_OK(meta_version_mark(m, &vp, b.ino, "k", "m1", &mk));
    assert_true(mk.delete_marker);
    meta_version_free(&mk);
    assert_int_equal(current(m, b.ino, "k"), 0);
    snprintf(buf, sizeof buf, "k/m1:M,k/a2:%llu,k/a1:%llu,k/null:%llu,", (unsigned long long)i2,
             (unsigned long long)i1, (unsigned long long)i0);
    expect_versions(m, b.ino, buf);
    expect_clean(m);

    /* Removing a noncurrent version frees its slice. */
    meta_version v;
    ASSERT_OK(meta_version_find(m, b.ino, "k", "a1", &v));
    assert_int_equal(v.ino, i1);
    ASSERT_OK(meta_version_remove(m, b.ino, "k", v.seq));
    ASSERT_RC(meta_version_remove(m, b.ino, "k", v.seq), NB_ENOTFOUND);
    meta_version_free(&v);
    assert_true(has_garbage(m, 101));
    ASSERT_RC(meta_getattr(m, i1, &a), -ENOENT);
    ASSERT_RC(meta_version_find(m, b.ino, "k", "a1", &v), NB_ENOTFOUND);

    /* Removing the marker and promoting: a2 is current again. */
    ASSERT_OK(meta_version_find(m, b.ino, "k", "m1", &v));
    ASSERT_OK(meta_version_remove(m, b.ino, "k", v.seq));
    meta_version_free(&v);
    int promoted = 0;
    ASSERT_OK(meta_version_promote(m, b.ino, "k", b.ino, "k", &promoted));
    assert_true(promoted);
    assert_int_equal(current(m, b.ino, "k"), i2);
    snprintf(buf, sizeof buf, "k/null:%llu,", (unsigned long long)i0);
    expect_versions(m, b.ino, buf);
    expect_clean(m);

    /* Removing the current version makes the newest noncurrent current. */
    ASSERT_OK(meta_version_remove_current(m, b.ino, "k", b.ino, "k", i2, &promoted));
    assert_true(promoted);
    assert_true(has_garbage(m, 102));
    assert_int_equal(current(m, b.ino, "k"), i0);
    expect_versions(m, b.ino, "");
    ASSERT_RC(meta_version_remove_current(m, b.ino, "k", b.ino, "k", i2, &promoted), -ENOENT);
    expect_clean(m);

    /* Suspended: a null version replaces the null one, for good. */
    meta_verput sp = {.bucket = b.ino, .key = "k", .null_new = true};
    uint64_t i3 = put(m, b.ino, "k", "null", 103, &sp);
    assert_int_equal(current(m, b.ino, "k"), i3);
    assert_true(has_garbage(m, 100));
    expect_versions(m, b.ino, "");
    uint64_t i4 = put(m, b.ino, "k", "a4", 104, &vp); /* enabled again */
    uint64_t i5 = put(m, b.ino, "k", "null", 105, &sp);
    snprintf(buf, sizeof buf, "k/a4:%llu,", (unsigned long long)i4);
    expect_versions(m, b.ino, buf);
    assert_true(has_garbage(m, 103));
    assert_int_equal(current(m, b.ino, "k"), i5);
    /* A suspended DELETE: a null marker, the null file goes. */
    ASSERT_OK(meta_version_mark(m, &sp, b.ino, "k", "null", NULL));
    assert_true(has_garbage(m, 105));
    snprintf(buf, sizeof buf, "k/null:M,k/a4:%llu,", (unsigned long long)i4);
    expect_versions(m, b.ino, buf);
    /* Markers also for keys with no directory at all; key order. */
    meta_verput op = {.bucket = b.ino, .key = "a/x"};
    ASSERT_OK(meta_version_mark(m, &op, 0, "", "m2", NULL));
    snprintf(buf, sizeof buf, "a/x/m2:M,k/null:M,k/a4:%llu,", (unsigned long long)i4);
    expect_versions(m, b.ino, buf);
    assert_int_equal(meta_version_any(m, b.ino), 1);
    expect_clean(m);
    meta_close(m);
}

static void test_check_dangling(void **state)
{
    (void)state;
    meta *m = fresh("meta_versions_check");
    meta_bucket b = {.owner = "root"};
    ASSERT_OK(meta_bucket_create(m, &root_cred, "bkt", 0755, &b));
    meta_verput vp = {.bucket = b.ino, .key = "k"};
    put(m, b.ino, "k", "a1", 201, &vp);
    uint64_t i2 = put(m, b.ino, "k", "a2", 202, &vp);
    ASSERT_OK(meta_unlink(m, &root_cred, b.ino, "k"));
    assert_true(has_garbage(m, 202));
    (void)i2;
    expect_clean(m);
    /* The bucket directory removed behind the records' back (rmdir
     * through the mount): fsck reports the records and repairs them; the
     * version inode left without links becomes an orphan, reclaimed. */
    ASSERT_OK(meta_rmdir(m, &root_cred, META_ROOT_INO, "bkt"));
    meta_check_report r;
    ASSERT_OK(meta_check(m, 0, NULL, NULL, &r));
    assert_true(r.problems > 0);
    ASSERT_OK(meta_check(m, META_CHECK_REPAIR, NULL, NULL, &r));
    assert_int_equal(r.problems, r.repaired);
    m = reopen(m);
    expect_clean(m);
    assert_true(has_garbage(m, 201));
    assert_int_equal(meta_version_any(m, b.ino), 0);
    meta_close(m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_versions),
        cmocka_unit_test(test_check_dangling),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    if (g_dir)
        nb_test_rmdir(g_dir);
    free(g_dir);
    return rc;
}
