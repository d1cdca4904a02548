/*
 * crc_bench — CRC-32C throughput of each implementation (crc32c.h) by
 * buffer size, in GB/s of thread CPU time (the machine is shared: CPU time
 * moves less than wall time). Usage: crc_bench [MIB_PER_CELL]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/crc32c.h"

typedef uint32_t (*crc_fn)(uint32_t, const void *, size_t);

static double cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static volatile uint32_t sink;

/* Best of 3 runs of `total` bytes in buffers of `size`. */
static double gbps(crc_fn f, const uint8_t *buf, size_t size, size_t total)
{
    double best = 0;
    for (int r = 0; r < 3; r++) {
        size_t reps = total / size ? total / size : 1;
        uint32_t c = 0;
        double t0 = cpu_s();
        for (size_t i = 0; i < reps; i++)
            c ^= f(c, buf, size);
        double t = cpu_s() - t0;
        sink = c;
        double g = (double)reps * (double)size / t / 1e9;
        if (g > best)
            best = g;
    }
    return best;
}

int main(int argc, char **argv)
{
    size_t total = (size_t)(argc > 1 ? atoi(argv[1]) : 256) << 20;
    static const size_t sizes[] = {64, 256, 1024, 4096, 16384, 65536, 1 << 20, 4 << 20, 64 << 20};
    size_t max = 64 << 20;
    uint8_t *buf = malloc(max);
    if (!buf)
        return 1;
    for (size_t i = 0; i < max; i++)
        buf[i] = (uint8_t)(i * 2654435761u >> 13);
    struct {
        const char *name;
        crc_fn f;
        int ok;
    } impl[] = {
        {"sw", nb_crc32c_sw, 1},
        {"hw3way", nb_crc32c_hw, nb_crc32c_has_hw()},
        {"clmul", nb_crc32c_clmul, nb_crc32c_has_clmul()},
        {"vclmul", nb_crc32c_vclmul, nb_crc32c_has_vclmul()},
        {"nb_crc32c", nb_crc32c, 1},
    };
    printf("%-10s", "bytes");
    for (size_t j = 0; j < sizeof impl / sizeof impl[0]; j++)
        printf(" %10s", impl[j].name);
    printf("   (GB/s of thread CPU, best of 3)\n");
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        printf("%-10zu", sizes[i]);
        for (size_t j = 0; j < sizeof impl / sizeof impl[0]; j++) {
            size_t t = impl[j].f == nb_crc32c_sw ? total / 8 : total;
            if (impl[j].ok)
                printf(" %10.2f", gbps(impl[j].f, buf, sizes[i], t));
            else
                printf(" %10s", "-");
        }
        printf("\n");
    }
    free(buf);
    return 0;
}
