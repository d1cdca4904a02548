/* fuse_int.h — private state of the FUSE front end. */
#ifndef NB_FUSE_FUSE_INT_H
#define NB_FUSE_FUSE_INT_H

#define FUSE_USE_VERSION 312

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/types.h>

#include "fuse/fuse.h"

struct nbfuse {
    vfs *v;
    nbfuse_options opts;
    char *mountpoint;
    struct fuse_session *se;
    pthread_t loop_thread;
    bool loop_started;
    _Atomic bool loop_done;
    dev_t dev; /* of the mounted file system: names its connection in sysfs */
};

/* The low-level operation table (ops.c). */
extern const struct fuse_lowlevel_ops nbfuse__ops;

#endif
