/*
 * disk_tool.c — `check DIR`, `stats DIR` and `add-file DIR PATH`, the
 * engine's offline tools.
 *
 * check and stats open the engine read-only: recovery runs in memory (the WAL is
 * replayed, nothing is written, no WAL file is created). `check` then reads
 * every blob and verifies its CRC32C. Exit codes: 0 healthy, 1 damage found
 * (corrupt checkpoint/WAL/superblock or a blob failing its checksum), 2
 * usage error or the engine cannot be opened (missing, locked, newer
 * format, I/O error).
 */
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/mem.h"

#include "disk_int.h"

static int usage(void)
{
    fprintf(stderr,
            "usage: disk check DIR\n       disk stats DIR\n       disk add-file DIR PATH\n");
    return 2;
}

static int open_ro(const char *dir, disk_env **e)
{
    disk_options o;
    disk_options_init(&o);
    o.read_only = 1;
    o.io_mode = DISK_IO_POSIX;
    o.direct = DISK_DIRECT_OFF;
    int rc = disk_open(&o, dir, e);
    if (rc) {
        fprintf(stderr, "disk: cannot open %s: %s (%s)\n", dir, nb_strerror(rc), nb_errname(rc));
        return rc == NB_ECORRUPT || rc == NB_ECHECKSUM ? 1 : 2;
    }
    return 0;
}

typedef struct check_state {
    disk_env *e;
    uint8_t *buf;
    size_t cap;
    uint64_t blobs, bytes, bad, io_errors;
} check_state;

/* A blob over DISK_SEG_SIZE whose bytes passed: its segment table must
 * hold their segments' CRCs (range reads trust it). */
static int check_segs(disk_env *e, disk_id id, const uint8_t *b, uint64_t len)
{
    disk_ref ref;
    int rc = disk_read_ref(e, id, 0, &ref);
    if (rc)
        return rc;
    uint64_t n = (len + DISK_SEG_SIZE - 1) / DISK_SEG_SIZE;
    uint32_t *crcs = nb_xmalloc((size_t)n * 4);
    rc = disk_ref_seg_crcs(e, &ref, crcs);
    for (uint64_t i = 0; i < n && !rc && ref.len == len; i++) {
        uint64_t at = i * DISK_SEG_SIZE;
        size_t sl = (size_t)(len - at < DISK_SEG_SIZE ? len - at : DISK_SEG_SIZE);
        if (nb_crc32c(0, b + at, sl) != crcs[i])
            rc = NB_ECHECKSUM;
    }
    free(crcs);
    disk_unpin(e, &ref);
    return rc;
}

static int check_one(void *arg, disk_id id, uint64_t len)
{
    check_state *s = arg;
    if (len > s->cap) {
        free(s->buf);
        s->cap = len;
        s->buf = nb_xmalloc(len ? len : 1);
    }
    size_t got;
    int rc = disk_read(s->e, id, 0, len, s->buf, &got);
    if (rc == NB_ENOTFOUND)
        return 0;
    if (rc == 0 && got == len && len > DISK_SEG_SIZE)
        rc = check_segs(s->e, id, s->buf, len);
    s->blobs++;
    s->bytes += len;
    if (rc == NB_ECHECKSUM || rc == NB_ECORRUPT || (rc == 0 && got != len)) {
        printf("BAD  %016llx:%016llx %llu bytes: %s\n", (unsigned long long)id.hi,
               (unsigned long long)id.lo, (unsigned long long)len,
               rc ? nb_strerror(rc) : "short read");
        s->bad++;
    } else if (rc) {
        printf("ERR  %016llx:%016llx: %s\n", (unsigned long long)id.hi, (unsigned long long)id.lo,
               nb_strerror(rc));
        s->io_errors++;
    }
    return 0;
}

static int cmd_check(const char *dir)
{
    disk_env *e;
    int code = open_ro(dir, &e);
    if (code)
        return code;
    uint64_t t0 = nb_mono_ns();
    check_state s = {.e = e};
    (void)disk_iterate(e, check_one, &s);
    free(s.buf);
    disk_stats st;
    disk_stats_get(e, &st);
    printf("check %s: %llu blobs, %llu bytes verified in %.1f s; %llu bad, %llu unreadable\n", dir,
           (unsigned long long)s.blobs, (unsigned long long)s.bytes,
           (double)(nb_mono_ns() - t0) / 1e9, (unsigned long long)s.bad,
           (unsigned long long)s.io_errors);
    printf("recovery: %llu WAL records replayed in %.1f ms\n", (unsigned long long)st.replayed,
           (double)st.recovery_ns / 1e6);
    for (unsigned i = 0; i < st.files; i++) {
        disk_file_stats fs;
        if (disk_file_stats_get(e, i, &fs) == 0)
            printf("file %u: %s, %llu bytes, %llu allocated%s\n", i, fs.path,
                   (unsigned long long)fs.size, (unsigned long long)fs.bytes_allocated,
                   fs.block_device ? " (block device)" : "");
    }
    (void)disk_close(e);
    if (s.bad)
        return 1;
    return s.io_errors ? 2 : 0;
}

static int cmd_stats(const char *dir)
{
    disk_env *e;
    int code = open_ro(dir, &e);
    if (code)
        return code;
    disk_stats st;
    disk_stats_get(e, &st);
    printf("blobs            %llu\n", (unsigned long long)st.blobs);
    printf("bytes_live       %llu\n", (unsigned long long)st.bytes_live);
    printf("bytes_allocated  %llu\n", (unsigned long long)st.bytes_allocated);
    printf("capacity         %llu\n", (unsigned long long)st.capacity);
    printf("bytes_free       %llu\n", (unsigned long long)st.bytes_free);
    printf("region           %llu\n", (unsigned long long)st.region);
    printf("largest_free     %llu\n", (unsigned long long)st.largest_free);
    printf("au_size          %u\n", st.au_size);
    printf("wal_seq          %llu\n", (unsigned long long)st.wal_seq);
    printf("next_lsn         %llu\n", (unsigned long long)st.next_lsn);
    printf("replayed         %llu\n", (unsigned long long)st.replayed);
    printf("recovery_ms      %.3f\n", (double)st.recovery_ns / 1e6);
    printf("files            %u\n", st.files);
    for (unsigned i = 0; i < st.files; i++) {
        disk_file_stats fs;
        if (disk_file_stats_get(e, i, &fs) != 0)
            break;
        printf("file.%u.path      %s\n", i, fs.path);
        printf("file.%u.size      %llu\n", i, (unsigned long long)fs.size);
        printf("file.%u.allocated %llu\n", i, (unsigned long long)fs.bytes_allocated);
        printf("file.%u.kind      %s\n", i, fs.block_device ? "block-device" : "file");
    }
    (void)disk_close(e);
    return 0;
}

/* Opens the engine writable (recovery as a server's open; the recorded
 * capacity) and adds PATH as its next data file. */
static int cmd_add_file(const char *dir, const char *path)
{
    disk_options o;
    disk_options_init(&o);
    disk_env *e;
    int rc = disk_open(&o, dir, &e);
    if (rc) {
        fprintf(stderr, "disk: cannot open %s: %s (%s)\n", dir, nb_strerror(rc), nb_errname(rc));
        return rc == NB_ECORRUPT || rc == NB_ECHECKSUM ? 1 : 2;
    }
    rc = disk_add_file(e, path);
    if (rc)
        fprintf(stderr, "disk: cannot add %s to %s: %s (%s)\n", path, dir, nb_strerror(rc),
                nb_errname(rc));
    else {
        disk_stats st;
        disk_stats_get(e, &st);
        printf("added %s as data file %u of %s\n", path, st.files - 1, dir);
    }
    int crc = disk_close(e);
    return rc || crc ? 2 : 0;
}

int disk_tool_main(int argc, char **argv)
{
    if (argc == 4 && strcmp(argv[1], "add-file") == 0)
        return cmd_add_file(argv[2], argv[3]);
    if (argc != 3)
        return usage();
    if (strcmp(argv[1], "check") == 0)
        return cmd_check(argv[2]);
    if (strcmp(argv[1], "stats") == 0)
        return cmd_stats(argv[2]);
    return usage();
}
