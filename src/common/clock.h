/*
 * clock.h — time helpers. Durations and deadlines use the monotonic clock;
 * only timestamps that are stored or shown use wall-clock time.
 */
#ifndef NB_COMMON_CLOCK_H
#define NB_COMMON_CLOCK_H

#include <pthread.h>
#include <stdint.h>
#include <time.h>

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
/* Initializes a condition variable whose timed waits run on CLOCK_MONOTONIC,
 * so a step of the wall clock neither cuts a wait short nor stretches it.
 * Timed waits on it take nb_mono_timespec() / nb_mono_timespec_in(). */
void nb_cond_init_mono(pthread_cond_t *cv);
/* An nb_mono_ns() time as a CLOCK_MONOTONIC timespec (an absolute deadline
 * for pthread_cond_timedwait on a condvar from nb_cond_init_mono). */
struct timespec nb_mono_timespec(uint64_t mono_ns);
/* The CLOCK_MONOTONIC timespec ns nanoseconds from now. */
struct timespec nb_mono_timespec_in(uint64_t ns);
/* Formats a wall-clock time as ISO 8601 UTC with milliseconds
 * ("2026-11-21T07:30:01.123Z") into buf (at least 25 bytes). */
void nb_time_iso8601(uint64_t wall_ns, char *buf, unsigned long buflen);

#endif
