/* The disk engine's API: put/read/delete/exists/iterate/stats, refs and pins,
 * checkpoints, bad input and the tool, over both I/O paths (pread/pwrite
 * buffered, and io_uring with O_DIRECT). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/coding.h"
#include "common/crc32c.h"
#include "common/fsutil.h"
#include "disk/disk_format.h"

#include "disk_test.h"

typedef struct mode {
    const char *name;
    int io, direct;
} mode;

static mode posix_buffered = {"posix", DISK_IO_POSIX, DISK_DIRECT_OFF};
static mode uring_direct = {"uring", DISK_IO_URING, DISK_DIRECT_AUTO};

static disk_env *open_mode(const mode *m, const char *dir)
{
    disk_options o;
    dt_opts(&o, m->io, m->direct);
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    return e;
}

static void put_ver(disk_env *e, uint64_t n, size_t len, uint64_t ver)
{
    uint8_t *b = malloc(len ? len : 1);
    dt_fill(b, len, dt_id(n), ver);
    ASSERT_OK(disk_put(e, dt_id(n), b, len));
    free(b);
}

static void expect_ver(disk_env *e, uint64_t n, size_t len, uint64_t ver)
{
    uint8_t *b = malloc(len + 16);
    size_t got = 0;
    ASSERT_OK(disk_read(e, dt_id(n), 0, len + 16, b, &got));
    assert_int_equal(got, len);
    assert_true(dt_check(b, len, dt_id(n), ver));
    free(b);
}

static int count_cb(void *arg, disk_id id, uint64_t len)
{
    (void)id;
    (void)len;
    (*(int *)arg)++;
    return 0;
}

static void test_basic(void **state)
{
    const mode *m = *state;
    char *dir = nb_test_dir(m->name);
    disk_env *e = open_mode(m, dir);
    disk_stats st;
    disk_stats_get(e, &st);
    assert_int_equal(st.io_uring, m->io == DISK_IO_URING);
    size_t sizes[] = {0, 1, 100, 4095, 4096, 4097, 65536, 1000000, 4u << 20};
    for (size_t i = 0; i < NB_ARRAY_LEN(sizes); i++)
        put_ver(e, i, sizes[i], 1);
    for (size_t i = 0; i < NB_ARRAY_LEN(sizes); i++)
        expect_ver(e, i, sizes[i], 1);
    uint64_t len;
    ASSERT_OK(disk_exists(e, dt_id(6), &len));
    assert_int_equal(len, 65536);
    /* Partial reads. */
    uint8_t *full = malloc(65536), part[100];
    dt_fill(full, 65536, dt_id(6), 1);
    size_t got;
    ASSERT_OK(disk_read(e, dt_id(6), 1000, 100, part, &got));
    assert_int_equal(got, 100);
    assert_memory_equal(part, full + 1000, 100);
    ASSERT_OK(disk_read(e, dt_id(6), 65500, 100, part, &got));
    assert_int_equal(got, 36);
    assert_memory_equal(part, full + 65500, 36);
    ASSERT_OK(disk_read(e, dt_id(6), 65536, 100, part, &got));
    assert_int_equal(got, 0);
    ASSERT_RC(disk_read(e, dt_id(6), 65537, 100, part, &got), NB_EUSAGE);
    /* An empty blob reads with no buffer at all (disk check does that). */
    ASSERT_OK(disk_read(e, dt_id(0), 0, 0, NULL, &got));
    assert_int_equal(got, 0);
    free(full);
    /* Overwrite and delete. */
    put_ver(e, 3, 5000, 2);
    expect_ver(e, 3, 5000, 2);
    ASSERT_OK(disk_delete(e, dt_id(4)));
    ASSERT_RC(disk_exists(e, dt_id(4), NULL), NB_ENOTFOUND);
    ASSERT_RC(disk_read(e, dt_id(4), 0, 10, part, &got), NB_ENOTFOUND);
    ASSERT_RC(disk_delete(e, dt_id(4)), NB_ENOTFOUND);
    ASSERT_RC(disk_read(e, dt_id(999), 0, 10, part, &got), NB_ENOTFOUND);
    int n = 0;
    ASSERT_OK(disk_iterate(e, count_cb, &n));
    assert_int_equal(n, (int)NB_ARRAY_LEN(sizes) - 1);
    disk_stats_get(e, &st);
    assert_int_equal(st.blobs, NB_ARRAY_LEN(sizes) - 1);
    ASSERT_OK(disk_close(e));

    /* Everything survives a reopen, with and without a close checkpoint. */
    e = open_mode(m, dir);
    disk_stats_get(e, &st);
    assert_int_equal(st.blobs, NB_ARRAY_LEN(sizes) - 1);
    assert_int_equal(st.replayed, 0);
    for (size_t i = 0; i < NB_ARRAY_LEN(sizes); i++)
        if (i != 4)
            expect_ver(e, i, i == 3 ? 5000 : sizes[i], i == 3 ? 2 : 1);
    disk_close(e);
    nb_test_rmdir(dir);
    free(dir);
}

static void test_too_big_and_usage(void **state)
{
    (void)state;
    char *dir = nb_test_dir("usage");
    disk_options o;
    dt_opts(&o, DISK_IO_POSIX, DISK_DIRECT_OFF);
    o.max_blob = 1000;
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    uint8_t b[1001] = {0};
    ASSERT_RC(disk_put(e, dt_id(1), b, 1001), NB_ETOOBIG);
    ASSERT_OK(disk_put(e, dt_id(1), b, 1000));
    /* A second open of the same directory is refused while it is open. */
    disk_env *e2;
    ASSERT_RC(disk_open(&o, dir, &e2), NB_ELOCKED);
    assert_null(e2);
    ASSERT_OK(disk_close(e));
    disk_close(NULL);
    o.au_size = 1000;
    ASSERT_RC(disk_open(&o, dir, &e), NB_EUSAGE);
    /* Read-only open of a directory with no engine. */
    char *none = nb_xasprintf("%s/none", dir);
    disk_options_init(&o);
    o.read_only = 1;
    ASSERT_RC(disk_open(&o, none, &e), NB_ENOTFOUND);
    free(none);
    nb_test_rmdir(dir);
    free(dir);
}

static void test_enospace(void **state)
{
    (void)state;
    char *dir = nb_test_dir("enospace");
    disk_options o;
    dt_opts(&o, DISK_IO_POSIX, DISK_DIRECT_OFF);
    o.capacity = 4ull << 20; /* 1023 AUs of data region */
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    uint8_t *b = calloc(1, 65536);
    int n = 0, rc;
    while ((rc = disk_put(e, dt_id((uint64_t)n), b, 65536)) == 0)
        n++;
    ASSERT_RC(rc, NB_ENOSPACE);
    assert_int_equal(n, 63);                      /* 63 * 16 AUs = 1008 of 1023 */
    ASSERT_OK(disk_put(e, dt_id(1000), b, 4096)); /* small ones still fit */
    ASSERT_OK(disk_delete(e, dt_id(5)));
    ASSERT_OK(disk_put(e, dt_id(5), b, 65536));
    disk_stats st;
    disk_stats_get(e, &st);
    assert_int_equal(st.blobs, 64);
    assert_true(st.bytes_free < 65536);
    ASSERT_OK(disk_close(e));
    free(b);
    nb_test_rmdir(dir);
    free(dir);
}

static uint64_t file_size(const char *dir, const char *name)
{
    char *p = nb_xasprintf("%s/%s", dir, name);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    free(p);
    return (uint64_t)st.st_size;
}

/* The data file starts small and grows in steps up to the capacity; a put
 * that does not fit then is NB_ENOSPACE, and a reopen finds every blob,
 * including those in the grown part. */
static void test_grow(void **state)
{
    const mode *m = *state;
    char *dir = nb_test_dir("grow");
    disk_options o;
    dt_opts(&o, m->io, m->direct);
    o.initial_size = 1ull << 20;
    o.grow_step = 1ull << 20;
    o.capacity = 4ull << 20;
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    assert_int_equal(file_size(dir, DISK_DATA_FILE), 1ull << 20);
    disk_stats st;
    disk_stats_get(e, &st);
    assert_int_equal(st.capacity, (4ull << 20) - 4096);
    assert_int_equal(st.region, (1ull << 20) - 4096);
    uint64_t n = 0;
    int rc;
    uint8_t *b = malloc(65536);
    for (;; n++) {
        dt_fill(b, 65536, dt_id(n), 1);
        if ((rc = disk_put(e, dt_id(n), b, 65536)) != 0)
            break;
    }
    ASSERT_RC(rc, NB_ENOSPACE);
    assert_int_equal(n, 63); /* as if the whole 4 MiB had been there */
    assert_int_equal(file_size(dir, DISK_DATA_FILE), 4ull << 20);
    disk_stats_get(e, &st);
    assert_int_equal(st.grows, 3);
    assert_int_equal(st.region, st.capacity);
    ASSERT_OK(disk_close(e));
    /* Reopen from the WAL alone (the last blobs) and from the checkpoint. */
    o.close_checkpoint = 0;
    for (int round = 0; round < 2; round++) {
        ASSERT_OK(disk_open(&o, dir, &e));
        for (uint64_t i = 0; i < n; i++)
            expect_ver(e, i, 65536, 1);
        if (round == 0)
            for (uint64_t i = 0; i < 8; i++)
                put_ver(e, 100 + i, 4096, 2);
        ASSERT_OK(disk_close(e));
    }
    /* A bigger capacity on a later open lets it grow again. */
    o.capacity = 6ull << 20;
    ASSERT_OK(disk_open(&o, dir, &e));
    put_ver(e, 200, 65536, 3);
    expect_ver(e, 200, 65536, 3);
    ASSERT_OK(disk_close(e));
    assert_int_equal(file_size(dir, DISK_DATA_FILE), 5ull << 20);
    free(b);
    nb_test_rmdir(dir);
    free(dir);
}

static void write_text(const char *dir, const char *name, const char *text)
{
    char *p = nb_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

static uint64_t capacity_of(disk_env *e)
{
    disk_stats st;
    disk_stats_get(e, &st);
    return st.capacity;
}

/* The capacity is recorded in the store (DIR/SIZE): a reopen without one
 * keeps the bound, a larger one grows it (recorded), a smaller one is
 * refused, and the tool reports it. */
static void test_size_recorded(void **state)
{
    (void)state;
    char *dir = nb_test_dir("size");
    disk_options o;
    dt_opts(&o, DISK_IO_POSIX, DISK_DIRECT_OFF);
    o.initial_size = 1ull << 20;
    o.grow_step = 1ull << 20;
    o.capacity = (4ull << 20) + 100; /* rounded down to the AU */
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    ASSERT_OK(disk_close(e));
    o.capacity = 0;
    ASSERT_OK(disk_open(&o, dir, &e));
    assert_int_equal(capacity_of(e), (4ull << 20) - 4096);
    uint64_t n = 0;
    int rc;
    uint8_t *b = malloc(65536);
    for (;; n++) {
        dt_fill(b, 65536, dt_id(n), 1);
        if ((rc = disk_put(e, dt_id(n), b, 65536)) != 0)
            break;
    }
    ASSERT_RC(rc, NB_ENOSPACE); /* the recorded bound, not the file system's */
    assert_int_equal(n, 63);
    ASSERT_OK(disk_close(e));
    /* Smaller: refused, nothing changed. */
    o.capacity = 2ull << 20;
    ASSERT_RC(disk_open(&o, dir, &e), NB_EUSAGE);
    /* Larger: grows, and stays grown without the option. */
    o.capacity = 6ull << 20;
    ASSERT_OK(disk_open(&o, dir, &e));
    assert_int_equal(capacity_of(e), (6ull << 20) - 4096);
    ASSERT_OK(disk_close(e));
    o.capacity = 0;
    ASSERT_OK(disk_open(&o, dir, &e));
    assert_int_equal(capacity_of(e), (6ull << 20) - 4096);
    put_ver(e, 200, 65536, 2);
    for (uint64_t i = 0; i < n; i++)
        expect_ver(e, i, 65536, 1);
    ASSERT_OK(disk_close(e));
    o.capacity = 5ull << 20;
    ASSERT_RC(disk_open(&o, dir, &e), NB_EUSAGE);
    /* A read-only open (the tool) takes the recorded bound. */
    o.capacity = 0;
    o.read_only = 1;
    ASSERT_OK(disk_open(&o, dir, &e));
    assert_int_equal(capacity_of(e), (6ull << 20) - 4096);
    ASSERT_OK(disk_close(e));
    o.read_only = 0;
    /* A damaged SIZE is an error naming it, not a silent unbounded store. */
    write_text(dir, DISK_SIZE_FILE, "12ab\n");
    ASSERT_RC(disk_open(&o, dir, &e), NB_ECORRUPT);
    write_text(dir, DISK_SIZE_FILE, "6291456\n");
    ASSERT_OK(disk_open(&o, dir, &e));
    expect_ver(e, 200, 65536, 2);
    ASSERT_OK(disk_close(e));
    /* An engine without a capacity records none; a later bound is kept. */
    char *dir2 = nb_test_dir("size2");
    ASSERT_OK(disk_open(&o, dir2, &e));
    ASSERT_OK(disk_close(e));
    char *p = nb_xasprintf("%s/%s", dir2, DISK_SIZE_FILE);
    assert_int_not_equal(access(p, F_OK), 0);
    o.capacity = 8ull << 20;
    ASSERT_OK(disk_open(&o, dir2, &e));
    ASSERT_OK(disk_close(e));
    assert_int_equal(access(p, F_OK), 0);
    o.capacity = 0;
    ASSERT_OK(disk_open(&o, dir2, &e));
    assert_int_equal(capacity_of(e), (8ull << 20) - 4096);
    ASSERT_OK(disk_close(e));
    free(p);
    free(b);
    nb_test_rmdir(dir);
    nb_test_rmdir(dir2);
    free(dir);
    free(dir2);
}

/* A raw block device as the data file: a loop device over a 32 MiB file
 * (root and losetup needed, else skipped). The device is used whole and
 * never grown; puts fill it to a clean NB_ENOSPACE; a reopen finds every
 * blob; the superblock is on the device; the tool checks it. */
static void test_loop_device(void **state)
{
    (void)state;
    if (getuid() != 0 || system("losetup --version >/dev/null 2>&1") != 0)
        skip();
    char *dir = nb_test_dir("loop");
    char *img = nb_xasprintf("%s.img", dir);
    int fd = open(img, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 32 << 20), 0);
    close(fd);
    char *cmd = nb_xasprintf("losetup -f --show '%s' 2>/dev/null", img);
    FILE *p = popen(cmd, "r");
    char dev[256] = "";
    if (p) {
        if (!fgets(dev, sizeof dev, p))
            dev[0] = 0;
        pclose(p);
    }
    free(cmd);
    dev[strcspn(dev, "\n")] = 0;
    if (strncmp(dev, "/dev/", 5) != 0) { /* no free loop device (a container) */
        unlink(img);
        free(img);
        nb_test_rmdir(dir);
        free(dir);
        skip();
    }
    const char *files[] = {dev};
    disk_options o;
    dt_opts(&o, DISK_IO_AUTO, DISK_DIRECT_AUTO);
    o.capacity = 0;
    o.files = files;
    o.n_files = 1;
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    disk_stats st;
    disk_stats_get(e, &st);
    assert_int_equal(st.region, (32ull << 20) - 4096);
    assert_int_equal(st.capacity, st.region);
    uint64_t n = 0;
    int rc;
    size_t sizes[] = {4096, 65536, 1u << 20, 100};
    for (;; n++) {
        size_t len = sizes[n % 4];
        uint8_t *b = malloc(len);
        dt_fill(b, len, dt_id(n), 1);
        rc = disk_put(e, dt_id(n), b, len);
        free(b);
        if (rc)
            break;
    }
    ASSERT_RC(rc, NB_ENOSPACE);
    assert_true(n > 20);
    ASSERT_OK(disk_close(e));
    /* The image did not grow, and holds the superblock. */
    struct stat sb;
    assert_int_equal(stat(img, &sb), 0);
    assert_int_equal((uint64_t)sb.st_size, 32ull << 20);
    fd = open(img, O_RDONLY);
    char magic[8];
    assert_int_equal(pread(fd, magic, 8, 0), 8);
    close(fd);
    assert_memory_equal(magic, DISK_SUPER_MAGIC, 8);
    o.files = NULL; /* the recorded list */
    o.close_checkpoint = 0;
    for (int round = 0; round < 2; round++) {
        ASSERT_OK(disk_open(&o, dir, &e));
        for (uint64_t i = 0; i < n; i++)
            expect_ver(e, i, sizes[i % 4], 1);
        if (round == 0) {
            ASSERT_OK(disk_delete(e, dt_id(2)));
            uint8_t *b = malloc(1u << 20);
            dt_fill(b, 1u << 20, dt_id(2), 1);
            ASSERT_OK(disk_put(e, dt_id(2), b, 1u << 20)); /* the freed room */
            free(b);
        }
        ASSERT_OK(disk_close(e));
    }
    char *argv[] = {"disk", "check", dir, NULL};
    assert_int_equal(disk_tool_main(3, argv), 0);
    cmd = nb_xasprintf("losetup -d '%s'", dev);
    assert_int_equal(system(cmd), 0);
    free(cmd);
    unlink(img);
    free(img);
    nb_test_rmdir(dir);
    free(dir);
}

/* A data file added to an existing engine: refused while the capacity
 * leaves no room, then taken into use at once (puts span both files to a
 * clean NB_ENOSPACE), recorded in DATAFILES, found by reopens from the WAL
 * and from the checkpoint; the same path twice or an existing file is
 * refused. */
static void test_add_file(void **state)
{
    const mode *m = *state;
    char *dir = nb_test_dir("addfile");
    disk_options o;
    dt_opts(&o, m->io, m->direct);
    o.initial_size = 1ull << 20;
    o.grow_step = 1ull << 20;
    o.capacity = 4ull << 20;
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    uint64_t n = 0;
    int rc;
    uint8_t *b = malloc(65536);
    for (;; n++) {
        dt_fill(b, 65536, dt_id(n), 1);
        if ((rc = disk_put(e, dt_id(n), b, 65536)) != 0)
            break;
    }
    ASSERT_RC(rc, NB_ENOSPACE);
    ASSERT_RC(disk_add_file(e, "extra.1"), NB_ENOSPACE); /* no room under the bound */
    char *extra = nb_xasprintf("%s/extra.1", dir);
    assert_int_not_equal(access(extra, F_OK), 0);
    ASSERT_OK(disk_close(e));
    o.capacity = 8ull << 20;
    ASSERT_OK(disk_open(&o, dir, &e));
    ASSERT_OK(disk_add_file(e, "extra.1"));
    ASSERT_RC(disk_add_file(e, "extra.1"), NB_EUSAGE);
    ASSERT_RC(disk_add_file(e, DISK_DATA_FILE), NB_EUSAGE);
    disk_stats st;
    disk_stats_get(e, &st);
    assert_int_equal(st.files, 2);
    assert_int_equal(st.capacity, (8ull << 20) - 2 * 4096);
    uint64_t n1 = n;
    for (;; n++) {
        dt_fill(b, 65536, dt_id(n), 1);
        if ((rc = disk_put(e, dt_id(n), b, 65536)) != 0)
            break;
    }
    ASSERT_RC(rc, NB_ENOSPACE);
    assert_true(n >= n1 + 60); /* the second file's 4 MiB */
    disk_file_stats fs;
    ASSERT_OK(disk_file_stats_get(e, 1, &fs));
    assert_true(fs.bytes_allocated >= (3ull << 20));
    ASSERT_OK(disk_close(e));
    /* Recorded: the list names both, as given. */
    char *lp = nb_xasprintf("%s/%s", dir, DISK_FILES_FILE);
    FILE *f = fopen(lp, "r");
    assert_non_null(f);
    char text[256] = "";
    size_t got = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[got] = 0;
    assert_string_equal(text, "data.0\nextra.1\n");
    free(lp);
    /* Reopen from the WAL alone (the last puts, some in extra.1), then from
     * the checkpoint. */
    o.capacity = 0;
    o.close_checkpoint = 0;
    for (int round = 0; round < 2; round++) {
        ASSERT_OK(disk_open(&o, dir, &e));
        for (uint64_t i = 0; i < n; i++)
            expect_ver(e, i, 65536, 1);
        if (round == 0) {
            ASSERT_OK(disk_delete(e, dt_id(n - 1)));
            put_ver(e, n - 1, 4096, 2);
            o.close_checkpoint = 1;
        } else {
            ASSERT_OK(disk_delete(e, dt_id(n - 1)));
        }
        ASSERT_OK(disk_close(e));
        if (round == 0)
            n--;
    }
    /* A file that exists is never taken over (nor truncated). */
    char *other = nb_xasprintf("%s/other", dir);
    f = fopen(other, "w");
    fputs("keep", f);
    fclose(f);
    ASSERT_OK(disk_open(&o, dir, &e));
    ASSERT_RC(disk_add_file(e, "other"), NB_EUSAGE);
    ASSERT_OK(disk_close(e));
    struct stat sb;
    assert_int_equal(stat(other, &sb), 0);
    assert_int_equal(sb.st_size, 4);
    char *argv[] = {"disk", "check", dir, NULL};
    assert_int_equal(disk_tool_main(3, argv), 0);
    free(other);
    free(extra);
    free(b);
    nb_test_rmdir(dir);
    free(dir);
}

/* Without a capacity, growth stops where the file system's free space
 * would fall under the reserve: a reserve above the free space means no
 * growth at all. */
static void test_grow_reserve(void **state)
{
    (void)state;
    char *dir = nb_test_dir("reserve");
    disk_options o;
    dt_opts(&o, DISK_IO_POSIX, DISK_DIRECT_OFF);
    o.capacity = 0;
    o.initial_size = 1ull << 20;
    o.reserve = UINT64_MAX - 1;
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    disk_stats st;
    disk_stats_get(e, &st);
    assert_int_equal(st.capacity, st.region);
    uint8_t *b = calloc(1, 65536);
    int n = 0, rc;
    while ((rc = disk_put(e, dt_id((uint64_t)n), b, 65536)) == 0)
        n++;
    ASSERT_RC(rc, NB_ENOSPACE);
    assert_int_equal(n, 15);
    ASSERT_OK(disk_close(e));
    /* The default reserve: a 1 MiB file grows. */
    o.reserve = DISK_RESERVE_AUTO;
    ASSERT_OK(disk_open(&o, dir, &e));
    disk_stats_get(e, &st);
    assert_true(st.capacity > st.region);
    ASSERT_OK(disk_put(e, dt_id(99), b, 65536));
    ASSERT_OK(disk_close(e));
    assert_true(file_size(dir, DISK_DATA_FILE) > (1ull << 20));
    free(b);
    nb_test_rmdir(dir);
    free(dir);
}

/* Three data files, one outside the engine's directory: blobs spread over
 * all of them, each file grows on its own and the capacity bounds their
 * sum; reopening from the WAL and from a checkpoint finds every blob; the
 * recorded list wins (another one is NB_EUSAGE); a missing file is
 * NB_ECORRUPT. */
static void test_files(void **state)
{
    const mode *m = *state;
    char *dir = nb_test_dir("files");
    char *other = nb_test_dir("files-other");
    ASSERT_OK(nb_mkdir_p(other, 0755));
    char *third = nb_xasprintf("%s/third.dat", other);
    const char *files[] = {"data.0", "data.1", third};
    disk_options o;
    dt_opts(&o, m->io, m->direct);
    o.files = files;
    o.n_files = 3;
    o.initial_size = 1ull << 20;
    o.grow_step = 1ull << 20;
    o.capacity = 9ull << 20;
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    uint8_t *b = malloc(65536);
    uint64_t n = 0;
    int rc;
    for (;; n++) {
        dt_fill(b, 65536, dt_id(n), 1);
        if ((rc = disk_put(e, dt_id(n), b, 65536)) != 0)
            break;
    }
    ASSERT_RC(rc, NB_ENOSPACE);
    assert_true(n >= 135 && n <= 141); /* 3 x 47 when nothing is lost to holes */
    disk_stats st;
    disk_stats_get(e, &st);
    assert_int_equal(st.files, 3);
    assert_int_equal(st.capacity, (9ull << 20) - 3 * 4096);
    for (unsigned i = 0; i < 3; i++) {
        disk_file_stats fs;
        ASSERT_OK(disk_file_stats_get(e, i, &fs));
        assert_int_equal(fs.size, 3ull << 20);
        assert_true(fs.bytes_allocated >= 40 * 65536);
        assert_false(fs.block_device);
    }
    disk_file_stats fs;
    ASSERT_RC(disk_file_stats_get(e, 3, &fs), NB_ENOTFOUND);
    ASSERT_OK(disk_close(e));
    assert_int_equal(file_size(other, "third.dat"), 3ull << 20);
    /* Reopen from a checkpoint, overwrite a few, reopen from the WAL. */
    o.close_checkpoint = 0;
    ASSERT_OK(disk_open(&o, dir, &e));
    for (uint64_t i = 0; i < n; i++)
        expect_ver(e, i, 65536, 1);
    for (uint64_t i = 0; i < 12; i++) {
        ASSERT_OK(disk_delete(e, dt_id(i)));
        put_ver(e, i, 60000, 2);
    }
    ASSERT_OK(disk_close(e));
    o.files = NULL; /* the recorded list */
    o.n_files = 0;
    ASSERT_OK(disk_open(&o, dir, &e));
    disk_stats_get(e, &st);
    assert_true(st.replayed >= 24);
    for (uint64_t i = 0; i < n; i++)
        expect_ver(e, i, i < 12 ? 60000 : 65536, i < 12 ? 2 : 1);
    ASSERT_OK(disk_close(e));
    char *argv[] = {"disk", "check", dir, NULL};
    assert_int_equal(disk_tool_main(3, argv), 0);
    /* Another list, or the files in another order: refused. */
    const char *two[] = {"data.0", "data.1"};
    o.files = two;
    o.n_files = 2;
    ASSERT_RC(disk_open(&o, dir, &e), NB_EUSAGE);
    const char *swapped[] = {"data.1", "data.0", third};
    o.files = swapped;
    o.n_files = 3;
    ASSERT_RC(disk_open(&o, dir, &e), NB_EUSAGE);
    /* A missing file is damage, not an empty engine. */
    o.files = NULL;
    o.n_files = 0;
    char *moved = nb_xasprintf("%s.moved", third);
    assert_int_equal(rename(third, moved), 0);
    ASSERT_RC(disk_open(&o, dir, &e), NB_ECORRUPT);
    assert_int_equal(disk_tool_main(3, argv), 1); /* damage found */
    assert_int_equal(rename(moved, third), 0);
    ASSERT_OK(disk_open(&o, dir, &e));
    expect_ver(e, n - 1, 65536, 1);
    ASSERT_OK(disk_close(e));
    free(moved);
    free(b);
    free(third);
    nb_test_rmdir(other);
    free(other);
    nb_test_rmdir(dir);
    free(dir);
}

static void test_ref_pin(void **state)
{
    const mode *m = *state;
    char *dir = nb_test_dir("pin");
    disk_options o;
    dt_opts(&o, m->io, m->direct);
    o.capacity = 2ull << 20;
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    put_ver(e, 1, 10000, 1);
    disk_ref ref;
    ASSERT_OK(disk_read_ref(e, dt_id(1), DISK_REF_VERIFY, &ref));
    assert_int_equal(ref.len, 10000);
    disk_stats st;
    disk_stats_get(e, &st);
    assert_int_equal(st.pinned, 1);
    /* Delete the blob and fill the engine: the pinned extent stays put. */
    ASSERT_OK(disk_delete(e, dt_id(1)));
    for (uint64_t i = 2; disk_put(e, dt_id(i), "x", 1) == 0; i++)
        ;
    uint8_t *b = malloc(10000);
    size_t got;
    char *data = nb_xasprintf("%s/%s", dir, DISK_DATA_FILE);
    int fd = open(data, O_RDONLY);
    free(data);
    assert_true(fd >= 0);
    ASSERT_OK(nb_pread_full(fd, b, 10000, (off_t)ref.off, &got));
    assert_int_equal(got, 10000);
    assert_true(dt_check(b, 10000, dt_id(1), 1));
    assert_int_equal(nb_crc32c(0, b, 10000), ref.crc32c);
    ASSERT_OK(nb_pread_full(ref.fd, b, 10000, (off_t)ref.off, &got));
    assert_true(dt_check(b, 10000, dt_id(1), 1));
    close(fd);
    disk_stats_get(e, &st);
    uint64_t free_before = st.bytes_free;
    disk_unpin(e, &ref);
    disk_unpin(e, &ref); /* second unpin of the same ref is a no-op */
    disk_stats_get(e, &st);
    assert_int_equal(st.pinned, 0);
    assert_int_equal(st.bytes_free, free_before + 3 * 4096);
    ASSERT_RC(disk_read_ref(e, dt_id(1), 0, &ref), NB_ENOTFOUND);
    free(b);
    ASSERT_OK(disk_close(e));
    nb_test_rmdir(dir);
    free(dir);
}

static void corrupt_byte(const char *path, uint64_t off)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t c;
    size_t got;
    ASSERT_OK(nb_pread_full(fd, &c, 1, (off_t)off, &got));
    c ^= 0x5a;
    ASSERT_OK(nb_pwrite_full(fd, &c, 1, (off_t)off));
    close(fd);
}

static void test_checksum(void **state)
{
    const mode *m = *state;
    char *dir = nb_test_dir("checksum");
    disk_env *e = open_mode(m, dir);
    put_ver(e, 1, 20000, 1);
    put_ver(e, 2, 20000, 1);
    disk_ref ref;
    ASSERT_OK(disk_read_ref(e, dt_id(1), 0, &ref));
    uint64_t off = ref.off;
    disk_unpin(e, &ref);
    ASSERT_OK(disk_close(e));
    char *data = nb_xasprintf("%s/%s", dir, DISK_DATA_FILE);
    corrupt_byte(data, off + 12345);
    char *argv[] = {"disk", "check", dir, NULL};
    assert_int_equal(disk_tool_main(3, argv), 1);
    e = open_mode(m, dir);
    uint8_t *b = malloc(20000);
    memset(b, 0xee, 20000);
    size_t got = 7;
    ASSERT_RC(disk_read(e, dt_id(1), 0, 20000, b, &got), NB_ECHECKSUM);
    assert_int_equal(got, 0);
    ASSERT_RC(disk_read(e, dt_id(1), 0, 10, b, &got), NB_ECHECKSUM);
    ASSERT_RC(disk_read_ref(e, dt_id(1), DISK_REF_VERIFY, &ref), NB_ECHECKSUM);
    disk_stats st;
    disk_stats_get(e, &st);
    assert_int_equal(st.pinned, 0);
    expect_ver(e, 2, 20000, 1);
    /* Replacing the damaged blob heals it. */
    put_ver(e, 1, 20000, 3);
    expect_ver(e, 1, 20000, 3);
    ASSERT_OK(disk_close(e));
    assert_int_equal(disk_tool_main(3, argv), 0);
    free(b);
    free(data);
    nb_test_rmdir(dir);
    free(dir);
}

/* Format 4: a blob over DISK_SEG_SIZE carries a CRC per segment. Range
 * reads return the right bytes and verify only the segments they touch: a
 * flipped byte in segment 5 fails reads that touch it and no other; a
 * flipped byte in the table fails every range read (and the tool's check)
 * while a whole read, checked against the blob's CRC, still works. */
static void test_segments(void **state)
{
    const mode *m = *state;
    char *dir = nb_test_dir("segments");
    disk_env *e = open_mode(m, dir);
    const size_t big = (4u << 20) + 4097, seg = DISK_SEG_SIZE;
    uint8_t *want = malloc(big), *b = malloc(big + 16);
    dt_fill(want, big, dt_id(1), 1);
    ASSERT_OK(disk_put(e, dt_id(1), want, big));
    put_ver(e, 2, seg, 1);     /* one segment: no table */
    put_ver(e, 3, seg + 1, 1); /* two, the second one byte */
    size_t got;
    uint64_t rng = 5;
    for (int i = 0; i < 200; i++) {
        uint64_t off = dt_rand(&rng) % (big + 1);
        size_t len = (size_t)(dt_rand(&rng) % (3 * seg));
        if (i % 4 == 0) /* segment-aligned: straight into the buffer */
            off = off / seg * seg, len = len / seg * seg + seg;
        ASSERT_OK(disk_read(e, dt_id(1), off, len, b, &got));
        assert_int_equal(got, big - off < len ? big - off : len);
        assert_memory_equal(b, want + off, got);
    }
    ASSERT_OK(disk_read(e, dt_id(3), seg - 1, 10, b, &got));
    assert_int_equal(got, 2);
    disk_ref ref;
    uint32_t crcs[70];
    ASSERT_OK(disk_read_ref(e, dt_id(2), 0, &ref));
    ASSERT_OK(disk_ref_seg_crcs(e, &ref, crcs));
    assert_int_equal(crcs[0], ref.crc32c);
    disk_unpin(e, &ref);
    ASSERT_OK(disk_read_ref(e, dt_id(1), 0, &ref));
    assert_int_equal(ref.crc32c, nb_crc32c(0, want, big));
    ASSERT_OK(disk_ref_seg_crcs(e, &ref, crcs));
    for (size_t k = 0; k * seg < big; k++)
        assert_int_equal(crcs[k],
                         nb_crc32c(0, want + k * seg, big - k * seg < seg ? big - k * seg : seg));
    uint64_t at = ref.off;
    disk_unpin(e, &ref);
    ASSERT_OK(disk_close(e));

    char *data = nb_xasprintf("%s/%s", dir, DISK_DATA_FILE);
    char *argv[] = {"disk", "check", dir, NULL};
    assert_int_equal(disk_tool_main(3, argv), 0);
    corrupt_byte(data, at + 5 * seg + 77);
    assert_int_equal(disk_tool_main(3, argv), 1);
    e = open_mode(m, dir);
    ASSERT_OK(disk_read(e, dt_id(1), 3 * seg + 5, 1000, b, &got));
    assert_memory_equal(b, want + 3 * seg + 5, 1000);
    ASSERT_OK(disk_read(e, dt_id(1), 6 * seg, 2 * seg, b, &got));
    assert_memory_equal(b, want + 6 * seg, 2 * seg);
    ASSERT_RC(disk_read(e, dt_id(1), 5 * seg + 100, 10, b, &got), NB_ECHECKSUM);
    assert_int_equal(got, 0);
    ASSERT_RC(disk_read(e, dt_id(1), 4 * seg, 3 * seg, b, &got), NB_ECHECKSUM);
    ASSERT_RC(disk_read(e, dt_id(1), 0, big, b, &got), NB_ECHECKSUM);
    ASSERT_OK(disk_close(e));
    corrupt_byte(data, at + 5 * seg + 77); /* restored */

    /* The table is in the AU after the data; its third CRC damaged. */
    uint64_t table = at + (big + 4095) / 4096 * 4096;
    corrupt_byte(data, table + 2 * 4 + 1);
    assert_int_equal(disk_tool_main(3, argv), 1);
    e = open_mode(m, dir);
    ASSERT_RC(disk_read(e, dt_id(1), 7 * seg, 10, b, &got), NB_ECHECKSUM);
    ASSERT_RC(disk_read(e, dt_id(1), big - 1, 1, b, &got), NB_ECHECKSUM);
    ASSERT_OK(disk_read(e, dt_id(1), 0, big, b, &got));
    assert_memory_equal(b, want, big);
    ASSERT_OK(disk_read_ref(e, dt_id(1), 0, &ref));
    ASSERT_RC(disk_ref_seg_crcs(e, &ref, crcs), NB_ECHECKSUM);
    disk_unpin(e, &ref);
    expect_ver(e, 3, seg + 1, 1);
    ASSERT_OK(disk_close(e));
    corrupt_byte(data, table + 2 * 4 + 1);
    assert_int_equal(disk_tool_main(3, argv), 0);
    free(data);
    free(want);
    free(b);
    nb_test_rmdir(dir);
    free(dir);
}

typedef struct {
    disk_env *e;
    int t, errors;
} sw_arg;

/* Large puts from an aligned buffer of whole AUs (the table from the
 * put's stack) and from an odd length (data and table in one bounce
 * buffer), by more writers than io_uring has transfer rings, so that some
 * find every ring busy and write data and table the plain way. */
static void *sw_thread(void *arg)
{
    sw_arg *a = arg;
    const size_t cap = (256u << 10) + 4096;
    uint8_t *b = nb_xaligned_alloc(4096, cap);
    for (int i = 0; i < 6; i++) {
        uint64_t id = (uint64_t)(a->t * 100 + i);
        size_t len = i % 2 ? (256u << 10) + 123 + (size_t)a->t : (256u << 10);
        dt_fill(b, len, dt_id(id), 1);
        if (disk_put(a->e, dt_id(id), b, len) != 0)
            a->errors++;
    }
    free(b);
    return NULL;
}

static void test_segments_writers(void **state)
{
    const mode *m = *state;
    char *dir = nb_test_dir("segwriters");
    disk_env *e = open_mode(m, dir);
    enum { W = 12 };
    pthread_t th[W];
    sw_arg a[W];
    for (int t = 0; t < W; t++) {
        a[t] = (sw_arg){e, t, 0};
        pthread_create(&th[t], NULL, sw_thread, &a[t]);
    }
    for (int t = 0; t < W; t++) {
        pthread_join(th[t], NULL);
        assert_int_equal(a[t].errors, 0);
    }
    for (int pass = 0; pass < 2; pass++) {
        uint8_t *want = malloc((256u << 10) + 200), *b = malloc(3 * DISK_SEG_SIZE);
        for (int t = 0; t < W; t++)
            for (int i = 0; i < 6; i++) {
                uint64_t id = (uint64_t)(t * 100 + i);
                size_t len = i % 2 ? (256u << 10) + 123 + (size_t)t : (256u << 10), got;
                dt_fill(want, len, dt_id(id), 1);
                /* Ranges check the table, then the segments they touch. */
                uint64_t off = (uint64_t)(t * 7 + i) * 9973 % len;
                ASSERT_OK(disk_read(e, dt_id(id), off, 2 * DISK_SEG_SIZE, b, &got));
                assert_int_equal(got,
                                 len - off < 2 * DISK_SEG_SIZE ? len - off : 2 * DISK_SEG_SIZE);
                assert_memory_equal(b, want + off, got);
                ASSERT_OK(disk_read(e, dt_id(id), len - 5, 100, b, &got));
                assert_int_equal(got, 5);
                assert_memory_equal(b, want + len - 5, 5);
            }
        free(want);
        free(b);
        ASSERT_OK(disk_close(e));
        char *argv[] = {"disk", "check", dir, NULL};
        assert_int_equal(disk_tool_main(3, argv), 0); /* every table against its bytes */
        if (pass == 0)
            e = open_mode(m, dir);
    }
    nb_test_rmdir(dir);
    free(dir);
}

typedef struct {
    disk_env *e;
    int t;
} zw_arg;

static void *zw_thread(void *arg)
{
    zw_arg *a = arg;
    for (int i = 0; i < 80; i++) /* 80 x 64 KiB of PUTD: 5 MiB of WAL each */
        put_ver(a->e, (uint64_t)(a->t * 1000 + i), 65536 - (size_t)a->t * 100, (uint64_t)i);
    return NULL;
}

/* Long WAL files: the background thread writes each next step of zeros
 * (DISK_WAL_STEP) while two writers commit below it; nothing of theirs
 * may be overwritten, and a replay (no checkpoint at close) finds every
 * record across the steps, on both I/O paths. */
static void test_wal_zeros_ahead(void **state)
{
    (void)state;
    for (int path = 0; path < 2; path++) {
        char *dir = nb_test_dir("walzero");
        disk_options o;
        dt_opts(&o, path ? DISK_IO_URING : DISK_IO_POSIX,
                path ? DISK_DIRECT_AUTO : DISK_DIRECT_OFF);
        o.wal_max_bytes = 64ull << 20; /* one WAL file for all of it */
        o.close_checkpoint = 0;
        disk_env *e;
        ASSERT_OK(disk_open(&o, dir, &e));
        pthread_t th[2];
        zw_arg args[2] = {{e, 0}, {e, 1}};
        for (int t = 0; t < 2; t++)
            pthread_create(&th[t], NULL, zw_thread, &args[t]);
        for (int t = 0; t < 2; t++)
            pthread_join(th[t], NULL);
        disk_stats st;
        disk_stats_get(e, &st);
        assert_true(st.wal_bytes > 8u << 20); /* past two steps */
        assert_int_equal(st.checkpoints, 0);
        ASSERT_OK(disk_close(e));
        ASSERT_OK(disk_open(&o, dir, &e));
        disk_stats_get(e, &st);
        assert_int_equal(st.blobs, 160);
        assert_true(st.replayed >= 160);
        for (int t = 0; t < 2; t++)
            for (int i = 0; i < 80; i++)
                expect_ver(e, (uint64_t)(t * 1000 + i), 65536 - (size_t)t * 100, (uint64_t)i);
        ASSERT_OK(disk_close(e));
        nb_test_rmdir(dir);
        free(dir);
    }
}

static void test_checkpoints(void **state)
{
    (void)state;
    char *dir = nb_test_dir("ckpt");
    disk_options o;
    dt_opts(&o, DISK_IO_POSIX, DISK_DIRECT_OFF);
    o.wal_max_bytes = 16 * 1024; /* a checkpoint every ~340 records */
    o.close_checkpoint = 0;
    o.no_sync = 1; /* the WAL logic is under test here, not the fsyncs */
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    int n = 2000;
    for (int i = 0; i < n; i++) {
        put_ver(e, (uint64_t)(i % 500), 100, (uint64_t)i);
        if (i % 7 == 3)
            ASSERT_OK(disk_delete(e, dt_id((uint64_t)(i % 500))));
    }
    disk_stats st;
    disk_stats_get(e, &st);
    assert_true(st.checkpoints >= 3);
    /* The background thread writes them; a put waits for one only once
     * the WAL reaches twice the bound. */
    assert_true(st.wal_bytes <= 2 * 16 * 1024 + 48);
    assert_true(st.checkpoints_in_put < st.checkpoints);
    uint64_t blobs = st.blobs;
    ASSERT_OK(disk_close(e));
    /* Only the live WAL files remain. */
    int wal_files = 0;
    for (uint64_t s = 1; s < 100; s++) {
        char *p = nb_xasprintf("%s/wal-%016llx.log", dir, (unsigned long long)s);
        wal_files += access(p, F_OK) == 0;
        free(p);
    }
    assert_true(wal_files <= 2);
    ASSERT_OK(disk_open(&o, dir, &e));
    disk_stats_get(e, &st);
    assert_int_equal(st.blobs, blobs);
    assert_true(st.replayed < 400);
    for (int i = n - 500; i < n; i++) {
        uint64_t id = (uint64_t)(i % 500);
        if (i % 7 == 3)
            ASSERT_RC(disk_exists(e, dt_id(id), NULL), NB_ENOTFOUND);
        else
            expect_ver(e, id, 100, (uint64_t)i);
    }
    ASSERT_OK(disk_close(e));
    nb_test_rmdir(dir);
    free(dir);
}

/* ---- bad files ---- */

/* The newest WAL file in dir. */
static char *last_wal(const char *dir)
{
    char *last = NULL;
    for (uint64_t s = 1; s < 64; s++) {
        char *p = nb_xasprintf("%s/wal-%016llx.log", dir, (unsigned long long)s);
        if (access(p, F_OK) == 0) {
            free(last);
            last = p;
        } else {
            free(p);
        }
    }
    assert_non_null(last);
    return last;
}

/* rec: the bytes of one put's record: 48 for a PUT, more for a PUTD. */
static void truncated_wal(uint32_t inline_max, size_t rec)
{
    char *dir = nb_test_dir("trunc");
    disk_options o;
    dt_opts(&o, DISK_IO_POSIX, DISK_DIRECT_OFF);
    o.close_checkpoint = 0;
    o.inline_max = inline_max;
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    for (uint64_t i = 0; i < 10; i++)
        put_ver(e, i, 3000, 1);
    ASSERT_OK(disk_close(e));
    /* Cut the last record in half: it is dropped, the rest survives. */
    char *w = last_wal(dir);
    /* (WAL files are preallocated: the records end before the file.) */
    assert_int_equal(truncate(w, (off_t)(64 + 10 * rec - 20)), 0);
    ASSERT_OK(disk_open(&o, dir, &e));
    for (uint64_t i = 0; i < 9; i++)
        expect_ver(e, i, 3000, 1);
    ASSERT_RC(disk_exists(e, dt_id(9), NULL), NB_ENOTFOUND);
    put_ver(e, 9, 3000, 2); /* and the engine goes on writing */
    ASSERT_OK(disk_close(e));
    ASSERT_OK(disk_open(&o, dir, &e));
    for (uint64_t i = 0; i < 9; i++)
        expect_ver(e, i, 3000, 1);
    expect_ver(e, 9, 3000, 2);
    ASSERT_OK(disk_close(e));
    free(w);
    nb_test_rmdir(dir);
    free(dir);
}

static void test_truncated_wal(void **state)
{
    (void)state;
    truncated_wal(0, 48);
    truncated_wal(DISK_INLINE_DEFAULT, 48 + 3008); /* PUTD: the data cut short */
}

/* Puts without sync: readable at once, no fsync each; one disk_sync()
 * makes them all durable with a fixed number of fsyncs, and a second one
 * with nothing new costs none. */
static void test_put_nosync(void **state)
{
    (void)state;
    char *dir = nb_test_dir("nosync");
    disk_options o;
    dt_opts(&o, DISK_IO_POSIX, DISK_DIRECT_OFF);
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    uint8_t b[1];
    ASSERT_RC(disk_put_flags(e, dt_id(0), b, 1, 4), NB_EUSAGE);
    disk_stats a, z;
    ASSERT_OK(disk_sync(e)); /* settle the first one's cost */
    disk_stats_get(e, &a);
    for (uint64_t i = 0; i < 30; i++) {
        size_t len = i % 2 ? 3000 : 200000; /* in the WAL record, and not */
        uint8_t *p = malloc(len);
        dt_fill(p, len, dt_id(i), 1);
        ASSERT_OK(disk_put_flags(e, dt_id(i), p, len, DISK_PUT_NOSYNC));
        free(p);
        expect_ver(e, i, len, 1);
    }
    disk_stats_get(e, &z);
    assert_int_equal(z.fsyncs, a.fsyncs);
    ASSERT_OK(disk_sync(e));
    disk_stats_get(e, &a);
    assert_true(a.fsyncs - z.fsyncs >= 2 && a.fsyncs - z.fsyncs <= 3); /* data, WAL (+data) */
    ASSERT_OK(disk_sync(e));
    disk_stats_get(e, &z);
    assert_int_equal(z.fsyncs, a.fsyncs);
    /* Replacing a blob without sync, then deleting it durably. */
    put_ver(e, 100, 5000, 1);
    uint8_t p[5000];
    dt_fill(p, sizeof p, dt_id(100), 2);
    ASSERT_OK(disk_put_flags(e, dt_id(100), p, sizeof p, DISK_PUT_NOSYNC));
    expect_ver(e, 100, 5000, 2);
    ASSERT_OK(disk_close(e));
    ASSERT_OK(disk_open(&o, dir, &e));
    for (uint64_t i = 0; i < 30; i++)
        expect_ver(e, i, i % 2 ? 3000 : 200000, 1);
    expect_ver(e, 100, 5000, 2);
    ASSERT_OK(disk_delete(e, dt_id(100)));
    ASSERT_OK(disk_close(e));
    nb_test_rmdir(dir);
    free(dir);
}

/* Small puts carry their data in the WAL: a process killed before any
 * checkpoint, whose data-file copies were then lost (a power cut before the
 * data file was synced), gets them back from the WAL alone. */
static void test_putd_restore(void **state)
{
    (void)state;
    char *dir = nb_test_dir("putd");
    disk_options o;
    dt_opts(&o, DISK_IO_POSIX, DISK_DIRECT_OFF);
    o.inline_max = 16384;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        disk_env *e;
        if (disk_open(&o, dir, &e) != 0)
            _exit(1);
        for (uint64_t i = 0; i < 40; i++) {
            size_t len = (size_t)(i * 997 % 20000);
            uint8_t *b = malloc(len + 1);
            dt_fill(b, len, dt_id(i), 1);
            if (disk_put(e, dt_id(i), b, len) != 0)
                _exit(2);
            free(b);
        }
        disk_stats st;
        disk_stats_get(e, &st);
        _exit(st.inline_puts > 0 && st.inline_puts < 40 ? 0 : 3); /* no close: a crash */
    }
    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    /* Zero the data region: only puts over 16 KiB were synced there. */
    char *data = nb_xasprintf("%s/data.0", dir);
    int fd = open(data, O_RDWR);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *z = calloc(1, 1 << 20);
    for (off_t off = 4096; off < st.st_size; off += 1 << 20)
        assert_true(pwrite(fd, z, 1 << 20, off) > 0);
    free(z);
    /* The puts over 16 KiB lost their data too (as if by bit rot): the
     * engine refuses to read them (NB_ECHECKSUM), or, in the final two
     * batches, drops them at recovery (NB_ENOTFOUND). */
    close(fd);
    free(data);
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    for (uint64_t i = 0; i < 40; i++) {
        size_t len = (size_t)(i * 997 % 20000);
        if (len <= 16384) {
            expect_ver(e, i, len, 1);
        } else {
            uint8_t b[1];
            size_t got;
            int rc = disk_read(e, dt_id(i), 0, 1, b, &got);
            assert_true(rc == NB_ECHECKSUM || rc == NB_ENOTFOUND);
        }
    }
    ASSERT_OK(disk_close(e));
    /* A clean close leaves nothing to restore, and everything still reads. */
    ASSERT_OK(disk_open(&o, dir, &e));
    for (uint64_t i = 0; i < 40; i++)
        if (i * 997 % 20000 <= 16384)
            expect_ver(e, i, (size_t)(i * 997 % 20000), 1);
    ASSERT_OK(disk_close(e));
    nb_test_rmdir(dir);
    free(dir);
}

/* WAL batches that end exactly on a 4 KiB block boundary with an O_DIRECT
 * WAL: the empty tail block must not be copied from past the batch buffer
 * (ASan caught it in the power-loss test). 64 B header + 48 + 3984 = 4096,
 * then 48 + 8144 = 8192 fills the doubled buffer to its last byte. */
static void test_wal_block_boundary(void **state)
{
    (void)state;
    char *dir = nb_test_dir("walblock");
    disk_options o;
    dt_opts(&o, DISK_IO_URING, DISK_DIRECT_AUTO);
    o.inline_max = 16384;
    static const size_t sizes[] = {3984, 8144, 4048, 100, 8144};
    size_t n = sizeof sizes / sizeof sizes[0];
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    for (size_t i = 0; i < n; i++)
        put_ver(e, i, sizes[i], 1);
    for (size_t i = 0; i < n; i++)
        expect_ver(e, i, sizes[i], 1);
    ASSERT_OK(disk_close(e));
    ASSERT_OK(disk_open(&o, dir, &e));
    for (size_t i = 0; i < n; i++)
        expect_ver(e, i, sizes[i], 1);
    ASSERT_OK(disk_close(e));
    nb_test_rmdir(dir);
    free(dir);
}

static void test_newer_wal_version(void **state)
{
    (void)state;
    char *dir = nb_test_dir("version");
    disk_options o;
    dt_opts(&o, DISK_IO_POSIX, DISK_DIRECT_OFF);
    o.close_checkpoint = 0;
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    for (uint64_t i = 0; i < 5; i++)
        put_ver(e, i, 5000, 1);
    ASSERT_OK(disk_close(e));
    char *w = last_wal(dir);
    int fd = open(w, O_RDWR);
    uint8_t v[4] = {DISK_FORMAT_VERSION + 1, 0, 0, 0};
    ASSERT_OK(nb_pwrite_full(fd, v, 4, 8));
    ASSERT_RC(disk_open(&o, dir, &e), NB_EVERSION);
    assert_null(e);
    char *argv[] = {"disk", "stats", dir, NULL};
    assert_int_equal(disk_tool_main(3, argv), 2);
    /* Nothing was changed: with the version restored all is there. */
    v[0] = DISK_FORMAT_VERSION;
    ASSERT_OK(nb_pwrite_full(fd, v, 4, 8));
    close(fd);
    ASSERT_OK(disk_open(&o, dir, &e));
    for (uint64_t i = 0; i < 5; i++)
        expect_ver(e, i, 5000, 1);
    ASSERT_OK(disk_close(e));
    /* Same for a newer checkpoint. */
    char *ck = nb_xasprintf("%s/%s", dir, DISK_CKPT_FILE);
    fd = open(ck, O_RDWR);
    v[0] = 9;
    ASSERT_OK(nb_pwrite_full(fd, v, 4, 8));
    ASSERT_RC(disk_open(&o, dir, &e), NB_EVERSION);
    v[0] = DISK_FORMAT_VERSION;
    ASSERT_OK(nb_pwrite_full(fd, v, 4, 8));
    close(fd);
    ASSERT_OK(disk_open(&o, dir, &e));
    expect_ver(e, 4, 5000, 1);
    ASSERT_OK(disk_close(e));
    free(ck);
    free(w);
    nb_test_rmdir(dir);
    free(dir);
}

/* An engine of format 3 (no segment tables) is refused with NB_EVERSION
 * and left as it was. */
static void test_older_format(void **state)
{
    (void)state;
    char *dir = nb_test_dir("older");
    disk_options o;
    dt_opts(&o, DISK_IO_POSIX, DISK_DIRECT_OFF);
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    put_ver(e, 1, 200000, 1);
    ASSERT_OK(disk_close(e));
    int copies = 0;
    for (int back = 0; back < 2; back++) {
        for (int slot = 0; slot < 2; slot++) {
            char *ck = nb_xasprintf("%s/%s", dir, slot ? DISK_CKPT_FILE2 : DISK_CKPT_FILE);
            int fd = open(ck, O_RDWR);
            free(ck);
            if (fd < 0)
                continue;
            uint8_t h[DISK_CKPT_HEADER];
            size_t got;
            ASSERT_OK(nb_pread_full(fd, h, sizeof h, 0, &got));
            nb_put_u32le(h + 8, back ? DISK_FORMAT_VERSION : 3);
            nb_put_u32le(h + 76, nb_crc32c_mask(nb_crc32c(0, h, 76)));
            ASSERT_OK(nb_pwrite_full(fd, h, sizeof h, 0));
            close(fd);
            copies += !back;
        }
        if (!back) {
            assert_true(copies >= 1);
            ASSERT_RC(disk_open(&o, dir, &e), NB_EVERSION);
            assert_null(e);
            char *argv[] = {"disk", "check", dir, NULL};
            assert_int_equal(disk_tool_main(3, argv), 2);
        }
    }
    ASSERT_OK(disk_open(&o, dir, &e));
    expect_ver(e, 1, 200000, 1);
    ASSERT_OK(disk_close(e));
    nb_test_rmdir(dir);
    free(dir);
}

static void test_small_data_file(void **state)
{
    (void)state;
    char *dir = nb_test_dir("small");
    disk_options o;
    dt_opts(&o, DISK_IO_POSIX, DISK_DIRECT_OFF);
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    for (uint64_t i = 0; i < 5; i++)
        put_ver(e, i, 5000, 1);
    ASSERT_OK(disk_close(e));
    char *data = nb_xasprintf("%s/%s", dir, DISK_DATA_FILE);
    struct stat st;
    assert_int_equal(stat(data, &st), 0);
    assert_int_equal(truncate(data, st.st_size / 2), 0);
    ASSERT_RC(disk_open(&o, dir, &e), NB_ECORRUPT);
    char *argv[] = {"disk", "check", dir, NULL};
    assert_int_equal(disk_tool_main(3, argv), 1);
    /* Grown back (the blobs sit at the start), everything is there. */
    assert_int_equal(truncate(data, st.st_size), 0);
    ASSERT_OK(disk_open(&o, dir, &e));
    for (uint64_t i = 0; i < 5; i++)
        expect_ver(e, i, 5000, 1);
    ASSERT_OK(disk_close(e));
    /* Both checkpoint copies damaged is an error, never an empty engine. */
    char *ck = nb_xasprintf("%s/%s", dir, DISK_CKPT_FILE);
    char *ck2 = nb_xasprintf("%s/%s", dir, DISK_CKPT_FILE2);
    corrupt_byte(ck, 90);
    corrupt_byte(ck2, 20);
    ASSERT_RC(disk_open(&o, dir, &e), NB_ECORRUPT);
    corrupt_byte(ck, 90);
    corrupt_byte(ck2, 20);
    ASSERT_OK(disk_open(&o, dir, &e));
    ASSERT_OK(disk_close(e));
    free(ck);
    free(ck2);
    free(data);
    nb_test_rmdir(dir);
    free(dir);
}

/* The newest checkpoint copy damaged (a flipped byte in its header or
 * entries, or torn short): recovery takes the other copy and replays the
 * WAL after it, losing nothing; the next checkpoint replaces the damaged
 * copy. */
static void test_checkpoint_copies(void **state)
{
    (void)state;
    char *dir = nb_test_dir("ckcopies");
    char *path[2] = {nb_xasprintf("%s/%s", dir, DISK_CKPT_FILE),
                     nb_xasprintf("%s/%s", dir, DISK_CKPT_FILE2)};
    disk_options o;
    dt_opts(&o, DISK_IO_POSIX, DISK_DIRECT_OFF);
    o.wal_max_bytes = 4096; /* checkpoints while writing, too */
    uint64_t ver = 0;
    for (int damage = 0; damage < 4; damage++) {
        disk_env *e;
        ASSERT_OK(disk_open(&o, dir, &e));
        for (uint64_t i = 0; i < 40 && damage > 0; i++)
            expect_ver(e, i, 3000 + i, ver);
        ver++;
        for (uint64_t i = 0; i < 40; i++)
            put_ver(e, i, 3000 + i, ver);
        ASSERT_OK(disk_close(e)); /* a checkpoint */
        /* Damage whichever copy is newer (the larger wal_seq). */
        uint64_t seq[2] = {0, 0};
        for (int s = 0; s < 2; s++) {
            int fd = open(path[s], O_RDONLY);
            assert_true(fd >= 0);
            uint8_t b[8];
            size_t got;
            ASSERT_OK(nb_pread_full(fd, b, 8, 32, &got));
            close(fd);
            seq[s] = nb_get_u64le(b);
        }
        const char *newest = seq[1] > seq[0] ? path[1] : path[0];
        if (damage == 0)
            corrupt_byte(newest, 40); /* the header */
        else if (damage == 1)
            corrupt_byte(newest, 80 + 7 * 32 + 3); /* an entry */
        else if (damage == 2)
            assert_int_equal(truncate(newest, 100), 0); /* torn */
        else
            assert_int_equal(unlink(newest), 0);
    }
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    for (uint64_t i = 0; i < 40; i++)
        expect_ver(e, i, 3000 + i, ver);
    ASSERT_OK(disk_close(e));
    char *argv[] = {"disk", "check", dir, NULL};
    assert_int_equal(disk_tool_main(3, argv), 0);
    free(path[0]);
    free(path[1]);
    nb_test_rmdir(dir);
    free(dir);
}

static void test_tool(void **state)
{
    (void)state;
    char *dir = nb_test_dir("tool");
    disk_env *e = open_mode(&posix_buffered, dir);
    for (uint64_t i = 0; i < 20; i++)
        put_ver(e, i, 7000, 1);
    /* Held by us: the tool cannot open it. */
    char *check[] = {"disk", "check", dir, NULL};
    assert_int_equal(disk_tool_main(3, check), 2);
    ASSERT_OK(disk_close(e));
    assert_int_equal(disk_tool_main(3, check), 0);
    char *stats[] = {"disk", "stats", dir, NULL};
    assert_int_equal(disk_tool_main(3, stats), 0);
    /* The standalone binary: same code, real exit codes. */
    char *cmd = nb_xasprintf("%s check '%s' >/dev/null", DISK_TOOL_BIN, dir);
    int st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    free(cmd);
    cmd = nb_xasprintf("%s frob '%s' 2>/dev/null", DISK_TOOL_BIN, dir);
    st = system(cmd);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
    free(cmd);
    char *bad[] = {"disk", "frob", dir, NULL};
    assert_int_equal(disk_tool_main(3, bad), 2);
    assert_int_equal(disk_tool_main(2, bad), 2);
    char *missing = nb_xasprintf("%s/nope", dir);
    char *nodir[] = {"disk", "check", missing, NULL};
    assert_int_equal(disk_tool_main(3, nodir), 2);
    free(missing);
    nb_test_rmdir(dir);
    free(dir);
}

/* ---- threads ---- */

typedef struct worker {
    disk_env *e;
    int t, n;
    int errors;
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    uint8_t *b = malloc(70000);
    uint64_t seed = (uint64_t)w->t;
    for (int i = 0; i < w->n; i++) {
        uint64_t id = (uint64_t)w->t * 1000 + dt_rand(&seed) % 50;
        size_t len = 1 + dt_rand(&seed) % 70000;
        dt_fill(b, len, dt_id(id), (uint64_t)i);
        if (disk_put(w->e, dt_id(id), b, len) != 0)
            w->errors++;
        size_t got;
        if (disk_read(w->e, dt_id(id), 0, len, b, &got) != 0 || got != len ||
            !dt_check(b, len, dt_id(id), (uint64_t)i))
            w->errors++;
        /* Read someone else's blob while they overwrite it. */
        uint64_t other = (uint64_t)((w->t + 1) % 4) * 1000 + dt_rand(&seed) % 50;
        int rc = disk_read(w->e, dt_id(other), 0, 70000, b, &got);
        if (rc != 0 && rc != NB_ENOTFOUND)
            w->errors++;
    }
    free(b);
    return NULL;
}

static void test_threads(void **state)
{
    const mode *m = *state;
    char *dir = nb_test_dir("threads");
    disk_options o;
    dt_opts(&o, m->io, m->direct);
    o.wal_max_bytes = 8192;
    disk_env *e;
    ASSERT_OK(disk_open(&o, dir, &e));
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){.e = e, .t = i, .n = 300 / DT_SCALE};
        pthread_create(&th[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(w[i].errors, 0);
    }
    disk_stats st;
    disk_stats_get(e, &st);
    assert_int_equal(st.puts, 4 * (300 / DT_SCALE));
    fprintf(stderr, "%s: %llu puts in %llu group commits, %llu checkpoints\n", m->name,
            (unsigned long long)st.puts, (unsigned long long)st.group_commits,
            (unsigned long long)st.checkpoints);
    assert_true(st.group_commits <= st.puts);
    ASSERT_OK(disk_close(e));
    char *check[] = {"disk", "check", dir, NULL};
    assert_int_equal(disk_tool_main(3, check), 0);
    nb_test_rmdir(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate(test_basic, &posix_buffered),
        cmocka_unit_test_prestate(test_basic, &uring_direct),
        cmocka_unit_test(test_too_big_and_usage),
        cmocka_unit_test(test_enospace),
        cmocka_unit_test_prestate(test_grow, &posix_buffered),
        cmocka_unit_test_prestate(test_grow, &uring_direct),
        cmocka_unit_test(test_grow_reserve),
        cmocka_unit_test(test_size_recorded),
        cmocka_unit_test(test_loop_device),
        cmocka_unit_test_prestate(test_add_file, &posix_buffered),
        cmocka_unit_test_prestate(test_add_file, &uring_direct),
        cmocka_unit_test_prestate(test_files, &posix_buffered),
        cmocka_unit_test_prestate(test_files, &uring_direct),
        cmocka_unit_test_prestate(test_ref_pin, &posix_buffered),
        cmocka_unit_test_prestate(test_ref_pin, &uring_direct),
        cmocka_unit_test_prestate(test_checksum, &posix_buffered),
        cmocka_unit_test_prestate(test_checksum, &uring_direct),
        cmocka_unit_test_prestate(test_segments, &posix_buffered),
        cmocka_unit_test_prestate(test_segments, &uring_direct),
        cmocka_unit_test_prestate(test_segments_writers, &posix_buffered),
        cmocka_unit_test_prestate(test_segments_writers, &uring_direct),
        cmocka_unit_test(test_older_format),
        cmocka_unit_test(test_checkpoints),
        cmocka_unit_test(test_wal_zeros_ahead),
        cmocka_unit_test(test_truncated_wal),
        cmocka_unit_test(test_putd_restore),
        cmocka_unit_test(test_put_nosync),
        cmocka_unit_test(test_wal_block_boundary),
        cmocka_unit_test(test_newer_wal_version),
        cmocka_unit_test(test_small_data_file),
        cmocka_unit_test(test_checkpoint_copies),
        cmocka_unit_test(test_tool),
        cmocka_unit_test_prestate(test_threads, &posix_buffered),
        cmocka_unit_test_prestate(test_threads, &uring_direct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
