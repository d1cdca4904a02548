/*
 * disk_bench — the disk engine against its references, in one run.
 *
 * For each blob size (default 4 KiB, 64 KiB, 4 MiB) and thread count
 * (default 1, 2, 8), with durability on every side:
 *
 *   engine put   disk_put (returns when data and WAL record are durable)
 *   engine get   disk_read of a random written blob (CRC verified), from
 *                a set of at most 256 MiB read once before (warm cache)
 *   dir put      the file-per-blob reference (the `dir` block store):
 *                open(O_CREAT|O_TRUNC), write, fsync, close, fsync(dir)
 *   dir get      open, read, close, CRC32C of the bytes
 *   seq put      sequential pwrite + fdatasync per blob into one
 *                preallocated file, per thread its own region (what fio
 *                --rw=write --fsync=1 does; bench/disk.sh also runs fio)
 *
 * and prints ops/s, MiB/s and the ratios engine/dir and engine/seq. Then
 * recovery: load N blobs (default 1,000,000), reopen from the WAL alone and
 * from a checkpoint, with two data-region sizes, after evicting the
 * engine's files from the page cache, and print the times.
 *
 *   disk_bench [--dir D] [--seconds S] [--sizes a,b,c] [--threads a,b]
 *              [--recovery N] [--recovery-gib a,b] [--skip-ops] [--no-prefill]
 *              [--fresh]      (the engine's data file starts at one growth step, not
 *                            prefilled, and grows as puts need room)
 *              [--inline-max N] (puts up to N bytes carry their data in the WAL;
 *                            0 = none, for an A/B against the engine's default)
 *              [--rounds R]   (each measurement R times, alternating; medians)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/crc32c.h"
#include "common/fsutil.h"
#include "common/mem.h"
#include "disk/disk.h"

enum { ENGINE_PUT, ENGINE_GET, DIR_PUT, DIR_GET, SEQ_PUT };

typedef struct job {
    int kind, t, nthreads;
    size_t size;
    uint64_t k;        /* ids cycle through [0, k) */
    uint64_t readable; /* gets pick from [0, readable) */
    uint64_t deadline;
    disk_env *e;
    const char *dir;
    int fd;
    uint64_t region;
    const uint8_t *src;
    uint64_t ops;
    int err;
} job;

static void die(const char *what, int rc)
{
    fprintf(stderr, "disk_bench: %s: %s\n", what, nb_strerror(rc));
    exit(1);
}

static uint64_t rnd(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void *run(void *arg)
{
    job *j = arg;
    uint8_t *buf = nb_xaligned_alloc(4096, j->size);
    uint64_t seed = (uint64_t)j->t * 7 + 1;
    char path[4096];
    int dfd = j->kind == DIR_PUT ? open(j->dir, O_RDONLY | O_DIRECTORY) : -1;
    for (uint64_t i = 0;; i++) {
        if ((i & 3) == 0 && nb_mono_ns() > j->deadline)
            break;
        uint64_t id = (i * (uint64_t)j->nthreads + (uint64_t)j->t) % j->k;
        int rc = 0;
        size_t got;
        switch (j->kind) {
        case ENGINE_PUT:
            rc = disk_put(j->e, (disk_id){j->size, id}, j->src, j->size);
            break;
        case ENGINE_GET:
            id = rnd(&seed) % j->readable;
            rc = disk_read(j->e, (disk_id){j->size, id}, 0, j->size, buf, &got);
            break;
        case DIR_PUT: {
            snprintf(path, sizeof path, "%s/%016llx", j->dir, (unsigned long long)id);
            (void)nb_crc32c(0, j->src, j->size); /* the dir store checksums too */
            int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
            if (fd < 0 || nb_pwrite_full(fd, j->src, j->size, 0) != 0 || fsync(fd) != 0 ||
                close(fd) != 0 || fsync(dfd) != 0)
                rc = -errno;
            break;
        }
        case DIR_GET: {
            id = rnd(&seed) % j->readable;
            snprintf(path, sizeof path, "%s/%016llx", j->dir, (unsigned long long)id);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0 || nb_pread_full(fd, buf, j->size, 0, &got) != 0)
                rc = -errno;
            if (fd >= 0)
                close(fd);
            (void)nb_crc32c(0, buf, j->size);
            break;
        }
        case SEQ_PUT: {
            uint64_t off = (uint64_t)j->t * j->region + (i * j->size) % j->region;
            rc = nb_pwrite_full(j->fd, j->src, j->size, (off_t)off);
            if (!rc && fdatasync(j->fd) != 0)
                rc = -errno;
            break;
        }
        }
        if (rc) {
            j->err = rc;
            break;
        }
        j->ops++;
    }
    if (dfd >= 0)
        close(dfd);
    free(buf);
    return NULL;
}

/* Runs kind on n threads for secs; returns total ops. */
static uint64_t min_ops; /* fewest ops of one thread in the last phase */

static uint64_t phase(int kind, int n, size_t size, double secs, disk_env *e, const char *dir,
                      int fd, uint64_t k, uint64_t readable, const uint8_t *src, double *elapsed)
{
    min_ops = UINT64_MAX;
    pthread_t th[64];
    job jobs[64];
    uint64_t t0 = nb_mono_ns();
    for (int t = 0; t < n; t++) {
        jobs[t] = (job){.kind = kind,
                        .t = t,
                        .nthreads = n,
                        .size = size,
                        .k = k,
                        .readable = readable ? readable : 1,
                        .deadline = t0 + (uint64_t)(secs * 1e9),
                        .e = e,
                        .dir = dir,
                        .fd = fd,
                        .region = (k / (uint64_t)n) * size,
                        .src = src};
        pthread_create(&th[t], NULL, run, &jobs[t]);
    }
    uint64_t ops = 0;
    for (int t = 0; t < n; t++) {
        pthread_join(th[t], NULL);
        if (jobs[t].err)
            die("benchmark operation", jobs[t].err);
        ops += jobs[t].ops;
        if (jobs[t].ops < min_ops)
            min_ops = jobs[t].ops;
    }
    *elapsed = (double)(nb_mono_ns() - t0) / 1e9;
    return ops;
}

static void rm_rf(const char *path)
{
    char *cmd = nb_xasprintf("rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "disk_bench: cannot remove %s\n", path);
    free(cmd);
}

static int parse_list(const char *s, long *out, int max)
{
    int n = 0;
    while (*s && n < max) {
        char *end;
        out[n++] = strtol(s, &end, 10);
        s = *end == ',' ? end + 1 : end;
        if (end == s && *s)
            break;
    }
    return n;
}

static const char *size_name(size_t size, char *buf)
{
    if (size >= (1u << 20) && size % (1u << 20) == 0)
        sprintf(buf, "%zuMiB", size >> 20);
    else if (size >= 1024 && size % 1024 == 0)
        sprintf(buf, "%zuKiB", size >> 10);
    else
        sprintf(buf, "%zuB", size);
    return buf;
}

static void print_row(const char *op, size_t size, int threads, double a, const char *ref, double b)
{
    char nb[32];
    double mib = (double)size / (1 << 20);
    printf("%-4s %-7s %3d | %10.0f %9.1f | %-4s %10.0f %9.1f | %6.2fx\n", op, size_name(size, nb),
           threads, a, a * mib, ref, b, b * mib, b > 0 ? a / b : 0.0);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int rounds = 3;

static int prefill = 1;
static int fresh;            /* --fresh: the data file starts at one growth step and grows */
static long inline_max = -1; /* --inline-max: -1 = the engine's default */

static void ops_bench(const char *base, double secs, long *sizes, int n_sizes, long *threads,
                      int n_threads)
{
    printf("# durable puts and verified gets; engine = disk engine (%s), "
           "dir = file per blob + fsync + dir fsync, seq = sequential write + fdatasync\n",
           "io_uring/O_DIRECT when available");
    printf("# data file and seq file %s\n",
           prefill ? "prefilled with zeros (steady state: every block written before)"
                   : "fallocated only (first writes also allocate)");
    printf("%-4s %-7s %3s | %10s %9s | %-4s %10s %9s | %7s\n", "op", "size", "thr", "eng ops/s",
           "eng MiB/s", "ref", "ref ops/s", "ref MiB/s", "eng/ref");
    for (int si = 0; si < n_sizes; si++) {
        size_t size = (size_t)sizes[si];
        uint64_t k = (256ull << 20) / size; /* live set: 256 MiB a side */
        if (k > 100000)
            k = 100000;
        uint8_t *src = nb_xaligned_alloc(4096, size);
        uint64_t seed = size;
        for (size_t i = 0; i < size; i += 8) {
            uint64_t v = rnd(&seed);
            memcpy(src + i, &v, size - i < 8 ? size - i : 8);
        }
        char *edir = nb_xasprintf("%s/engine", base);
        char *rdir = nb_xasprintf("%s/dir", base);
        char *sfile = nb_xasprintf("%s/seq.dat", base);
        rm_rf(edir);
        rm_rf(rdir);
        if (nb_mkdir_p(rdir, 0755) != 0)
            die("mkdir", -errno);
        disk_options o;
        disk_options_init(&o);
        o.capacity = 1ull << 30;
        o.initial_size = fresh ? 0 : o.capacity; /* the steady state: the whole file there */
        o.max_blob = 8u << 20;
        o.prefill = prefill;
        if (inline_max >= 0)
            o.inline_max = (uint32_t)inline_max;
        disk_env *e;
        int rc = disk_open(&o, edir, &e);
        if (rc)
            die("disk_open", rc);
        int sfd = open(sfile, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_DIRECT, 0644);
        if (sfd < 0)
            sfd = open(sfile, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (sfd < 0 || posix_fallocate(sfd, 0, (off_t)(k * size)) != 0)
            die("seq file", -errno);
        if (prefill) { /* as fio lays out its file before a write job */
            uint8_t *z = nb_xaligned_alloc(4096, 1u << 20);
            memset(z, 0, 1u << 20);
            for (uint64_t off = 0; off < k * size; off += 1u << 20)
                if (nb_pwrite_full(sfd, z, 1u << 20, (off_t)off) != 0)
                    die("seq prefill", -errno);
            free(z);
            if (fdatasync(sfd) != 0)
                die("seq prefill sync", -errno);
        }
        for (int ti = 0; ti < n_threads; ti++) {
            int n = (int)threads[ti];
            /* Engine, dir and seq take turns, `rounds` times each; the
             * medians are compared (the machine's load drifts). */
            double ep[16], rp[16], sp[16], eg[16], rg[16], el;
            uint64_t er = k, rr = k;
            for (int r = 0; r < rounds; r++) {
                ep[r] = (double)phase(ENGINE_PUT, n, size, secs, e, NULL, -1, k, 0, src, &el) / el;
                /* Gets pick among ids every thread has written. */
                if (min_ops * (uint64_t)n < er)
                    er = min_ops * (uint64_t)n;
                rp[r] = (double)phase(DIR_PUT, n, size, secs, NULL, rdir, -1, k, 0, src, &el) / el;
                if (min_ops * (uint64_t)n < rr)
                    rr = min_ops * (uint64_t)n;
                sp[r] = (double)phase(SEQ_PUT, n, size, secs, NULL, NULL, sfd, k, 0, src, &el) / el;
            }
            /* Gets read the same number of blobs on both sides, at most
             * 256 MiB, each read once beforehand: the dir store's writes
             * left its blobs in the page cache, the engine's O_DIRECT
             * writes did not, and what we compare is the read path. */
            uint64_t readable = er < rr ? er : rr;
            if (readable > (256u << 20) / size)
                readable = (256u << 20) / size;
            if (readable == 0)
                readable = 1;
            uint8_t *wb = nb_xaligned_alloc(4096, size);
            char wp[4096];
            for (uint64_t id = 0; id < readable; id++) {
                size_t got;
                if (disk_read(e, (disk_id){size, id}, 0, size, wb, &got) != 0)
                    die("warm-up read", NB_ENOTFOUND);
                snprintf(wp, sizeof wp, "%s/%016llx", rdir, (unsigned long long)id);
                int fd = open(wp, O_RDONLY);
                if (fd < 0 || nb_pread_full(fd, wb, size, 0, &got) != 0)
                    die("warm-up dir read", -errno);
                close(fd);
            }
            free(wb);
            for (int r = 0; r < rounds; r++) {
                eg[r] =
                    (double)phase(ENGINE_GET, n, size, secs, e, NULL, -1, k, readable, src, &el) /
                    el;
                rg[r] =
                    (double)phase(DIR_GET, n, size, secs, NULL, rdir, -1, k, readable, src, &el) /
                    el;
            }
            double mep = median(ep, rounds);
            print_row("put", size, n, mep, "dir", median(rp, rounds));
            print_row("put", size, n, mep, "seq", median(sp, rounds));
            print_row("get", size, n, median(eg, rounds), "dir", median(rg, rounds));
            fflush(stdout);
        }
        disk_stats st;
        disk_stats_get(e, &st);
        printf(
            "#   %s: %llu puts (%llu with their data in the WAL) in %llu group commits, %llu "
            "fsyncs (%.2f a put), %llu growths (%llu inside a put), %llu checkpoints (%llu inside "
            "a put), io_uring=%d direct=%d\n",
            size_name(size, (char[32]){0}), (unsigned long long)st.puts,
            (unsigned long long)st.inline_puts, (unsigned long long)st.group_commits,
            (unsigned long long)st.fsyncs, st.puts ? (double)st.fsyncs / (double)st.puts : 0.0,
            (unsigned long long)st.grows, (unsigned long long)st.grows_in_put,
            (unsigned long long)st.checkpoints, (unsigned long long)st.checkpoints_in_put,
            st.io_uring, st.direct);
        if ((rc = disk_close(e)) != 0)
            die("disk_close", rc);
        close(sfd);
        rm_rf(edir);
        rm_rf(rdir);
        unlink(sfile);
        free(edir);
        free(rdir);
        free(sfile);
        free(src);
    }
}

/* Evicts the engine's small files from the page cache (a cold start). */
static void evict(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.')
            continue;
        char *p = nb_xasprintf("%s/%s", dir, de->d_name);
        int fd = open(p, O_RDONLY);
        if (fd >= 0) {
            (void)fdatasync(fd);
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
        free(p);
    }
    if (d)
        closedir(d);
}

typedef struct loader {
    disk_env *e;
    uint64_t from, to;
} loader;

static void *load(void *arg)
{
    loader *l = arg;
    uint8_t b[64];
    for (uint64_t i = l->from; i < l->to; i++) {
        memcpy(b, &i, 8);
        memset(b + 8, (int)(i & 0xff), sizeof b - 8);
        int rc = disk_put(l->e, (disk_id){i >> 20, i}, b, sizeof b);
        if (rc)
            die("load put", rc);
    }
    return NULL;
}

static uint64_t file_size(const char *dir, const char *name)
{
    char *p = nb_xasprintf("%s/%s", dir, name);
    struct stat st;
    uint64_t s = stat(p, &st) == 0 ? (uint64_t)st.st_size : 0;
    free(p);
    return s;
}

/* Bytes of the WAL files replayed (records of 48 bytes, or more for the
 * puts that carry their data; files grow in 4 MiB steps, so this rounds
 * up to that). */
static uint64_t wal_bytes(const char *dir)
{
    DIR *d = opendir(dir);
    uint64_t sum = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, "wal-", 4) != 0 || !strcmp(de->d_name, "wal-spare.log"))
            continue;
        sum += file_size(dir, de->d_name);
    }
    if (d)
        closedir(d);
    return sum;
}

/* Reopens dir cold; prints one result row. */
static void reopen_row(const char *dir, long gib, const char *from)
{
    evict(dir);
    disk_options o;
    disk_options_init(&o);
    o.io_mode = DISK_IO_POSIX;
    disk_env *e;
    uint64_t ck = file_size(dir, "CHECKPOINT");
    uint64_t wal = wal_bytes(dir);
    uint64_t t0 = nb_mono_ns();
    int rc = disk_open(&o, dir, &e);
    double ms = (double)(nb_mono_ns() - t0) / 1e6;
    if (rc)
        die("reopen", rc);
    disk_stats st;
    disk_stats_get(e, &st);
    printf("%-9ld %-11s %10llu %10llu %9.1f %9.1f %12.1f %10.1f\n", gib, from,
           (unsigned long long)st.blobs, (unsigned long long)st.replayed, (double)ck / (1 << 20),
           (double)wal / (1 << 20), (double)st.recovery_ns / 1e6, ms);
    fflush(stdout);
    if ((rc = disk_close(e)) != 0)
        die("reopen close", rc);
}

static void recovery_bench(const char *base, uint64_t n, long *gib, int n_gib)
{
    printf("# recovery of %llu blobs (64 B each); engine files evicted from the page cache first.\n"
           "# recovery_ms = read checkpoint + replay WAL (what disk_stats.recovery_ns reports);\n"
           "# open_ms adds creating the next WAL file and, after a long replay, a checkpoint.\n",
           (unsigned long long)n);
    printf("%-9s %-11s %10s %10s %9s %9s %12s %10s\n", "data_GiB", "from", "blobs", "replayed",
           "ckpt_MiB", "wal_MiB", "recovery_ms", "open_ms");
    for (int gi = 0; gi < n_gib; gi++) {
        char *dir = nb_xasprintf("%s/recovery", base);
        rm_rf(dir);
        disk_options o;
        disk_options_init(&o);
        o.capacity = (uint64_t)gib[gi] << 30;
        o.initial_size = o.capacity; /* recovery must not depend on this size */
        o.no_sync = 1;               /* a bulk load; close() syncs */
        o.close_checkpoint = 0;
        o.wal_max_bytes = 1ull << 40; /* keep every record in the WAL */
        o.direct = DISK_DIRECT_OFF;
        o.io_mode = DISK_IO_POSIX;
        disk_env *e;
        int rc = disk_open(&o, dir, &e);
        if (rc)
            die("recovery open", rc);
        pthread_t th[4];
        loader l[4];
        for (int t = 0; t < 4; t++) {
            l[t] = (loader){e, n * (uint64_t)t / 4, n * (uint64_t)(t + 1) / 4};
            pthread_create(&th[t], NULL, load, &l[t]);
        }
        for (int t = 0; t < 4; t++)
            pthread_join(th[t], NULL);
        if ((rc = disk_close(e)) != 0)
            die("recovery close", rc);
        reopen_row(dir, gib[gi], "wal"); /* replays, then checkpoints (long replay) */
        reopen_row(dir, gib[gi], "checkpoint");
        rm_rf(dir);
        free(dir);
    }
}

int main(int argc, char **argv)
{
    const char *dir = "/tmp/disk_bench";
    double secs = 1;
    long sizes[8] = {4096, 65536, 4 << 20}, threads[8] = {1, 2, 8}, gib[8] = {4, 16};
    int n_sizes = 3, n_threads = 3, n_gib = 2, skip_ops = 0;
    uint64_t recovery = 1000000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : "";
        if (!strcmp(a, "--dir"))
            dir = v, i++;
        else if (!strcmp(a, "--seconds"))
            secs = atof(v), i++;
        else if (!strcmp(a, "--sizes"))
            n_sizes = parse_list(v, sizes, 8), i++;
        else if (!strcmp(a, "--threads"))
            n_threads = parse_list(v, threads, 8), i++;
        else if (!strcmp(a, "--recovery"))
            recovery = strtoull(v, NULL, 10), i++;
        else if (!strcmp(a, "--recovery-gib"))
            n_gib = parse_list(v, gib, 8), i++;
        else if (!strcmp(a, "--skip-ops"))
            skip_ops = 1;
        else if (!strcmp(a, "--inline-max"))
            inline_max = strtol(v, NULL, 10), i++;
        else if (!strcmp(a, "--fresh"))
            fresh = 1, prefill = 0;
        else if (!strcmp(a, "--no-prefill"))
            prefill = 0;
        else if (!strcmp(a, "--rounds"))
            rounds = atoi(v) < 1 ? 1 : (atoi(v) > 16 ? 16 : atoi(v)), i++;
        else {
            fprintf(stderr, "usage: disk_bench [--dir D] [--seconds S] [--rounds R] [--sizes a,b] "
                            "[--threads a,b] [--recovery N] [--recovery-gib a,b] [--skip-ops] "
                            "[--no-prefill] [--fresh] [--inline-max N]\n");
            return 2;
        }
    }
    if (nb_mkdir_p(dir, 0755) != 0)
        die("mkdir", -errno);
    if (!skip_ops)
        ops_bench(dir, secs, sizes, n_sizes, threads, n_threads);
    if (recovery)
        recovery_bench(dir, recovery, gib, n_gib);
    return 0;
}
