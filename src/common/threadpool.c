/* threadpool.c — fixed worker pool with a FIFO task queue (threadpool.h). */
#include "common/threadpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/mem.h"

typedef struct task {
    struct task *next;
    nb_task_fn fn;
    void *arg;
} task;

struct nb_pool {
    pthread_mutex_t mu;
    pthread_cond_t work; /* signalled when a task is queued or on stop */
    pthread_cond_t idle; /* signalled when `pending` drops to zero */
    task *head, *tail;
    size_t pending; /* queued + running */
    bool stopping;
    unsigned nthreads;
    pthread_t *threads;
    char name[11];
};

typedef struct worker_arg {
    nb_pool *pool;
    unsigned index;
} worker_arg;

static void *worker_main(void *p)
{
    worker_arg *wa = p;
    nb_pool *pool = wa->pool;
    char tname[16];
    snprintf(tname, sizeof tname, "%s-%u", pool->name, wa->index);
    pthread_setname_np(pthread_self(), tname);
    free(wa);

    pthread_mutex_lock(&pool->mu);
    for (;;) {
        while (!pool->head && !pool->stopping)
            pthread_cond_wait(&pool->work, &pool->mu);
        task *t = pool->head;
        if (!t)
            break; /* stopping and drained */
        pool->head = t->next;
        if (!pool->head)
            pool->tail = NULL;
        pthread_mutex_unlock(&pool->mu);
        t->fn(t->arg);
        free(t);
        pthread_mutex_lock(&pool->mu);
        if (--pool->pending == 0)
            pthread_cond_broadcast(&pool->idle);
    }
    pthread_mutex_unlock(&pool->mu);
    return NULL;
}

int nb_pool_new(unsigned nthreads, const char *name, nb_pool **out)
{
    *out = NULL;
    if (nthreads == 0)
        nthreads = 1;
    nb_pool *p = nb_xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->work, NULL);
    pthread_cond_init(&p->idle, NULL);
    snprintf(p->name, sizeof p->name, "%s", name ? name : "pool");
    p->threads = nb_xcalloc(nthreads, sizeof *p->threads);
    for (unsigned i = 0; i < nthreads; i++) {
        worker_arg *wa = nb_xmalloc(sizeof *wa);
        wa->pool = p;
        wa->index = i;
        int err = pthread_create(&p->threads[i], NULL, worker_main, wa);
        if (err) {
            free(wa);
            p->nthreads = i;
            nb_pool_free(p);
            return -err;
        }
        p->nthreads = i + 1;
    }
    *out = p;
    return 0;
}

void nb_pool_submit(nb_pool *p, nb_task_fn fn, void *arg)
{
    task *t = nb_xmalloc(sizeof *t);
    t->next = NULL;
    t->fn = fn;
    t->arg = arg;
    pthread_mutex_lock(&p->mu);
    if (p->tail)
        p->tail->next = t;
    else
        p->head = t;
    p->tail = t;
    p->pending++;
    pthread_cond_signal(&p->work);
    pthread_mutex_unlock(&p->mu);
}

void nb_pool_wait(nb_pool *p)
{
    pthread_mutex_lock(&p->mu);
    while (p->pending)
        pthread_cond_wait(&p->idle, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

size_t nb_pool_pending(nb_pool *p)
{
    pthread_mutex_lock(&p->mu);
    size_t n = p->pending;
    pthread_mutex_unlock(&p->mu);
    return n;
}

unsigned nb_pool_threads(const nb_pool *p)
{
    return p->nthreads;
}

void nb_pool_free(nb_pool *p)
{
    if (!p)
        return;
    pthread_mutex_lock(&p->mu);
    p->stopping = true;
    pthread_cond_broadcast(&p->work);
    pthread_mutex_unlock(&p->mu);
    for (unsigned i = 0; i < p->nthreads; i++)
        pthread_join(p->threads[i], NULL);
    free(p->threads);
    pthread_cond_destroy(&p->work);
    pthread_cond_destroy(&p->idle);
    pthread_mutex_destroy(&p->mu);
    free(p);
}
