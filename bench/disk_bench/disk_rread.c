/*
 * disk_rread — warm range reads of 4 MiB blobs after a reopen, on the engine
 * alone: what vfs's "warm read after a reopen" costs the disk engine. Puts
 * BLOBS blobs of 4 MiB, closes, reopens (the page cache keeps the bytes),
 * then reads every blob in CHUNK-byte ranges with disk_read, PASSES times,
 * and prints MiB/s and CPU microseconds per MiB read. Built against two
 * builds of the engine by bench/disk_bench/rread_ab.sh (before format 4 a
 * range read checked the whole blob; after, the segments it touches).
 *
 *   usage: disk_rread DIR BLOBS CHUNK PASSES
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "common/clock.h"
#include "common/mem.h"
#include "common/status.h"
#include "disk/disk.h"

static double cpu_us(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: disk_rread DIR BLOBS CHUNK PASSES\n");
        return 2;
    }
    const size_t blob = 4u << 20;
    int blobs = atoi(argv[2]), passes = atoi(argv[4]);
    size_t chunk = (size_t)atol(argv[3]);
    if (blobs < 1 || passes < 1 || chunk == 0 || chunk > blob) {
        fprintf(stderr, "disk_rread: bad arguments\n");
        return 2;
    }
    char *edir = nb_xasprintf("%s/eng", argv[1]);
    disk_options o;
    disk_options_init(&o);
    o.capacity = (uint64_t)(blobs + 4) * (blob + (64u << 10));
    o.initial_size = o.capacity;
    o.max_blob = blob;
    o.direct = DISK_DIRECT_OFF; /* buffered: the bytes stay in the page cache */
    disk_env *e;
    int rc = disk_open(&o, edir, &e);
    uint8_t *src = nb_xaligned_alloc(4096, blob), *dst = nb_xaligned_alloc(4096, chunk);
    for (size_t i = 0; i < blob; i++)
        src[i] = (uint8_t)(i * 7 + 3);
    for (int b = 0; b < blobs && !rc; b++) {
        src[0] = (uint8_t)b;
        rc = disk_put(e, (disk_id){1, (uint64_t)b}, src, blob);
    }
    if (!rc)
        rc = disk_close(e);
    if (!rc)
        rc = disk_open(&o, edir, &e);
    if (rc) {
        fprintf(stderr, "disk_rread: %s: %s\n", edir, nb_strerror(rc));
        return 1;
    }
    double c0 = cpu_us();
    uint64_t t0 = nb_mono_ns(), bytes = 0;
    for (int p = 0; p < passes && !rc; p++)
        for (int b = 0; b < blobs && !rc; b++)
            for (size_t off = 0; off < blob && !rc; off += chunk) {
                size_t got;
                rc = disk_read(e, (disk_id){1, (uint64_t)b}, off, chunk, dst, &got);
                bytes += got;
            }
    double s = (double)(nb_mono_ns() - t0) / 1e9, mib = (double)bytes / (1 << 20);
    double cpu = cpu_us() - c0;
    if (rc)
        fprintf(stderr, "disk_rread: read: %s\n", nb_strerror(rc));
    printf("rread chunk %zu: %.0f MiB/s, %.1f us CPU per MiB (%d blobs x %d passes)\n", chunk,
           mib / s, cpu / mib, blobs, passes);
    (void)disk_close(e);
    free(src);
    free(dst);
    free(edir);
    return rc ? 1 : 0;
}
