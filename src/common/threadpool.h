/*
 * threadpool.h — a fixed pool of worker threads running submitted tasks in
 * FIFO order.
 *
 * Thread safety: nb_pool_submit and nb_pool_wait may be called from any
 * thread, including from inside a task (submit only: waiting from a task
 * would deadlock). nb_pool_free must not race with submit.
 */
#ifndef NB_COMMON_THREADPOOL_H
#define NB_COMMON_THREADPOOL_H

#include <stddef.h>

#include "common/status.h"

typedef struct nb_pool nb_pool;
typedef void (*nb_task_fn)(void *arg);

/* Starts nthreads workers (at least 1) named "<name>-<i>" (name is
 * borrowed; at most 10 characters are used). Returns 0 or -errno;
 * *out is NULL on failure. */
int nb_pool_new(unsigned nthreads, const char *name, nb_pool **out) NB_MUST_CHECK;
/* Queues fn(arg) to run on a worker. arg is passed through untouched. */
void nb_pool_submit(nb_pool *p, nb_task_fn fn, void *arg);
/* Blocks until every task submitted so far has finished. */
void nb_pool_wait(nb_pool *p);
/* Tasks queued or running (a snapshot). */
size_t nb_pool_pending(nb_pool *p);
unsigned nb_pool_threads(const nb_pool *p);
/* Runs every queued task, joins the workers and frees the pool. NULL is a
 * no-op. */
void nb_pool_free(nb_pool *p);

#endif
