/*
 * nkv_bench.c — NebulaStore's db_bench: one driver that runs LevelDB's
 * db_bench workloads through nkv, LevelDB or RocksDB (issue 3, item 7).
 *
 * Usage: nkv_bench --engine=nkv|leveldb|rocksdb [db_bench flags]
 *
 * Flags (db_bench's spelling and defaults; "--x=1" and "--x=true" both work):
 *   --db=DIR                 database directory (/tmp/nkv_bench-<uid>/dbbench)
 *   --benchmarks=a,b,...     run in order (fillseq,fillrandom,overwrite,readrandom,
 *                            readseq,seekrandom)
 *   --num=N                  keys in the database, ops per thread (1000000)
 *   --reads=N --writes=N     ops per thread for reads / writes (-1 = --num;
 *                            fillsync: -1 = num/1000, as LevelDB)
 *   --value_size=N           (100)    --threads=N (1)
 *   --compression_ratio=F    value compressibility (0.5)
 *   --cache_size=BYTES       block cache (8388608; <0 = engine default)
 *   --bloom_bits=N           bloom filter bits/key (-1 = no filter)
 *   --block_size=BYTES       (4096)
 *   --write_buffer_size=B    memtable size (4194304, LevelDB's default)
 *   --max_file_size=B        SST target size (-1 = engine default)
 *   --open_files=N           table cache capacity (-1 = engine default)
 *   --compression_type=none|snappy|zstd   RocksDB's spelling (snappy)
 *   --compression=0|1|2      LevelDB main's spelling: none|snappy|zstd
 *   --use_existing_db=0|1    keep the database; fill* benchmarks are skipped
 *   --sync=0|1               sync every write (fillsync always syncs)
 *   --histogram=0|1          per-op latency histogram after each result
 *   --key_size=16            accepted for RocksDB compatibility; only 16
 *
 * Benchmarks: fillseq, fillrandom, overwrite, fillsync, readrandom, readseq,
 * readreverse, seekrandom, deleteseq, deleterandom, compact.
 *
 * Workload, exactly as LevelDB's benchmarks/db_bench.cc:
 *  - keys are "%016d" of an int (16 bytes); random keys are
 *    Uniform(--num) from each thread's Random;
 *  - Random is LevelDB's Park–Miller generator (seed * 16807 mod 2^31-1);
 *    thread i of a benchmark is seeded 1000 + <threads created so far in
 *    this process, this one included>, so fillrandom, overwrite and
 *    readrandom in one process draw different key streams (t=1: 1001, 1002,
 *    1003, ...), and readrandom after fillrandom+overwrite finds 1-e^-2t of
 *    the keys;
 *  - values come from LevelDB's RandomGenerator: 1 MiB built from
 *    Random(301) in 100-byte pieces, each 50 random printable bytes
 *    (' ' + Uniform(95)) repeated twice (compression ratio 0.5), handed out
 *    as consecutive slices of --value_size bytes, wrapping to the start;
 *    each writing thread starts at offset 0;
 *  - writes are single Put()s (db_bench's one-entry WriteBatch), no sync
 *    except fillsync; seekrandom opens one iterator per seek.
 *
 * Engine settings (the same values reach every engine; details in the
 * engine_*.c files and bench/README-nkv.md):
 *
 *   setting            leveldb (1.23 C API)   rocksdb (7.8 C API)      nkv
 *   write buffer       --write_buffer_size    write_buffer_size        write_buffer_size
 *   block cache        LRU, 16 shards         LRU, 16 shards (8 MiB)   block_cache_bytes
 *   bloom              bloom policy, bits     full bloom, bits         bloom_bits_per_key
 *   block size         block_size             block-based block_size   block_size
 *   compression        none|snappy (no zstd)  none|snappy|zstd         none|snappy|zstd
 *   SST size           2 MiB (default)        64 MiB (default)         64 MiB (default)
 *   background         1 thread (fixed)       max_background_jobs=2    1 compaction + 1 flush
 *   WAL / sync         on / off               on / off                 on / off
 *   pipelined write    -                      on (db_bench default)    -
 *
 * Output, one line per benchmark in RocksDB db_bench's format (LevelDB's
 * line plus ops/sec, seconds and operations):
 *
 *   fillrandom   :  4.583 micros/op 218198 ops/sec 4.583 seconds 1000000 operations;  24.1 MB/s
 *   readrandom   :  ... operations; (864950 of 1000000 found)
 *
 * micros/op is the per-thread mean latency (sum of thread seconds / total
 * ops); ops/sec is total ops / wall time of the slowest thread; "found" is
 * thread 0's count out of --num, as db_bench prints it. The banner goes to
 * stderr (engine, date, CPU) and stdout (Keys:, Values:, ...), and never
 * starts with "RocksDB:", so ../shared/bench/lsm-compare.sh treats this tool
 * as the leveldb dialect (--compression=0|1, fillsync = num/1000 writes).
 */
#include "nkv_bench.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"

#define KEY_SIZE 16

/* ---------------------------------------------------------------------------
 * Flags
 * ------------------------------------------------------------------------- */

static struct {
    const char *engine;
    const char *db;
    const char *benchmarks;
    int num;
    int reads;
    int writes;
    int value_size;
    int threads;
    double compression_ratio;
    long long cache_size;
    int bloom_bits;
    int block_size;
    long long write_buffer_size;
    long long max_file_size;
    int open_files;
    nkvb_compression compression;
    bool use_existing_db;
    bool sync;
    bool histogram;
} g_flags = {
    .engine = "nkv",
    .db = NULL,
    .benchmarks = "fillseq,fillrandom,overwrite,readrandom,readseq,seekrandom",
    .num = 1000000,
    .reads = -1,
    .writes = -1,
    .value_size = 100,
    .threads = 1,
    .compression_ratio = 0.5,
    .cache_size = 8388608,
    .bloom_bits = -1,
    .block_size = 4096,
    .write_buffer_size = 4194304,
    .max_file_size = -1,
    .open_files = -1,
    .compression = NKVB_COMP_SNAPPY,
    .use_existing_db = false,
    .sync = false,
    .histogram = false,
};

static const char *const g_comp_names[] = {"none", "snappy", "zstd"};

#ifndef NKVB_NKV_WHY
#define NKVB_NKV_WHY "the nkv library was not found"
#endif

/* The engines built into this binary, in --engine order. */
static const nkvb_engine *const g_engines[] = {
#ifdef NKVB_HAVE_NKV
    &nkvb_engine_nkv,
#endif
#ifdef NKVB_HAVE_LEVELDB
    &nkvb_engine_leveldb,
#endif
#ifdef NKVB_HAVE_ROCKSDB
    &nkvb_engine_rocksdb,
#endif
    NULL,
};

static void usage(FILE *f)
{
    fprintf(f, "usage: nkv_bench --engine=ENGINE [db_bench flags]\n"
               "engines built in:");
    for (size_t i = 0; g_engines[i] != NULL; i++) {
        fprintf(f, " %s", g_engines[i]->name);
    }
    fprintf(f, "\nflags: --db --benchmarks --num --reads --writes --value_size --threads\n"
               "       --compression_ratio --cache_size --bloom_bits --block_size\n"
               "       --write_buffer_size --max_file_size --open_files\n"
               "       --compression_type=none|snappy|zstd --compression=0|1|2\n"
               "       --use_existing_db=0|1 --sync=0|1 --histogram=0|1 --key_size=16\n"
               "benchmarks: fillseq fillrandom overwrite fillsync readrandom readseq\n"
               "       readreverse seekrandom deleteseq deleterandom compact\n");
}

static _Noreturn void bad_flag(const char *arg)
{
    fprintf(stderr, "Invalid flag '%s'\n", arg);
    usage(stderr);
    exit(1);
}

/* Returns the value of "--name=value" in arg, or NULL if arg is another flag. */
static const char *flag_value(const char *arg, const char *name)
{
    size_t n = strlen(name);
    if (strncmp(arg, "--", 2) != 0 || strncmp(arg + 2, name, n) != 0 || arg[2 + n] != '=') {
        return NULL;
    }
    return arg + 3 + n;
}

static long long parse_ll(const char *arg, const char *v, long long lo, long long hi)
{
    char *end = NULL;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || x < lo || x > hi) {
        bad_flag(arg);
    }
    return x;
}

static int parse_int(const char *arg, const char *v, int lo)
{
    return (int)parse_ll(arg, v, lo, INT32_MAX);
}

static bool parse_bool(const char *arg, const char *v)
{
    if (strcmp(v, "1") == 0 || strcmp(v, "true") == 0) {
        return true;
    }
    if (strcmp(v, "0") == 0 || strcmp(v, "false") == 0) {
        return false;
    }
    bad_flag(arg);
}

static void parse_flags(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if ((v = flag_value(a, "engine")) != NULL) {
            g_flags.engine = v;
        } else if ((v = flag_value(a, "db")) != NULL) {
            g_flags.db = v;
        } else if ((v = flag_value(a, "benchmarks")) != NULL) {
            g_flags.benchmarks = v;
        } else if ((v = flag_value(a, "num")) != NULL) {
            g_flags.num = parse_int(a, v, 1); /* Uniform(num) needs num >= 1 */
        } else if ((v = flag_value(a, "reads")) != NULL) {
            g_flags.reads = parse_int(a, v, -1);
        } else if ((v = flag_value(a, "writes")) != NULL) {
            g_flags.writes = parse_int(a, v, -1);
        } else if ((v = flag_value(a, "value_size")) != NULL) {
            g_flags.value_size = parse_int(a, v, 0);
        } else if ((v = flag_value(a, "threads")) != NULL) {
            g_flags.threads = parse_int(a, v, 1);
        } else if ((v = flag_value(a, "compression_ratio")) != NULL) {
            char *end = NULL;
            g_flags.compression_ratio = strtod(v, &end);
            if (end == v || *end != '\0' || !(g_flags.compression_ratio > 0.0) ||
                g_flags.compression_ratio > 1.0) {
                bad_flag(a);
            }
        } else if ((v = flag_value(a, "cache_size")) != NULL) {
            g_flags.cache_size = parse_ll(a, v, -1, INT64_MAX);
        } else if ((v = flag_value(a, "bloom_bits")) != NULL) {
            g_flags.bloom_bits = parse_int(a, v, -1);
        } else if ((v = flag_value(a, "block_size")) != NULL) {
            g_flags.block_size = parse_int(a, v, 1);
        } else if ((v = flag_value(a, "write_buffer_size")) != NULL) {
            g_flags.write_buffer_size = parse_ll(a, v, 4096, INT64_MAX);
        } else if ((v = flag_value(a, "max_file_size")) != NULL) {
            g_flags.max_file_size = parse_ll(a, v, -1, INT64_MAX);
        } else if ((v = flag_value(a, "open_files")) != NULL) {
            g_flags.open_files = parse_int(a, v, -1);
        } else if ((v = flag_value(a, "compression_type")) != NULL) {
            if (strcmp(v, "none") == 0) {
                g_flags.compression = NKVB_COMP_NONE;
            } else if (strcmp(v, "snappy") == 0) {
                g_flags.compression = NKVB_COMP_SNAPPY;
            } else if (strcmp(v, "zstd") == 0) {
                g_flags.compression = NKVB_COMP_ZSTD;
            } else {
                bad_flag(a);
            }
        } else if ((v = flag_value(a, "compression")) != NULL) {
            g_flags.compression = (nkvb_compression)parse_ll(a, v, 0, 2);
        } else if ((v = flag_value(a, "use_existing_db")) != NULL) {
            g_flags.use_existing_db = parse_bool(a, v);
        } else if ((v = flag_value(a, "sync")) != NULL) {
            g_flags.sync = parse_bool(a, v);
        } else if ((v = flag_value(a, "histogram")) != NULL) {
            g_flags.histogram = parse_bool(a, v);
        } else if ((v = flag_value(a, "key_size")) != NULL) {
            if (parse_int(a, v, 0) != KEY_SIZE) {
                fprintf(stderr, "nkv_bench: keys are always %d bytes (LevelDB's format)\n",
                        KEY_SIZE);
                exit(1);
            }
        } else {
            bad_flag(a);
        }
    }
}

/* ---------------------------------------------------------------------------
 * LevelDB's Random (util/random.h): Park–Miller "minimal standard" generator,
 * seed = seed * 16807 mod (2^31 - 1).
 * ------------------------------------------------------------------------- */

typedef struct lrand {
    uint32_t seed;
} lrand;

static void lrand_init(lrand *r, uint32_t s)
{
    r->seed = s & 0x7fffffffu;
    if (r->seed == 0 || r->seed == 2147483647u) {
        r->seed = 1; /* 0 and M are fixed points */
    }
}

static uint32_t lrand_next(lrand *r)
{
    const uint32_t m = 2147483647u;
    uint64_t product = (uint64_t)r->seed * 16807u;
    /* (x << 31) % M == x, so product % M == (product >> 31) + (product & M),
     * which may exceed M by less than M once. */
    r->seed = (uint32_t)((product >> 31) + (product & m));
    if (r->seed > m) {
        r->seed -= m;
    }
    return r->seed;
}

static uint32_t lrand_uniform(lrand *r, int n)
{
    return lrand_next(r) % (uint32_t)n;
}

/* ---------------------------------------------------------------------------
 * Values: LevelDB's RandomGenerator over test::CompressibleString. The data
 * is built once and shared read-only; each writer keeps its own position.
 * ------------------------------------------------------------------------- */

static char *g_value_data;
static size_t g_value_len;

static void values_init(double ratio)
{
    const size_t piece = 100;
    size_t raw = (size_t)(piece * ratio);
    if (raw < 1) {
        raw = 1;
    }
    size_t cap = 1048576 + piece;
    g_value_data = malloc(cap);
    if (g_value_data == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    lrand rnd;
    lrand_init(&rnd, 301);
    char chunk[100];
    g_value_len = 0;
    while (g_value_len < 1048576) {
        for (size_t i = 0; i < raw; i++) {
            chunk[i] = (char)(' ' + lrand_uniform(&rnd, 95));
        }
        for (size_t i = raw; i < piece; i++) {
            chunk[i] = chunk[i % raw];
        }
        memcpy(g_value_data + g_value_len, chunk, piece);
        g_value_len += piece;
    }
}

/* Returns the next len bytes of value data for the writer at *pos. */
static const char *value_next(size_t *pos, size_t len)
{
    if (*pos + len > g_value_len) {
        *pos = 0;
    }
    *pos += len;
    return g_value_data + *pos - len;
}

/* Writes "%016d" of k (0 <= k) into buf without a NUL, as snprintf would. */
static void key_set(char *buf, int k)
{
    unsigned v = (unsigned)k;
    for (int i = KEY_SIZE - 1; i >= 0; i--) {
        buf[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

/* ---------------------------------------------------------------------------
 * Latency histogram (LevelDB's util/histogram layout: fixed bucket limits
 * 1, 2, ... 10, 12, 14, ... in microseconds).
 * ------------------------------------------------------------------------- */

#define HIST_BUCKETS 160

static double g_hist_limit[HIST_BUCKETS];

static void hist_limits_init(void)
{
    static const double steps[] = {1.0, 1.2, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0,
                                   3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0};
    int n = 0;
    for (int i = 1; i < 10; i++) {
        g_hist_limit[n++] = i;
    }
    for (double decade = 10.0; n < HIST_BUCKETS - 1; decade *= 10.0) {
        for (size_t s = 0; s < sizeof(steps) / sizeof(steps[0]) && n < HIST_BUCKETS - 1; s++) {
            g_hist_limit[n++] = decade * steps[s];
        }
    }
    g_hist_limit[HIST_BUCKETS - 1] = 1e200;
}

typedef struct hist {
    double min, max, num, sum, sum_sq;
    double buckets[HIST_BUCKETS];
} hist;

static void hist_clear(hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = 1e200;
}

static void hist_add(hist *h, double v)
{
    /* The first bucket whose limit exceeds v (the last one catches all). */
    int lo = 0;
    int hi = HIST_BUCKETS - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (g_hist_limit[mid] > v) {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    int b = lo;
    h->buckets[b] += 1.0;
    if (v < h->min) {
        h->min = v;
    }
    if (v > h->max) {
        h->max = v;
    }
    h->num++;
    h->sum += v;
    h->sum_sq += v * v;
}

static void hist_merge(hist *h, const hist *o)
{
    if (o->min < h->min) {
        h->min = o->min;
    }
    if (o->max > h->max) {
        h->max = o->max;
    }
    h->num += o->num;
    h->sum += o->sum;
    h->sum_sq += o->sum_sq;
    for (int b = 0; b < HIST_BUCKETS; b++) {
        h->buckets[b] += o->buckets[b];
    }
}

static double hist_percentile(const hist *h, double p)
{
    double threshold = h->num * (p / 100.0);
    double sum = 0;
    for (int b = 0; b < HIST_BUCKETS; b++) {
        sum += h->buckets[b];
        if (sum >= threshold) {
            /* Interpolate inside the bucket, clamped to the observed range. */
            double left = b == 0 ? 0.0 : g_hist_limit[b - 1];
            double right = g_hist_limit[b];
            double left_sum = sum - h->buckets[b];
            double pos = h->buckets[b] > 0 ? (threshold - left_sum) / h->buckets[b] : 0.0;
            double r = left + (right - left) * pos;
            if (r < h->min) {
                r = h->min;
            }
            if (r > h->max) {
                r = h->max;
            }
            return r;
        }
    }
    return h->max;
}

static void hist_print(const hist *h)
{
    double avg = h->num > 0 ? h->sum / h->num : 0.0;
    double var = h->num > 0 ? (h->sum_sq * h->num - h->sum * h->sum) / (h->num * h->num) : 0.0;
    printf("Count: %.0f  Average: %.4f  StdDev: %.2f\n", h->num, avg, sqrt(var > 0 ? var : 0));
    printf("Min: %.4f  Median: %.4f  Max: %.4f\n", h->num > 0 ? h->min : 0.0,
           hist_percentile(h, 50.0), h->max);
    printf("Percentiles: P50: %.2f P75: %.2f P99: %.2f P99.9: %.2f P99.99: %.2f\n",
           hist_percentile(h, 50.0), hist_percentile(h, 75.0), hist_percentile(h, 99.0),
           hist_percentile(h, 99.9), hist_percentile(h, 99.99));
    printf("------------------------------------------------------\n");
    double mult = h->num > 0 ? 100.0 / h->num : 0.0;
    double sum = 0;
    for (int b = 0; b < HIST_BUCKETS; b++) {
        if (h->buckets[b] <= 0.0) {
            continue;
        }
        sum += h->buckets[b];
        printf("[ %7.0f, %7.0f ) %7.0f %7.3f%% %7.3f%% ", b == 0 ? 0.0 : g_hist_limit[b - 1],
               g_hist_limit[b], h->buckets[b], mult * h->buckets[b], mult * sum);
        int marks = (int)(20 * (h->buckets[b] / h->num) + 0.5);
        for (int i = 0; i < marks; i++) {
            putchar('#');
        }
        putchar('\n');
    }
}

/* ---------------------------------------------------------------------------
 * Per-thread statistics, merged like db_bench's Stats.
 * ------------------------------------------------------------------------- */

typedef struct stats {
    double start;   /* micros */
    double finish;  /* micros */
    double seconds; /* this thread's run time; summed over threads on merge */
    int64_t done;
    int64_t bytes;
    double last_op_finish;
    char message[128];
    hist h;
} stats;

static double now_micros(void)
{
    return (double)nb_mono_ns() / 1e3;
}

static void stats_start(stats *s)
{
    hist_clear(&s->h);
    s->done = 0;
    s->bytes = 0;
    s->seconds = 0;
    s->message[0] = '\0';
    s->start = s->finish = s->last_op_finish = now_micros();
}

static void stats_stop(stats *s)
{
    s->finish = now_micros();
    s->seconds = (s->finish - s->start) * 1e-6;
}

static void stats_add_message(stats *s, const char *msg)
{
    size_t n = strlen(s->message);
    snprintf(s->message + n, sizeof(s->message) - n, "%s%s", n > 0 ? " " : "", msg);
}

static inline void stats_finished_op(stats *s)
{
    if (g_flags.histogram) {
        double now = now_micros();
        hist_add(&s->h, now - s->last_op_finish);
        s->last_op_finish = now;
    }
    s->done++;
}

static void stats_merge(stats *s, const stats *o)
{
    hist_merge(&s->h, &o->h);
    s->done += o->done;
    s->bytes += o->bytes;
    s->seconds += o->seconds;
    if (o->start < s->start) {
        s->start = o->start;
    }
    if (o->finish > s->finish) {
        s->finish = o->finish;
    }
    if (s->message[0] == '\0') { /* keep the messages of one thread */
        memcpy(s->message, o->message, sizeof(s->message));
    }
}

static void stats_report(stats *s, const char *name)
{
    /* db_bench pretends one op was done by benchmarks that count none. */
    int64_t done = s->done < 1 ? 1 : s->done;
    double elapsed = (s->finish - s->start) * 1e-6;
    char extra[256] = "";
    if (s->bytes > 0 && elapsed > 0) {
        snprintf(extra, sizeof(extra), "%6.1f MB/s", ((double)s->bytes / 1048576.0) / elapsed);
    }
    if (s->message[0] != '\0') {
        size_t n = strlen(extra);
        snprintf(extra + n, sizeof(extra) - n, "%s%s", n > 0 ? " " : "", s->message);
    }
    long throughput = elapsed > 0 ? (long)((double)done / elapsed) : 0;
    printf("%-12s : %11.3f micros/op %ld ops/sec %.3f seconds %" PRId64 " operations;%s%s\n", name,
           s->seconds * 1e6 / (double)done, throughput, elapsed, done, extra[0] != '\0' ? " " : "",
           extra);
    if (g_flags.histogram) {
        printf("Microseconds per op:\n");
        hist_print(&s->h);
        printf("\n");
    }
    fflush(stdout);
}

/* ---------------------------------------------------------------------------
 * The benchmark runner (db_bench's Benchmark class).
 * ------------------------------------------------------------------------- */

typedef struct thread_state thread_state;
typedef void (*bench_fn)(thread_state *t);

typedef struct shared_state {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int total;
    int num_initialized;
    int num_done;
    bool start;
} shared_state;

struct thread_state {
    int tid;
    lrand rand;
    stats st;
    shared_state *shared;
    bench_fn fn;
    pthread_t thread;
};

static const nkvb_engine *g_engine;
static nkvb_settings g_settings;
static void *g_db;
static int g_num;         /* ops per thread for this write benchmark */
static int g_reads;       /* ops per thread for this read benchmark */
static bool g_write_sync; /* this benchmark's writes are synced */
static int g_total_thread_count;

static _Noreturn void die(const char *what, const char *err)
{
    fprintf(stderr, "%s error: %s\n", what, err);
    exit(1);
}

static void db_open(void)
{
    char err[512];
    if (g_engine->open(&g_settings, g_flags.db, &g_db, err, sizeof(err)) != 0) {
        die("open", err);
    }
}

static void db_close(void)
{
    g_engine->close(g_db);
    g_db = NULL;
}

static void db_destroy(void)
{
    char err[512];
    if (g_engine->destroy(&g_settings, g_flags.db, err, sizeof(err)) != 0) {
        die("destroy", err);
    }
}

static void do_write(thread_state *t, bool seq)
{
    if (g_num != g_flags.num) {
        char msg[64];
        snprintf(msg, sizeof(msg), "(%d ops)", g_num);
        stats_add_message(&t->st, msg);
    }
    char key[KEY_SIZE];
    char err[512];
    size_t vpos = 0;
    size_t vsize = (size_t)g_flags.value_size;
    int64_t bytes = 0;
    for (int i = 0; i < g_num; i++) {
        int k = seq ? i : (int)lrand_uniform(&t->rand, g_flags.num);
        key_set(key, k);
        const char *v = value_next(&vpos, vsize);
        if (g_engine->put(g_db, g_write_sync, key, KEY_SIZE, v, vsize, err, sizeof(err)) != 0) {
            die("put", err);
        }
        bytes += (int64_t)vsize + KEY_SIZE;
        stats_finished_op(&t->st);
    }
    t->st.bytes += bytes;
}

static void bench_fillseq(thread_state *t)
{
    do_write(t, true);
}

static void bench_fillrandom(thread_state *t)
{
    do_write(t, false);
}

static void check_iter(void *it)
{
    char err[512];
    if (g_engine->iter_status(it, err, sizeof(err)) != 0) {
        die("iterator", err);
    }
}

static void bench_readseq(thread_state *t)
{
    void *it = g_engine->iter_new(g_db);
    int64_t bytes = 0;
    int i = 0;
    for (g_engine->iter_first(it); i < g_reads && g_engine->iter_valid(it);
         g_engine->iter_next(it)) {
        size_t kl, vl;
        (void)g_engine->iter_key(it, &kl);
        (void)g_engine->iter_value(it, &vl);
        bytes += (int64_t)(kl + vl);
        stats_finished_op(&t->st);
        i++;
    }
    check_iter(it);
    g_engine->iter_free(it);
    t->st.bytes += bytes;
}

static void bench_readreverse(thread_state *t)
{
    void *it = g_engine->iter_new(g_db);
    int64_t bytes = 0;
    int i = 0;
    for (g_engine->iter_last(it); i < g_reads && g_engine->iter_valid(it);
         g_engine->iter_prev(it)) {
        size_t kl, vl;
        (void)g_engine->iter_key(it, &kl);
        (void)g_engine->iter_value(it, &vl);
        bytes += (int64_t)(kl + vl);
        stats_finished_op(&t->st);
        i++;
    }
    check_iter(it);
    g_engine->iter_free(it);
    t->st.bytes += bytes;
}

static void add_found(thread_state *t, int found)
{
    char msg[96];
    snprintf(msg, sizeof(msg), "(%d of %d found)", found, g_flags.num);
    stats_add_message(&t->st, msg);
}

static void bench_readrandom(thread_state *t)
{
    char key[KEY_SIZE];
    char err[512];
    int found = 0;
    for (int i = 0; i < g_reads; i++) {
        key_set(key, (int)lrand_uniform(&t->rand, g_flags.num));
        size_t vl = 0;
        int rc = g_engine->get(g_db, key, KEY_SIZE, &vl, err, sizeof(err));
        if (rc < 0) {
            die("get", err);
        }
        found += rc;
        stats_finished_op(&t->st);
    }
    add_found(t, found);
}

static void bench_seekrandom(thread_state *t)
{
    char key[KEY_SIZE];
    int found = 0;
    for (int i = 0; i < g_reads; i++) {
        void *it = g_engine->iter_new(g_db);
        key_set(key, (int)lrand_uniform(&t->rand, g_flags.num));
        g_engine->iter_seek(it, key, KEY_SIZE);
        if (g_engine->iter_valid(it)) {
            size_t kl;
            const char *k = g_engine->iter_key(it, &kl);
            if (kl == KEY_SIZE && memcmp(k, key, KEY_SIZE) == 0) {
                found++;
            }
        } else {
            check_iter(it);
        }
        g_engine->iter_free(it);
        stats_finished_op(&t->st);
    }
    add_found(t, found);
}

static void do_delete(thread_state *t, bool seq)
{
    char key[KEY_SIZE];
    char err[512];
    for (int i = 0; i < g_num; i++) {
        key_set(key, seq ? i : (int)lrand_uniform(&t->rand, g_flags.num));
        if (g_engine->del(g_db, g_write_sync, key, KEY_SIZE, err, sizeof(err)) != 0) {
            die("delete", err);
        }
        stats_finished_op(&t->st);
    }
}

static void bench_deleteseq(thread_state *t)
{
    do_delete(t, true);
}

static void bench_deleterandom(thread_state *t)
{
    do_delete(t, false);
}

static void bench_compact(thread_state *t)
{
    /* db_bench runs every benchmark in --threads threads (which keeps the
     * seeds of later benchmarks where it has them); one compaction is enough. */
    if (t->tid != 0) {
        return;
    }
    char err[512];
    if (g_engine->compact(g_db, err, sizeof(err)) != 0) {
        die("compact", err);
    }
}

static void *thread_body(void *arg)
{
    thread_state *t = arg;
    shared_state *sh = t->shared;
    pthread_mutex_lock(&sh->mu);
    sh->num_initialized++;
    if (sh->num_initialized >= sh->total) {
        pthread_cond_broadcast(&sh->cv);
    }
    while (!sh->start) {
        pthread_cond_wait(&sh->cv, &sh->mu);
    }
    pthread_mutex_unlock(&sh->mu);

    if (g_engine->thread_init != NULL) {
        g_engine->thread_init();
    }
    stats_start(&t->st);
    t->fn(t);
    stats_stop(&t->st);

    pthread_mutex_lock(&sh->mu);
    sh->num_done++;
    if (sh->num_done >= sh->total) {
        pthread_cond_broadcast(&sh->cv);
    }
    pthread_mutex_unlock(&sh->mu);
    return NULL;
}

static void run_benchmark(int n, const char *name, bench_fn fn)
{
    shared_state sh = {.total = n};
    pthread_mutex_init(&sh.mu, NULL);
    pthread_cond_init(&sh.cv, NULL);
    thread_state *ts = calloc((size_t)n, sizeof(*ts));
    if (ts == NULL) {
        die("run", "out of memory");
    }
    for (int i = 0; i < n; i++) {
        ts[i].tid = i;
        ts[i].shared = &sh;
        ts[i].fn = fn;
        /* db_bench: seeds unique across all benchmarks of the process, but
         * reproducible from run to run. */
        ++g_total_thread_count;
        lrand_init(&ts[i].rand, (uint32_t)(1000 + g_total_thread_count));
        int rc = pthread_create(&ts[i].thread, NULL, thread_body, &ts[i]);
        if (rc != 0) {
            die("pthread_create", strerror(rc));
        }
    }
    pthread_mutex_lock(&sh.mu);
    while (sh.num_initialized < n) {
        pthread_cond_wait(&sh.cv, &sh.mu);
    }
    sh.start = true;
    pthread_cond_broadcast(&sh.cv);
    while (sh.num_done < n) {
        pthread_cond_wait(&sh.cv, &sh.mu);
    }
    pthread_mutex_unlock(&sh.mu);
    for (int i = 0; i < n; i++) {
        pthread_join(ts[i].thread, NULL);
    }
    for (int i = 1; i < n; i++) {
        stats_merge(&ts[0].st, &ts[i].st);
    }
    stats_report(&ts[0].st, name);
    /* NKV_BENCH_MALLOC_STATS=1: glibc's per-arena bytes after each benchmark
     * (freed heap that stays resident shows as system >> in use). */
    if (getenv("NKV_BENCH_MALLOC_STATS"))
        malloc_stats();
    free(ts);
    pthread_cond_destroy(&sh.cv);
    pthread_mutex_destroy(&sh.mu);
}

/* ---------------------------------------------------------------------------
 * Banner
 * ------------------------------------------------------------------------- */

static void trim(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && (s[n - 1] == '\n' || s[n - 1] == ' ' || s[n - 1] == '\t')) {
        s[--n] = '\0';
    }
}

static void print_environment(void)
{
    fprintf(stderr, "nkv_bench:  version %s engine=%s (%s)\n", NB_VERSION, g_engine->name,
            g_engine->describe());
    time_t now = time(NULL);
    fprintf(stderr, "Date:       %s", ctime(&now));
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f != NULL) {
        char line[1000];
        char cpu_type[256] = "";
        char cache_size[64] = "";
        int num_cpus = 0;
        while (fgets(line, sizeof(line), f) != NULL) {
            char *sep = strchr(line, ':');
            if (sep == NULL) {
                continue;
            }
            const char *val = sep + 1;
            while (*val == ' ' || *val == '\t') {
                val++;
            }
            if (strncmp(line, "model name", 10) == 0) {
                num_cpus++;
                snprintf(cpu_type, sizeof(cpu_type), "%s", val);
                trim(cpu_type);
            } else if (strncmp(line, "cache size", 10) == 0) {
                snprintf(cache_size, sizeof(cache_size), "%s", val);
                trim(cache_size);
            }
        }
        fclose(f);
        fprintf(stderr, "CPU:        %d * %s\n", num_cpus, cpu_type);
        fprintf(stderr, "CPUCache:   %s\n", cache_size);
    }
}

static void print_header(void)
{
    print_environment();
    double ratio = g_flags.compression_ratio;
    printf("Keys:       %d bytes each\n", KEY_SIZE);
    printf("Values:     %d bytes each (%d bytes after compression)\n", g_flags.value_size,
           (int)(g_flags.value_size * ratio + 0.5));
    printf("Entries:    %d\n", g_flags.num);
    printf("RawSize:    %.1f MB (estimated)\n",
           ((double)(KEY_SIZE + g_flags.value_size) * g_flags.num) / 1048576.0);
    printf("FileSize:   %.1f MB (estimated)\n",
           ((KEY_SIZE + g_flags.value_size * ratio) * g_flags.num) / 1048576.0);
    printf("Engine:     %s write_buffer_size=%lld cache_size=%lld bloom_bits=%d block_size=%d "
           "compression=%s max_file_size=%lld open_files=%d\n",
           g_engine->name, g_flags.write_buffer_size, g_flags.cache_size, g_flags.bloom_bits,
           g_flags.block_size, g_comp_names[g_flags.compression], g_flags.max_file_size,
           g_flags.open_files);
#if defined(__GNUC__) && !defined(__OPTIMIZE__)
    printf("WARNING: Optimization is disabled: benchmarks unnecessarily slow\n");
#endif
#ifndef NDEBUG
    printf("WARNING: Assertions are enabled; benchmarks unnecessarily slow\n");
#endif
    printf("------------------------------------------------\n");
    fflush(stdout);
}

/* mkdir -p of the directory that will hold the database. */
static void make_parent_dirs(const char *path)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    char *slash = strrchr(buf, '/');
    if (slash == NULL || slash == buf) {
        return;
    }
    *slash = '\0';
    for (char *p = buf + 1; *p != '\0'; p++) {
        if (*p == '/') {
            *p = '\0';
            (void)mkdir(buf, 0755);
            *p = '/';
        }
    }
    (void)mkdir(buf, 0755);
}

/* ---------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------- */

static const nkvb_engine *find_engine(const char *name)
{
    for (size_t i = 0; g_engines[i] != NULL; i++) {
        if (strcmp(g_engines[i]->name, name) == 0) {
            return g_engines[i];
        }
    }
    if (strcmp(name, "nkv") == 0) {
        fprintf(stderr,
                "nkv_bench: --engine=nkv is not available in this build: when it was "
                "configured, %s. Re-run cmake once src/nkv is complete, or use "
                "--engine=leveldb|rocksdb.\n",
                NKVB_NKV_WHY);
    } else if (strcmp(name, "leveldb") == 0 || strcmp(name, "rocksdb") == 0) {
        fprintf(stderr,
                "nkv_bench: --engine=%s is not available in this build: lib%s was not found "
                "when the build was configured (Debian package lib%s-dev).\n",
                name, name, name);
    } else {
        fprintf(stderr, "nkv_bench: unknown engine '%s'\n", name);
        usage(stderr);
    }
    exit(2);
}

int main(int argc, char **argv)
{
    parse_flags(argc, argv);
    g_engine = find_engine(g_flags.engine);

    char default_db[256];
    if (g_flags.db == NULL) {
        snprintf(default_db, sizeof(default_db), "/tmp/nkv_bench-%u/dbbench", (unsigned)getuid());
        g_flags.db = default_db;
    }
    make_parent_dirs(g_flags.db);

    g_settings = (nkvb_settings){
        .cache_size = g_flags.cache_size,
        .bloom_bits = g_flags.bloom_bits,
        .block_size = g_flags.block_size,
        .write_buffer_size = g_flags.write_buffer_size,
        .max_file_size = g_flags.max_file_size,
        .open_files = g_flags.open_files,
        .compression = g_flags.compression,
        .create_if_missing = !g_flags.use_existing_db,
    };
    if (g_flags.value_size > 1048576 - 100) {
        fprintf(stderr, "nkv_bench: --value_size must be below 1 MiB\n");
        return 1;
    }
    values_init(g_flags.compression_ratio);
    hist_limits_init();

    if (!g_flags.use_existing_db) {
        db_destroy();
    }
    print_header();
    db_open();

    char *list = strdup(g_flags.benchmarks);
    if (list == NULL) {
        die("main", "out of memory");
    }
    char *save = NULL;
    for (char *name = strtok_r(list, ",", &save); name != NULL; name = strtok_r(NULL, ",", &save)) {
        g_num = g_flags.num;
        g_reads = g_flags.reads < 0 ? g_flags.num : g_flags.reads;
        g_write_sync = g_flags.sync;
        bool fresh_db = false;
        bench_fn fn = NULL;
        int writes = g_flags.writes;

        if (strcmp(name, "fillseq") == 0) {
            fresh_db = true;
            fn = bench_fillseq;
        } else if (strcmp(name, "fillrandom") == 0) {
            fresh_db = true;
            fn = bench_fillrandom;
        } else if (strcmp(name, "overwrite") == 0) {
            fn = bench_fillrandom;
        } else if (strcmp(name, "fillsync") == 0) {
            fresh_db = true;
            g_num = g_flags.num / 1000;
            g_write_sync = true;
            fn = bench_fillrandom;
        } else if (strcmp(name, "readseq") == 0) {
            fn = bench_readseq;
        } else if (strcmp(name, "readreverse") == 0) {
            fn = bench_readreverse;
        } else if (strcmp(name, "readrandom") == 0) {
            fn = bench_readrandom;
        } else if (strcmp(name, "seekrandom") == 0) {
            fn = bench_seekrandom;
        } else if (strcmp(name, "deleteseq") == 0) {
            fn = bench_deleteseq;
            writes = -1;
        } else if (strcmp(name, "deleterandom") == 0) {
            fn = bench_deleterandom;
            writes = -1;
        } else if (strcmp(name, "compact") == 0) {
            fn = bench_compact;
        } else {
            fprintf(stderr, "unknown benchmark '%s'\n", name);
            continue;
        }
        /* RocksDB's --writes: the op count of every write benchmark. */
        if (writes >= 0 && (fn == bench_fillseq || fn == bench_fillrandom)) {
            g_num = writes;
        }

        if (fresh_db) {
            if (g_flags.use_existing_db) {
                printf("%-12s : skipped (--use_existing_db is true)\n", name);
                fflush(stdout);
                continue;
            }
            db_close();
            db_destroy();
            db_open();
        }
        run_benchmark(g_flags.threads, name, fn);
    }
    free(list);
    db_close();
    free(g_value_data);
    return 0;
}
