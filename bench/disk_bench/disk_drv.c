/*
 * disk_drv — durable puts of one size on the engine alone, for A/B runs of
 * two builds of the engine (bench/disk_bench/ab.sh links this file against
 * each build's libnb_disk.a and alternates them).
 *
 *   disk_drv DIR SIZE THREADS SECONDS
 *
 * Opens (creating) an engine in DIR/eng with a 256 MiB prefilled data file,
 * runs THREADS writers of SIZE-byte blobs for SECONDS, and prints one line:
 * puts/s, p50 and p99 latency, and fsyncs and group commits per put (from
 * disk_stats). Ids cycle per thread, so puts replace earlier blobs and the
 * live ones fill at most half the store.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/clock.h"
#include "common/mem.h"
#include "common/status.h"
#include "disk/disk.h"

#define MAX_THREADS 16
#define MAX_LAT     200000 /* latencies kept per thread */

typedef struct writer {
    disk_env *e;
    int t, n;
    size_t size;
    const uint8_t *src;
    uint64_t deadline;
    uint64_t ids; /* ids cycled over, so the store never fills */
    uint64_t ops;
    uint64_t *lat;
} writer;

static void *run(void *arg)
{
    writer *w = arg;
    for (uint64_t i = 0;; i++) {
        uint64_t t0 = nb_mono_ns();
        if (t0 > w->deadline)
            break;
        uint64_t id = (i * (uint64_t)w->n + (uint64_t)w->t) % w->ids;
        int rc = disk_put(w->e, (disk_id){w->size, id}, w->src, w->size);
        if (rc) {
            fprintf(stderr, "disk_drv: put: %s\n", nb_strerror(rc));
            exit(1);
        }
        if (w->ops < MAX_LAT)
            w->lat[w->ops] = nb_mono_ns() - t0;
        w->ops++;
    }
    return NULL;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: disk_drv DIR SIZE THREADS SECONDS\n");
        return 2;
    }
    size_t size = (size_t)atol(argv[2]);
    int n = atoi(argv[3]);
    double secs = atof(argv[4]);
    if (n < 1 || n > MAX_THREADS || size == 0) {
        fprintf(stderr, "disk_drv: bad SIZE or THREADS\n");
        return 2;
    }
    char *edir = nb_xasprintf("%s/eng", argv[1]);
    disk_options o;
    disk_options_init(&o);
    o.capacity = 256ull << 20;
    o.initial_size = o.capacity;
    o.prefill = 1;
    o.max_blob = 8u << 20;
    if (getenv("DISK_DRV_WALMAX"))
        o.wal_max_bytes = strtoull(getenv("DISK_DRV_WALMAX"), NULL, 0);
    disk_env *e;
    int rc = disk_open(&o, edir, &e);
    if (rc) {
        fprintf(stderr, "disk_drv: open %s: %s\n", edir, nb_strerror(rc));
        return 1;
    }
    uint8_t *src = nb_xaligned_alloc(4096, size);
    for (size_t i = 0; i < size; i++)
        src[i] = (uint8_t)(i * 7 + 3);
    disk_stats s0, s1;
    disk_stats_get(e, &s0);
    struct rusage ru0, ru1;
    getrusage(RUSAGE_SELF, &ru0);
    /* Live blobs fill at most half the store: 20,000 of 4 KiB, 2,048 of 64 KiB. */
    uint64_t ids = (o.capacity / 2) / ((size + 4095) / 4096 * 4096);
    if (ids > 20000)
        ids = 20000;
    writer w[MAX_THREADS];
    pthread_t th[MAX_THREADS];
    uint64_t t0 = nb_mono_ns();
    for (int t = 0; t < n; t++) {
        w[t] = (writer){.e = e,
                        .t = t,
                        .n = n,
                        .size = size,
                        .src = src,
                        .deadline = t0 + (uint64_t)(secs * 1e9),
                        .ids = ids,
                        .lat = nb_xmalloc(MAX_LAT * sizeof(uint64_t))};
        pthread_create(&th[t], NULL, run, &w[t]);
    }
    uint64_t ops = 0, kept = 0;
    for (int t = 0; t < n; t++) {
        pthread_join(th[t], NULL);
        ops += w[t].ops;
    }
    double el = (double)(nb_mono_ns() - t0) / 1e9;
    disk_stats_get(e, &s1);
    getrusage(RUSAGE_SELF, &ru1);
    double cpu = (double)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec + ru1.ru_stime.tv_sec -
                          ru0.ru_stime.tv_sec) *
                     1e6 +
                 (double)(ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec + ru1.ru_stime.tv_usec -
                          ru0.ru_stime.tv_usec);
    uint64_t *all = nb_xmalloc((size_t)n * MAX_LAT * sizeof(uint64_t));
    for (int t = 0; t < n; t++) {
        uint64_t k = w[t].ops < MAX_LAT ? w[t].ops : MAX_LAT;
        memcpy(all + kept, w[t].lat, k * sizeof(uint64_t));
        kept += k;
        free(w[t].lat);
    }
    qsort(all, kept, sizeof *all, cmp_u64);
    double puts = (double)(s1.puts - s0.puts);
    if (puts < 1)
        puts = 1;
    printf("size %zu threads %d: %.0f puts/s p50 %.0f p99 %.0f us fsyncs/put %.2f groups/put "
           "%.2f cpu/put %.0f us\n",
           size, n, (double)ops / el, kept ? (double)all[kept / 2] / 1e3 : 0.0,
           kept ? (double)all[kept * 99 / 100] / 1e3 : 0.0, (double)(s1.fsyncs - s0.fsyncs) / puts,
           (double)(s1.group_commits - s0.group_commits) / puts, ops ? cpu / (double)ops : 0.0);
    free(all);
    free(src);
    free(edir);
    return disk_close(e) ? 1 : 0;
}
