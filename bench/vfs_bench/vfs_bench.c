/*
 * vfs_bench — metadata and sequential-data throughput through vfs next to
 * the same operations done with syscalls on the local file system, in the
 * same run (bench/vfs.sh, docs/vfs.md "Measured").
 *
 *   metadata: create (create+release / open(O_CREAT|O_EXCL)+close), stat
 *             (lookup / stat), readdir of the whole directory (readdir /
 *             readdir(3)), rename, unlink — N files in one directory, with
 *             1 and 2 threads (each thread its own names, same directory) —
 *             and "small file": create + write 1 KiB + close, N more files
 *   data:     sequential write of a file in 1 MiB writes + fsync, then
 *             sequential reads: cold (the kernel's page cache dropped via
 *             /proc/sys/vm/drop_caches when we may, vfs opened afresh; two
 *             passes a side, local, vfs, vfs, local), warm
 *             (a second pass through the same vfs) and warm after reopening
 *             vfs (page cache warm, vfs's own memory empty)
 *
 * Usage: vfs_bench --dir DIR [--files N] [--threads 1,2] [--data-mib M]
 *                  [--only meta|data] [--meta-engine E] [--block-store disk|dir]
 *                  [--vfs-only]   (profiling: metadata phases without the local side)
 *                  [--reopen-passes N] (data: after the write, only N warm passes
 *                                  after a reopen, each next to a local warm read)
 *                  [--no-prefault] (cold passes without touching fresh memory first)
 * Prints one line per measurement and a ratio table (vfs / local), with
 * each phase's process CPU time next to it: on a loaded machine the CPU
 * ratio (local CPU / vfs CPU) moves less than the wall-clock one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "vfs/vfs.h"

static const char *g_dir;
static long g_files = 100000;
static int g_threads[4] = {1, 2};
static int g_nthreads = 2;
static long g_data_mib = 1024;
static const char *g_only;
static const char *g_engine;
static const char *g_store;
static bool g_vfs_only;        /* profiling: skip the local side */
static long g_reopen_passes;   /* --reopen-passes: only the warm-after-reopen read, N times */
static bool g_prefault = true; /* --no-prefault: cold passes without prefault() */

typedef struct result {
    char name[64];
    double vfs_rate, local_rate;
    double vfs_cpu, local_cpu; /* process CPU seconds of the phase */
    const char *unit;
} result;

static result g_res[64];
static int g_nres;

/* Process CPU seconds (user + system, all threads): steadier than wall
 * time on a loaded machine. The kernel's own write-back threads are not
 * counted, on either side. */
static double cpu_now(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* A timed phase: wall seconds and CPU seconds. */
typedef struct span {
    uint64_t t0;
    double c0;
    double wall, cpu;
} span;

static void span_start(span *s)
{
    s->c0 = cpu_now();
    s->t0 = nb_mono_ns();
}

static void span_stop(span *s)
{
    s->wall = (double)(nb_mono_ns() - s->t0) / 1e9;
    s->cpu = cpu_now() - s->c0;
}

static void record(const char *name, const char *unit, double vr, double lr, double vcpu,
                   double lcpu)
{
    result *r = &g_res[g_nres++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->unit = unit;
    r->vfs_rate = vr;
    r->local_rate = lr;
    r->vfs_cpu = vcpu;
    r->local_cpu = lcpu;
    printf("%-30s vfs %12.0f %s   local %12.0f %s   ratio %.2f   cpu s %.3f / %.3f\n", name, vr,
           unit, lr, unit, lr > 0 ? vr / lr : 0, vcpu, lcpu);
    fflush(stdout);
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "vfs_bench: %s: %s\n", what, nb_strerror(rc));
    exit(1);
}

static void drop_caches(void)
{
    sync();
    int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
    if (fd >= 0) {
        if (write(fd, "3\n", 2) != 2)
            fprintf(stderr, "vfs_bench: cannot drop caches\n");
        close(fd);
    }
}

/* Touches, then frees, bytes of fresh memory: on this VM the guest hands
 * free memory back to the host a couple of seconds after it is freed
 * (free page reporting), and the first touch of such memory costs a host
 * fault per page. A cold pass right after this fills the page cache from
 * memory the host has mapped, whichever side it measures (docs/vfs.md §9,
 * session 8). */
static void prefault(uint64_t bytes)
{
    uint8_t *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return;
    for (uint64_t i = 0; i < bytes; i += 4096)
        p[i] = 1;
    munmap(p, bytes);
}

/* Before a cold pass: the page cache dropped and (unless --no-prefault)
 * memory for it made fresh. */
static void cold_start(uint64_t total)
{
    if (g_prefault)
        prefault(total + total / 2);
    drop_caches();
}

static vfs *open_vfs(const char *dir)
{
    vfs_options o;
    vfs_options_init(&o);
    o.data_dir = dir;
    o.meta_engine = g_engine;
    o.block_store = g_store;
    o.maintain_interval_ms = -1;
    vfs *v = NULL;
    int rc = vfs_open(&o, &v);
    if (rc != 0)
        die("vfs_open", rc);
    return v;
}

/* ---- Metadata ---------------------------------------------------------------------------------
 */

enum { OP_CREATE, OP_STAT, OP_READDIR, OP_RENAME, OP_UNLINK, OP_SMALL, OP_N };
static const char *op_names[OP_N] = {"create", "stat", "readdir", "rename", "unlink", "small file"};

/* OP_SMALL: create + write SMALL_SIZE bytes + close, no fsync (what a
 * mount sees for many small files: each close publishes). */
#define SMALL_SIZE 1024
static const uint8_t small_data[SMALL_SIZE];

typedef struct job {
    vfs *v;         /* NULL: local */
    uint64_t dino;  /* vfs directory */
    const char *ld; /* local directory */
    int op, t, nt;
    long n;
    long done;
} job;

static int count_cb(void *arg, const vfs_dirent *e)
{
    (void)e;
    (*(long *)arg)++;
    return 0;
}

static void *job_main(void *arg)
{
    job *j = arg;
    char name[64], name2[64], path[4096], path2[4096];
    long lo = j->n * j->t / j->nt, hi = j->n * (j->t + 1) / j->nt;
    if (j->op == OP_READDIR) {
        long cnt = 0;
        if (j->v) {
            int rc = vfs_readdir(j->v, j->dino, 0, 0, count_cb, &cnt);
            if (rc != 0)
                die("readdir", rc);
        } else {
            DIR *d = opendir(j->ld);
            struct dirent *de;
            while ((de = readdir(d)) != NULL)
                cnt++;
            closedir(d);
            cnt -= 2;
        }
        j->done = cnt;
        return NULL;
    }
    for (long i = lo; i < hi; i++) {
        snprintf(name, sizeof name, "file-%08ld", i);
        snprintf(name2, sizeof name2, "renamed-%08ld", i);
        int rc = 0;
        if (j->v) {
            vfs_file *f;
            vfs_attr a;
            switch (j->op) {
            case OP_CREATE:
                rc = vfs_create(j->v, NULL, j->dino, name, 0644, O_WRONLY | O_EXCL, NULL, &f);
                if (rc == 0)
                    rc = vfs_release(f);
                break;
            case OP_STAT:
                rc = vfs_lookup(j->v, NULL, j->dino, name, &a);
                break;
            case OP_RENAME:
                rc = vfs_rename(j->v, NULL, j->dino, name, j->dino, name2, 0);
                break;
            case OP_UNLINK:
                rc = vfs_unlink(j->v, NULL, j->dino, name2);
                break;
            case OP_SMALL:
                snprintf(name, sizeof name, "small-%08ld", i);
                rc = vfs_create(j->v, NULL, j->dino, name, 0644, O_WRONLY | O_EXCL, NULL, &f);
                if (rc == 0)
                    rc = vfs_write(f, 0, small_data, SMALL_SIZE, NULL);
                if (rc == 0)
                    rc = vfs_release(f);
                break;
            }
        } else {
            snprintf(path, sizeof path, "%s/%s", j->ld, name);
            snprintf(path2, sizeof path2, "%s/%s", j->ld, name2);
            struct stat st;
            switch (j->op) {
            case OP_CREATE: {
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
                rc = fd < 0 ? -errno : 0;
                if (fd >= 0)
                    close(fd);
                break;
            }
            case OP_STAT:
                rc = stat(path, &st) < 0 ? -errno : 0;
                break;
            case OP_RENAME:
                rc = rename(path, path2) < 0 ? -errno : 0;
                break;
            case OP_UNLINK:
                rc = unlink(path2) < 0 ? -errno : 0;
                break;
            case OP_SMALL: {
                snprintf(path, sizeof path, "%s/small-%08ld", j->ld, i);
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
                rc = fd < 0 ? -errno : 0;
                if (fd >= 0) {
                    if (write(fd, small_data, SMALL_SIZE) != SMALL_SIZE)
                        rc = -EIO;
                    close(fd);
                }
                break;
            }
            }
        }
        if (rc != 0)
            die(op_names[j->op], rc);
    }
    j->done = hi - lo;
    return NULL;
}

/* ops/s of one phase with nt threads; *cpu its CPU seconds. */
static double phase(vfs *v, uint64_t dino, const char *ld, int op, int nt, double *cpu)
{
    job jobs[8];
    pthread_t th[8];
    span sp;
    span_start(&sp);
    for (int t = 0; t < nt; t++) {
        jobs[t] = (job){v, dino, ld, op, t, nt, g_files, 0};
        pthread_create(&th[t], NULL, job_main, &jobs[t]);
    }
    long total = 0;
    for (int t = 0; t < nt; t++) {
        pthread_join(th[t], NULL);
        total += jobs[t].done;
    }
    span_stop(&sp);
    *cpu = sp.cpu;
    return (double)total / sp.wall;
}

static void bench_meta(void)
{
    for (int ti = 0; ti < g_nthreads; ti++) {
        int nt = g_threads[ti];
        char *vdir = nb_xasprintf("%s/meta-vfs-%d", g_dir, nt);
        char *ldir = nb_xasprintf("%s/meta-local-%d", g_dir, nt);
        char *cmd = nb_xasprintf("rm -rf '%s' '%s'", vdir, ldir);
        if (system(cmd) != 0)
            fprintf(stderr, "vfs_bench: cannot clear %s\n", vdir);
        free(cmd);
        if (nb_mkdir_p(ldir, 0755) != 0)
            die("mkdir", -errno);
        vfs *v = open_vfs(vdir);
        vfs_attr d;
        int rc = vfs_mkdir(v, NULL, VFS_ROOT_INO, "d", 0755, &d);
        if (rc != 0)
            die("mkdir", rc);
        /* Alternate vfs and local within each phase. */
        for (int op = 0; op < OP_N; op++) {
            double vc;
            double vr = phase(v, d.ino, NULL, op, nt, &vc);
            double lc = 0, lr = g_vfs_only ? 0 : phase(NULL, 0, ldir, op, nt, &lc);
            char name[32];
            snprintf(name, sizeof name, "%s x%d", op_names[op], nt);
            record(name, op == OP_READDIR ? "entries/s" : "ops/s", vr, lr, vc, lc);
        }
        vfs_close(v);
        cmd = nb_xasprintf("rm -rf '%s' '%s'", vdir, ldir);
        if (system(cmd) != 0)
            fprintf(stderr, "vfs_bench: cannot remove %s\n", vdir);
        free(cmd);
        free(vdir);
        free(ldir);
    }
}

/* ---- Sequential data ----------------------------------------------------------------------------
 */

#define IO_SIZE (1u << 20)

/* One sequential pass over vfs file "big" through an open vfs, timed. */
static void vfs_pass(vfs *v, uint8_t *buf, uint64_t total, span *sp)
{
    vfs_attr a;
    vfs_file *f;
    span_start(sp);
    int rc = vfs_resolve(v, NULL, "big", 0, &a);
    if (rc == 0)
        rc = vfs_file_open(v, NULL, a.ino, O_RDONLY, &f);
    for (uint64_t off = 0; rc == 0 && off < total; off += IO_SIZE) {
        size_t got = 0;
        rc = vfs_read(f, off, buf, IO_SIZE, &got);
        if (rc == 0 && got != IO_SIZE)
            rc = NB_ECORRUPT;
    }
    if (rc == 0)
        rc = vfs_release(f);
    span_stop(sp);
    if (rc != 0)
        die("vfs read", rc);
}

/* One sequential pass over the local file, timed. */
static void local_pass(const char *path, uint8_t *buf, uint64_t total, span *sp)
{
    span_start(sp);
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        die("open", -errno);
    for (uint64_t off = 0; off < total; off += IO_SIZE)
        if (read(fd, buf, IO_SIZE) != (ssize_t)IO_SIZE)
            die("read", -errno);
    close(fd);
    span_stop(sp);
}

/* Two spans as one: rates over their summed time. */
static span span_sum(span a, span b)
{
    span s = a;
    s.wall = a.wall + b.wall;
    s.cpu = a.cpu + b.cpu;
    return s;
}

static void bench_data(void)
{
    char *vdir = nb_xasprintf("%s/data-vfs", g_dir);
    char *lpath = nb_xasprintf("%s/data-local.bin", g_dir);
    char *cmd = nb_xasprintf("rm -rf '%s' '%s'", vdir, lpath);
    if (system(cmd) != 0)
        fprintf(stderr, "vfs_bench: cannot clear %s\n", vdir);
    free(cmd);
    uint8_t *buf = nb_xaligned_alloc(4096, IO_SIZE);
    for (size_t i = 0; i < IO_SIZE; i++)
        buf[i] = (uint8_t)(i * 131 + 7);
    uint64_t total = (uint64_t)g_data_mib << 20;
    double mib = (double)g_data_mib;

    /* write: vfs */
    span vs, ls;
    vfs *v = open_vfs(vdir);
    vfs_file *f;
    vfs_attr a;
    span_start(&vs);
    int rc = vfs_create(v, NULL, VFS_ROOT_INO, "big", 0644, O_WRONLY, &a, &f);
    for (uint64_t off = 0; rc == 0 && off < total; off += IO_SIZE)
        rc = vfs_write(f, off, buf, IO_SIZE, NULL);
    if (rc == 0)
        rc = vfs_fsync(f, false);
    if (rc != 0)
        die("vfs write", rc);
    rc = vfs_release(f);
    span_stop(&vs);
    vfs_close(v);

    /* write: local */
    span_start(&ls);
    int fd = open(lpath, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        die("open", -errno);
    for (uint64_t off = 0; off < total; off += IO_SIZE)
        if (write(fd, buf, IO_SIZE) != (ssize_t)IO_SIZE)
            die("write", -errno);
    if (fsync(fd) != 0)
        die("fsync", -errno);
    close(fd);
    span_stop(&ls);
    record("seq write 1MiB+fsync", "MiB/s", mib / vs.wall, mib / ls.wall, vs.cpu, ls.cpu);

    if (g_reopen_passes > 0) {
        /* A restarted server's warm read, alone and repeated: each pass
         * opens vfs afresh (page cache warm) and reads the file, then the
         * local file is read once (warm): one ratio per pass. */
        for (long pass = 0; pass <= g_reopen_passes; pass++) {
            v = open_vfs(vdir);
            vfs_pass(v, buf, total, &vs);
            vfs_close(v);
            local_pass(lpath, buf, total, &ls);
            if (pass > 0) /* the first pass brings both files into the page cache */
                record("seq read 1MiB (warm, reopened)", "MiB/s", mib / vs.wall, mib / ls.wall,
                       vs.cpu, ls.cpu);
        }
        goto out;
    }

    /* read: cold (page cache dropped, vfs opened afresh: nothing cached
     * anywhere); warm (a second pass through the same vfs, as a server
     * serves a second epoch: the kernel's caches and vfs's are as the
     * first pass left them, like the local file's); and warm after
     * reopening vfs (a restarted server: page cache warm, vfs's memory of
     * verified blocks gone, so every block is checked again). */
    static const char *const pass_names[] = {"seq read 1MiB (cold)", "seq read 1MiB (warm)",
                                             "seq read 1MiB (warm, reopened)"};
    /* Each side's warm passes follow its own cold one: dropping the page
     * cache for the local cold pass must not empty vfs's warm one (before
     * session 4, the "warm" vfs pass ran after that drop and was cold).
     * The cold passes run twice on each side, in the order local, vfs,
     * vfs, local, each right after its own cache drop, and count together:
     * on this VM, memory the guest frees is handed back to the host after
     * a couple of seconds (free page reporting), and a read that fills the
     * page cache from such memory costs several times the CPU and runs at
     * a third of the speed; which pass meets it depends on timing, not on
     * the reader (docs/vfs.md §9, session 8). */
    span vpass[3], lpass[3], vcold2, lcold1;
    cold_start(total);
    local_pass(lpath, buf, total, &lcold1);
    cold_start(total);
    v = NULL;
    for (int pass = 0; pass < 3; pass++) {
        if (pass != 1) {
            if (v)
                vfs_close(v);
            v = open_vfs(vdir);
        }
        vfs_pass(v, buf, total, &vpass[pass]);
    }
    vfs_close(v);
    cold_start(total);
    v = open_vfs(vdir);
    vfs_pass(v, buf, total, &vcold2);
    vfs_close(v);
    cold_start(total);
    for (int pass = 0; pass < 3; pass++)
        local_pass(lpath, buf, total, &lpass[pass]);
    printf("cold passes: vfs %.0f / %.0f MiB/s (cpu s %.3f / %.3f), local %.0f / %.0f MiB/s "
           "(cpu s %.3f / %.3f), in the order local, vfs, vfs, local\n",
           mib / vpass[0].wall, mib / vcold2.wall, vpass[0].cpu, vcold2.cpu, mib / lcold1.wall,
           mib / lpass[0].wall, lcold1.cpu, lpass[0].cpu);
    span vc = span_sum(vpass[0], vcold2), lc = span_sum(lcold1, lpass[0]);
    record(pass_names[0], "MiB/s", 2 * mib / vc.wall, 2 * mib / lc.wall, vc.cpu / 2, lc.cpu / 2);
    for (int pass = 1; pass < 3; pass++)
        record(pass_names[pass], "MiB/s", mib / vpass[pass].wall, mib / lpass[pass].wall,
               vpass[pass].cpu, lpass[pass].cpu);
out:

    cmd = nb_xasprintf("rm -rf '%s' '%s'", vdir, lpath);
    if (system(cmd) != 0)
        fprintf(stderr, "vfs_bench: cannot remove %s\n", vdir);
    free(cmd);
    free(buf);
    free(vdir);
    free(lpath);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--dir") && val)
            g_dir = argv[++i];
        else if (!strcmp(a, "--files") && val)
            g_files = atol(argv[++i]);
        else if (!strcmp(a, "--data-mib") && val)
            g_data_mib = atol(argv[++i]);
        else if (!strcmp(a, "--only") && val)
            g_only = argv[++i];
        else if (!strcmp(a, "--meta-engine") && val)
            g_engine = argv[++i];
        else if (!strcmp(a, "--block-store") && val)
            g_store = argv[++i];
        else if (!strcmp(a, "--vfs-only"))
            g_vfs_only = true;
        else if (!strcmp(a, "--reopen-passes") && val)
            g_reopen_passes = atol(argv[++i]);
        else if (!strcmp(a, "--no-prefault"))
            g_prefault = false;
        else if (!strcmp(a, "--threads") && val) {
            g_nthreads = 0;
            char *s = nb_xstrdup(argv[++i]);
            for (char *tok = strtok(s, ","); tok && g_nthreads < 4; tok = strtok(NULL, ","))
                g_threads[g_nthreads++] = atoi(tok) > 0 && atoi(tok) <= 8 ? atoi(tok) : 1;
            free(s);
        } else {
            fprintf(stderr,
                    "usage: vfs_bench --dir DIR [--files N] [--threads 1,2] [--data-mib M]\n"
                    "                 [--only meta|data] [--meta-engine E] [--block-store S] "
                    "[--vfs-only] [--reopen-passes N]\n"
                    "                 [--no-prefault]\n");
            return 2;
        }
    }
    if (!g_dir) {
        fprintf(stderr, "vfs_bench: --dir is required\n");
        return 2;
    }
    nb_log_set_level(NB_LOG_WARN);
    if (nb_mkdir_p(g_dir, 0755) != 0)
        die("mkdir", -errno);
    if (!g_only || !strcmp(g_only, "meta"))
        bench_meta();
    if (!g_only || !strcmp(g_only, "data"))
        bench_data();
    /* cpu ratio: local CPU / vfs CPU for the same work (> 1: vfs uses less). */
    printf("\n%-30s %14s %14s %8s %10s\n", "operation", "vfs", "local", "ratio", "cpu ratio");
    for (int i = 0; i < g_nres; i++) {
        const result *r = &g_res[i];
        printf("%-30s %14.0f %14.0f %8.2f %10.2f\n", r->name, r->vfs_rate, r->local_rate,
               r->local_rate > 0 ? r->vfs_rate / r->local_rate : 0,
               r->vfs_cpu > 0 ? r->local_cpu / r->vfs_cpu : 0);
    }
    return 0;
}
