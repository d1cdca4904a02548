/*
 * mount.c — mount lifecycle: reclaim a dead mount point, mount, serve on a
 * pool of worker threads (and a watchdog), invalidate kernel
 * caches, and unmount.
 *
 * Unmounting: a lazy unmount (MNT_DETACH) of an idle mount destroys the
 * superblock at once, which aborts the FUSE connection, so the loop's
 * read of /dev/fuse fails with ENODEV and the loop ends by itself — the
 * same path an external `fusermount3 -u` takes. When programs still hold
 * files open the superblock lives on; after a grace period we abort the
 * connection through /sys/fs/fuse/connections/<dev>/abort, which fails
 * their pending calls with ENOTCONN instead of hanging shutdown.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/common.h"
#include "fuse/fuse_int.h"

#define UNMOUNT_GRACE_NS (5 * NB_NS_PER_SEC)

void nbfuse_options_init(nbfuse_options *o)
{
    memset(o, 0, sizeof *o);
    /* Off: with it the kernel sends FLUSH at every close, even of a
     * read-only descriptor, and a SETATTR (its own mtime) before an
     * unlink or after a write; see docs/fuse.md "Write-back cache". */
    o->writeback_cache = false;
    o->entry_timeout = 60.0;
    o->attr_timeout = 60.0;
    o->max_threads = 16;
}

/* Lazy unmount: umount2 as root, fusermount3 otherwise. */
static int detach(const char *mountpoint)
{
    if (geteuid() == 0)
        return umount2(mountpoint, MNT_DETACH) == 0 ? 0 : -errno;
    pid_t pid = fork();
    if (pid < 0)
        return -errno;
    if (pid == 0) {
        execlp("fusermount3", "fusermount3", "-u", "-z", "-q", mountpoint, (char *)NULL);
        _exit(127);
    }
    int status;
    if (waitpid(pid, &status, 0) < 0)
        return -errno;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

/* Aborts the connection through the FUSE control file system, mounting
 * it first if nobody has (as root only). */
static void abort_connection(dev_t dev)
{
    char path[64];
    snprintf(path, sizeof path, "/sys/fs/fuse/connections/%u/abort", minor(dev));
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT && geteuid() == 0 &&
        mount("fusectl", "/sys/fs/fuse/connections", "fusectl", 0, NULL) == 0)
        fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        NB_WARN("cannot abort FUSE connection %u: %s", minor(dev), strerror(errno));
        return;
    }
    if (write(fd, "1", 1) != 1)
        NB_WARN("cannot abort FUSE connection %u: %s", minor(dev), strerror(errno));
    close(fd);
}

/* ---- Worker threads ------------------------------------------------------------------------
 *
 * Our own loop instead of fuse_session_loop_mt. libfuse's keeps a thread
 * idle at all times (it starts one whenever the last idle one takes a
 * request), so every request wakes a sleeping thread; measured on the
 * 2-core machine (DataLoader, 20,000 samples, 3 alternating rounds on one
 * server each), server CPU per sample was 106-112 us with 2 threads and
 * 147-167 us with 4, 8 or 16, at 20-40 % more samples/s with 2. But a
 * fixed 2 can deadlock: a preload's store waits on a page lock held by a
 * READ that only a free worker can answer. So `base` workers (the CPU
 * count, at least 2) serve; a watchdog adds one, up to max_threads, when
 * every worker has been busy for WATCH_NS, and such an extra worker ends
 * once it finishes a request while another worker is idle. The watchdog
 * ticks every WATCH_NS only while the mount is in use: after PARK_TICKS
 * ticks with a worker idle it parks, and the worker that takes the last
 * idle slot wakes it (an idle server is silent). */
#define WATCH_NS   (5 * NB_NS_PER_MS)
#define PARK_TICKS 200 /* 1 s */

typedef struct pool {
    nbfuse *f;
    pthread_mutex_t mu;
    pthread_cond_t wake; /* the watchdog's: the last worker ended, or no worker is idle */
    unsigned workers, idle, base, max;
    uint64_t busy_since; /* when the last idle worker took a request; 0: one is idle */
    bool parked;         /* the watchdog waits for wake without a timeout */
    bool ending;
    int error;
} pool;

static void *worker_main(void *arg);

static bool pool_spawn(pool *p)
{
    pthread_t t;
    pthread_attr_t at;
    pthread_attr_init(&at);
    pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
    int e = pthread_create(&t, &at, worker_main, p);
    pthread_attr_destroy(&at);
    if (e) {
        NB_WARN("cannot start a FUSE worker: %s", strerror(e));
        return false;
    }
    p->workers++;
    return true;
}

static void *worker_main(void *arg)
{
    pool *p = arg;
    struct fuse_session *se = p->f->se;
    sigset_t sigs; /* signals go to the server's main thread */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    sigaddset(&sigs, SIGQUIT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    struct fuse_buf buf;
    memset(&buf, 0, sizeof buf);
    pthread_mutex_lock(&p->mu);
    for (;;) {
        p->idle++;
        p->busy_since = 0;
        pthread_mutex_unlock(&p->mu);
        int res = fuse_session_exited(se) ? 0 : fuse_session_receive_buf(se, &buf);
        pthread_mutex_lock(&p->mu);
        if (--p->idle == 0) {
            p->busy_since = nb_mono_ns();
            if (p->parked) {
                p->parked = false;
                pthread_cond_signal(&p->wake);
            }
        }
        if (res == -EINTR || res == -EAGAIN)
            continue;
        if (res <= 0) {
            if (res < 0 && !p->error)
                p->error = res;
            p->ending = true;
            fuse_session_exit(se);
            break;
        }
        pthread_mutex_unlock(&p->mu);
        fuse_session_process_buf(se, &buf);
        pthread_mutex_lock(&p->mu);
        if (p->workers > p->base && p->idle > 0)
            break; /* an extra worker, no longer needed */
    }
    if (--p->workers == 0)
        pthread_cond_signal(&p->wake);
    pthread_mutex_unlock(&p->mu);
    free(buf.mem);
    return NULL;
}

static void *loop_main(void *arg)
{
    nbfuse *f = arg;
    pool p;
    memset(&p, 0, sizeof p);
    p.f = f;
    pthread_mutex_init(&p.mu, NULL);
    nb_cond_init_mono(&p.wake);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    p.max = f->opts.max_threads ? f->opts.max_threads : 16;
    p.base = cpus > 2 ? (unsigned)cpus : 2;
    if (p.base > p.max)
        p.base = p.max;
    pthread_mutex_lock(&p.mu);
    for (unsigned i = 0; i < p.base; i++)
        if (!pool_spawn(&p) && p.workers == 0) {
            p.error = -EAGAIN;
            pthread_mutex_unlock(&p.mu);
            goto out;
        }
    /* The watchdog: every worker busy for WATCH_NS means one may be
     * waiting on a request only another worker can answer. */
    unsigned quiet = 0; /* ticks in a row with a worker idle */
    while (p.workers > 0) {
        if (p.parked) {
            pthread_cond_wait(&p.wake, &p.mu);
            quiet = 0;
            continue; /* a worker unparked us (or the last one ended) */
        }
        struct timespec ts = nb_mono_timespec_in(WATCH_NS);
        pthread_cond_timedwait(&p.wake, &p.mu, &ts);
        if (!p.ending && p.idle == 0 && p.busy_since && p.workers < p.max &&
            nb_mono_ns() - p.busy_since >= WATCH_NS) {
            if (pool_spawn(&p))
                p.busy_since = nb_mono_ns(); /* give it time to take a request */
        }
        if (p.idle == 0) {
            quiet = 0;
        } else if (++quiet >= PARK_TICKS) {
            p.parked = true;
        }
    }
    pthread_mutex_unlock(&p.mu);
out:
    pthread_cond_destroy(&p.wake);
    pthread_mutex_destroy(&p.mu);
    int rc = p.error;
    if (rc != 0 && rc != -ENODEV)
        NB_WARN("FUSE loop on %s ended: %s", f->mountpoint, strerror(-rc));
    atomic_store(&f->loop_done, true);
    return NULL;
}

/* A mount point whose server died answers ENOTCONN: detach it. */
static int reclaim(const char *mp, char *err, size_t errlen)
{
    struct stat st;
    if (stat(mp, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            snprintf(err, errlen, "mount point %s is not a directory", mp);
            return -ENOTDIR;
        }
        return 0;
    }
    int rc = -errno;
    if (rc == -ENOTCONN) {
        rc = detach(mp);
        if (rc == 0) {
            NB_WARN("reclaimed %s, left mounted by a server that stopped without unmounting", mp);
            return 0;
        }
    }
    snprintf(err, errlen, "mount point %s: %s", mp, nb_strerror(rc));
    return rc;
}

int nbfuse_mount(vfs *v, const nbfuse_options *o, nbfuse **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc = reclaim(o->mountpoint, err, errlen);
    if (rc)
        return rc;
    nbfuse *f = nb_xcalloc(1, sizeof *f);
    f->v = v;
    f->opts = *o;
    f->mountpoint = nb_xstrdup(o->mountpoint);
    pthread_mutex_init(&f->opens_mu, NULL);

    char opts[256];
    snprintf(opts, sizeof opts, "fsname=nebula,subtype=nebula%s%s%s",
             o->allow_other ? ",allow_other" : "",
             o->default_permissions ? ",default_permissions" : "", o->read_only ? ",ro" : "");
    char *argv[] = {"nebula", "-o", opts, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(3, argv);
    f->se = fuse_session_new(&args, &nbfuse__ops, sizeof nbfuse__ops, f);
    fuse_opt_free_args(&args); /* libfuse may have grown the list */
    if (!f->se) {
        snprintf(err, errlen, "cannot start a FUSE session (is /dev/fuse there?)");
        rc = NB_EINTERNAL;
        goto fail;
    }
    if (fuse_session_mount(f->se, f->mountpoint) != 0) {
        snprintf(err, errlen, "cannot mount on %s (see the log; is fuse3 installed?)",
                 f->mountpoint);
        rc = -EIO;
        goto fail;
    }
    rc = nbfuse__io_install(f);
    if (rc != 0) {
        fuse_session_unmount(f->se);
        snprintf(err, errlen, "cannot set up the FUSE connection's I/O");
        rc = NB_EINTERNAL;
        goto fail;
    }
    int perr = pthread_create(&f->loop_thread, NULL, loop_main, f);
    if (perr) {
        fuse_session_unmount(f->se);
        snprintf(err, errlen, "cannot start FUSE threads: %s", strerror(perr));
        rc = -perr;
        goto fail;
    }
    f->loop_started = true;
    struct stat st;
    if (stat(f->mountpoint, &st) == 0)
        f->dev = st.st_dev;
    *out = f;
    return 0;
fail:
    if (f->se)
        fuse_session_destroy(f->se);
    pthread_mutex_destroy(&f->opens_mu);
    free(f->mountpoint);
    free(f);
    return rc;
}

bool nbfuse_active(nbfuse *f)
{
    return f && !atomic_load(&f->loop_done);
}

int nbfuse_invalidate_entry(nbfuse *f, uint64_t parent, const char *name)
{
    if (!nbfuse_active(f))
        return 0;
    /* Before the kernel forgets: a preload that read the old contents
     * then sees the change and drops what it stored (ops.c). */
    atomic_fetch_add(&f->change_gen, 1);
    return fuse_lowlevel_notify_inval_entry(f->se, parent, name, strlen(name));
}

int nbfuse_invalidate_inode(nbfuse *f, uint64_t ino)
{
    if (!nbfuse_active(f))
        return 0;
    atomic_fetch_add(&f->change_gen, 1);
    return fuse_lowlevel_notify_inval_inode(f->se, ino, 0, 0);
}

void nbfuse_unmount(nbfuse *f)
{
    if (!f)
        return;
    if (f->loop_started) {
        if (!atomic_load(&f->loop_done)) {
            int rc = detach(f->mountpoint);
            if (rc)
                NB_WARN("unmount of %s: %s", f->mountpoint, nb_strerror(rc));
        }
        uint64_t deadline = nb_mono_ns() + UNMOUNT_GRACE_NS;
        while (!atomic_load(&f->loop_done) && nb_mono_ns() < deadline)
            nb_sleep_ns(10 * NB_NS_PER_MS);
        if (!atomic_load(&f->loop_done)) {
            NB_WARN("%s is still busy; cutting off the programs that hold files open there",
                    f->mountpoint);
            abort_connection(f->dev);
        }
        pthread_join(f->loop_thread, NULL);
    }
    /* Closes /dev/fuse; the mount is already gone, so nothing more is unmounted. */
    fuse_session_unmount(f->se);
    fuse_session_destroy(f->se);
    nbfuse__opens_close(f);
    pthread_mutex_destroy(&f->opens_mu);
    NB_INFO("unmounted %s", f->mountpoint);
    free(f->mountpoint);
    free(f);
}
