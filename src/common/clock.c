/* clock.c — time helpers (clock.h). */
#include "common/clock.h"

#include <errno.h>
#include <stdio.h>
#include <time.h>

static uint64_t read_clock(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (uint64_t)ts.tv_sec * NB_NS_PER_SEC + (uint64_t)ts.tv_nsec;
}

uint64_t nb_mono_ns(void)
{
    return read_clock(CLOCK_MONOTONIC);
}

uint64_t nb_wall_ns(void)
{
    return read_clock(CLOCK_REALTIME);
}

void nb_cond_init_mono(pthread_cond_t *cv)
{
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(cv, &ca);
    pthread_condattr_destroy(&ca);
}

struct timespec nb_mono_timespec(uint64_t mono_ns)
{
    return (struct timespec){(time_t)(mono_ns / NB_NS_PER_SEC), (long)(mono_ns % NB_NS_PER_SEC)};
}

struct timespec nb_mono_timespec_in(uint64_t ns)
{
    return nb_mono_timespec(nb_mono_ns() + ns);
}

uint64_t nb_cpu_ns(void)
{
    return read_clock(CLOCK_PROCESS_CPUTIME_ID);
}

void nb_sleep_ns(uint64_t ns)
{
    struct timespec req = {(time_t)(ns / NB_NS_PER_SEC), (long)(ns % NB_NS_PER_SEC)};
    while (nanosleep(&req, &req) != 0 && errno == EINTR) {
    }
}

void nb_time_iso8601(uint64_t wall_ns, char *buf, unsigned long buflen)
{
    time_t secs = (time_t)(wall_ns / NB_NS_PER_SEC);
    struct tm tm;
    gmtime_r(&secs, &tm);
    snprintf(buf, buflen, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
             (unsigned)((wall_ns % NB_NS_PER_SEC) / NB_NS_PER_MS));
}
