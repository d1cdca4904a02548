/*
 * nkv_tool — inspect and maintain an nkv database directory.
 *
 *   nkv_tool get DIR KEY            print the value of KEY
 *   nkv_tool scan DIR [FROM [TO]]   print key/value pairs in [FROM, TO)
 *   nkv_tool dump DIR               print every key/value pair
 *   nkv_tool stats DIR              levels, sizes, amplification
 *   nkv_tool check DIR              read every table block and the WAL
 *   nkv_tool sst FILE               dump one table: entries with sequence
 *                                   and type, then its properties
 *   nkv_tool manifest FILE          print the version edits of a MANIFEST
 *   nkv_tool repair DIR             rebuild the MANIFEST from what is intact
 *
 * Keys and values print with non-printable bytes as \xNN. Exit status 0
 * on success, 1 on an error (printed with its code), 2 on usage errors.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nkv_int.h"

static void put_escaped(const void *p, size_t n)
{
    const unsigned char *s = p;
    for (size_t i = 0; i < n; i++) {
        if (isprint(s[i]) && s[i] != '\\')
            putchar(s[i]);
        else
            printf("\\x%02x", s[i]);
    }
}

static int fail(const char *what, int rc)
{
    fprintf(stderr, "nkv_tool: %s: %s (%s)\n", what, nb_strerror(rc), nb_errname(rc));
    return 1;
}

static int open_ro(const char *dir, nkv_db **db)
{
    nkv_options o;
    nkv_options_init(&o);
    o.create_if_missing = false;
    o.paranoid_checks = true;
    int rc = nkv_open(&o, dir, db);
    if (rc)
        return fail(dir, rc);
    return 0;
}

static int cmd_scan(const char *dir, const char *from, const char *to)
{
    nkv_db *db;
    if (open_ro(dir, &db))
        return 1;
    nkv_read_options ro;
    nkv_read_options_init(&ro);
    ro.fill_cache = false;
    if (to) {
        ro.upper_bound = to;
        ro.upper_bound_len = strlen(to);
    }
    nkv_iter *it;
    int rc = nkv_iter_new(db, &ro, &it);
    if (rc)
        return fail("iterator", rc);
    uint64_t n = 0;
    if (from)
        nkv_iter_seek(it, from, strlen(from));
    else
        nkv_iter_seek_first(it);
    for (; nkv_iter_valid(it); nkv_iter_next(it)) {
        size_t kl, vl;
        const void *k = nkv_iter_key(it, &kl);
        const void *v = nkv_iter_value(it, &vl);
        put_escaped(k, kl);
        fputs(" => ", stdout);
        put_escaped(v, vl);
        putchar('\n');
        n++;
    }
    rc = nkv_iter_status(it);
    nkv_iter_free(it);
    nkv_close(db);
    if (rc)
        return fail("scan", rc);
    fprintf(stderr, "%llu entries\n", (unsigned long long)n);
    return 0;
}

static int cmd_get(const char *dir, const char *key)
{
    nkv_db *db;
    if (open_ro(dir, &db))
        return 1;
    void *v;
    size_t vl;
    int rc = nkv_get(db, NULL, key, strlen(key), &v, &vl);
    nkv_close(db);
    if (rc)
        return fail(key, rc);
    put_escaped(v, vl);
    putchar('\n');
    nkv_free(v);
    return 0;
}

static int cmd_stats(const char *dir)
{
    nkv_db *db;
    if (open_ro(dir, &db))
        return 1;
    char *s;
    int rc = nkv_property(db, "nkv.stats", &s);
    nkv_close(db);
    if (rc)
        return fail("stats", rc);
    fputs(s, stdout);
    nkv_free(s);
    return 0;
}

static int open_table(const char *path, nkv_table **t)
{
    const nkv_env *env = nkv_env_default();
    uint64_t size;
    nkv_file *f;
    int rc = env->file_size(env->ctx, path, &size);
    if (!rc)
        rc = env->open_read(env->ctx, path, &f);
    if (!rc)
        rc = nkv__table_open(env, f, path, size, NULL, t);
    return rc;
}

static int cmd_check(const char *dir)
{
    /* Opening replays the WAL with paranoid checks and reads the MANIFEST. */
    nkv_db *db;
    if (open_ro(dir, &db))
        return 1;
    nkv_close(db);
    char **names;
    size_t n;
    const nkv_env *env = nkv_env_default();
    int rc = env->list_dir(env->ctx, dir, &names, &n);
    if (rc)
        return fail(dir, rc);
    int bad = 0;
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(names[i]);
        if (len > 4 && !strcmp(names[i] + len - 4, ".sst")) {
            char *p = nb_xasprintf("%s/%s", dir, names[i]);
            nkv_table *t;
            uint64_t entries = 0;
            rc = open_table(p, &t);
            if (!rc) {
                rc = nkv__table_check(t, &entries);
                nkv__table_free(t);
            }
            if (rc) {
                printf("%s: %s\n", p, nb_strerror(rc));
                bad++;
            } else {
                total += entries;
            }
            free(p);
        }
        free(names[i]);
    }
    free(names);
    printf("%s: %llu table entries checked, %d damaged tables\n", dir, (unsigned long long)total,
           bad);
    return bad ? 1 : 0;
}

static int cmd_sst(const char *path)
{
    nkv_table *t;
    int rc = open_table(path, &t);
    if (rc)
        return fail(path, rc);
    nkv__it *it = nkv__table_iter(t, false, NULL, NULL, NULL);
    uint64_t n = 0;
    for (IT_FIRST(it); IT_VALID(it); IT_NEXT(it)) {
        nb_slice k = IT_KEY(it), v = IT_VAL(it);
        uint64_t tr = nkv__trailer(k);
        nb_slice uk = nkv__ukey(k);
        put_escaped(uk.ptr, uk.len);
        printf(" @%llu %s => ", (unsigned long long)(tr >> 8),
               (tr & 0xff) == NKV_TYPE_DELETE ? "DEL" : "PUT");
        put_escaped(v.ptr, v.len);
        putchar('\n');
        n++;
    }
    rc = IT_STATUS(it);
    IT_FREE(it);
    printf("# %llu entries (props: %llu)\n", (unsigned long long)n,
           (unsigned long long)nkv__table_entries(t));
    nkv__table_free(t);
    return rc ? fail(path, rc) : 0;
}

static int cmd_manifest(const char *path)
{
    uint8_t *data;
    size_t len;
    int rc = nkv__env_read_all(nkv_env_default(), path, &data, &len);
    if (rc)
        return fail(path, rc);
    nkv_wal_reader r;
    nkv__wal_reader_init(&r, data, len, path);
    nb_slice rec;
    int got, err = 0;
    while ((got = nkv__wal_read(&r, &rec)) != 0) {
        if (got < 0) {
            err = got;
            continue;
        }
        nkv_edit e;
        nkv__edit_init(&e);
        rc = nkv__edit_decode(&e, rec.ptr, rec.len);
        if (rc) {
            printf("@%llu: undecodable edit\n", (unsigned long long)r.last_rec_off);
            err = rc;
        } else {
            char *s = nkv__edit_describe(&e);
            printf("@%llu: %s\n", (unsigned long long)r.last_rec_off, s);
            free(s);
        }
        nkv__edit_free(&e);
    }
    nkv__wal_reader_free(&r);
    free(data);
    return err ? fail(path, err) : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: nkv_tool get DIR KEY | scan DIR [FROM [TO]] | dump DIR | stats DIR |\n"
                    "                check DIR | sst FILE | manifest FILE | repair DIR\n");
    return 2;
}

int main(int argc, char **argv)
{
    nb_log_set_level(NB_LOG_WARN);
    if (argc < 3)
        return usage();
    const char *cmd = argv[1], *arg = argv[2];
    if (!strcmp(cmd, "get") && argc == 4)
        return cmd_get(arg, argv[3]);
    if (!strcmp(cmd, "scan") && argc <= 5)
        return cmd_scan(arg, argc > 3 ? argv[3] : NULL, argc > 4 ? argv[4] : NULL);
    if (!strcmp(cmd, "dump") && argc == 3)
        return cmd_scan(arg, NULL, NULL);
    if (!strcmp(cmd, "stats") && argc == 3)
        return cmd_stats(arg);
    if (!strcmp(cmd, "check") && argc == 3)
        return cmd_check(arg);
    if (!strcmp(cmd, "sst") && argc == 3)
        return cmd_sst(arg);
    if (!strcmp(cmd, "manifest") && argc == 3)
        return cmd_manifest(arg);
    if (!strcmp(cmd, "repair") && argc == 3) {
        int rc = nkv_repair(NULL, arg);
        return rc ? fail(arg, rc) : 0;
    }
    return usage();
}
