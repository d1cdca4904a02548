/*
 * clock.h — time helpers. Durations and deadlines use the monotonic clock;
 * only timestamps that are stored or shown use wall-clock time.
 */
#ifndef NB_COMMON_CLOCK_H
#define NB_COMMON_CLOCK_H

#include <stdint.h>

#define NB_NS_PER_US  1000ull
#define NB_NS_PER_MS  1000000ull
#define NB_NS_PER_SEC 1000000000ull

/* Nanoseconds on CLOCK_MONOTONIC: never jumps, meaningless across boots. */
uint64_t nb_mono_ns(void);
/* Nanoseconds since the Unix epoch on CLOCK_REALTIME. */
uint64_t nb_wall_ns(void);
/* CPU time consumed by the whole process, in nanoseconds. */
uint64_t nb_cpu_ns(void);
/* Sleeps at least ns nanoseconds, resuming after signals. */
void nb_sleep_ns(uint64_t ns);
/* Formats a wall-clock time as ISO 8601 UTC with milliseconds
 * ("2026-11-21T07:30:01.123Z") into buf (at least 25 bytes). */
void nb_time_iso8601(uint64_t wall_ns, char *buf, unsigned long buflen);

#endif
