/*
 * opens.c — one vfs handle per inode open under the mount.
 *
 * vfs buffers writes per handle and a handle reads only its own unpublished
 * writes. Under the mount that per-handle view is wrong: the kernel keeps
 * one page cache and one i_size per inode, writes dirty pages back through
 * whichever descriptor it picks, and expects every descriptor to see every
 * write at once (POSIX). Two vfs handles would let one publish an older
 * page over a newer one published by the other, and an O_APPEND descriptor
 * would not see another's buffered end of file. So all FUSE handles of an
 * inode share one vfs handle, opened read-write, counted here; its buffer
 * is published on every flush (close) and released with the last handle.
 * The shared handle is opened when something needs it (a write, a
 * truncate, a writable open): a file opened only for reading (a
 * DataLoader sample) costs one vfs open, its handle's reader.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>

#include "common/common.h"
#include "fuse/fuse_int.h"

static size_t bucket(uint64_t ino)
{
    return (size_t)((ino * 0x9e3779b97f4a7c15ull) >> 56) % NBFUSE_OPEN_BUCKETS;
}

static nbfuse_open *find_locked(nbfuse *f, uint64_t ino)
{
    for (nbfuse_open *o = f->opens[bucket(ino)]; o; o = o->next)
        if (o->ino == ino)
            return o;
    return NULL;
}

nbfuse_open *nbfuse__open_find(nbfuse *f, uint64_t ino)
{
    pthread_mutex_lock(&f->opens_mu);
    nbfuse_open *o = find_locked(f, ino);
    if (o)
        o->refs++;
    pthread_mutex_unlock(&f->opens_mu);
    return o;
}

void nbfuse__opens_close(nbfuse *f)
{
    for (size_t b = 0; b < NBFUSE_OPEN_BUCKETS; b++) {
        while (f->opens[b]) {
            nbfuse_open *o = f->opens[b];
            f->opens[b] = o->next;
            vfs_file *vf = atomic_load(&o->vf);
            int rc = vf ? vfs_release(vf) : 0;
            if (rc)
                NB_WARN("release of inode %llu at unmount: %s", (unsigned long long)o->ino,
                        nb_strerror(rc));
            pthread_mutex_destroy(&o->vf_mu);
            pthread_mutex_destroy(&o->append_mu);
            pthread_mutex_destroy(&o->st_mu);
            free(o);
        }
    }
}

/* Sets vf as o's shared handle unless it has one; false if it had. */
static bool adopt_vf(nbfuse_open *o, vfs_file *vf)
{
    pthread_mutex_lock(&o->vf_mu);
    vfs_file *none = NULL;
    bool set = atomic_compare_exchange_strong(&o->vf, &none, vf);
    pthread_mutex_unlock(&o->vf_mu);
    return set;
}

/* Inserts an open of ino (with vf as its handle, which may be NULL) unless
 * one exists; returns the one in use with a new reference. *dup is set
 * when vf was not used. */
static nbfuse_open *insert(nbfuse *f, uint64_t ino, vfs_file *vf, bool *dup)
{
    pthread_mutex_lock(&f->opens_mu);
    nbfuse_open *o = find_locked(f, ino);
    *dup = o != NULL;
    if (!o) {
        o = nb_xcalloc(1, sizeof *o);
        o->ino = ino;
        atomic_init(&o->vf, vf);
        pthread_mutex_init(&o->vf_mu, NULL);
        pthread_mutex_init(&o->append_mu, NULL);
        pthread_mutex_init(&o->st_mu, NULL);
        size_t b = bucket(ino);
        o->next = f->opens[b];
        f->opens[b] = o;
    }
    o->refs++;
    pthread_mutex_unlock(&f->opens_mu);
    return o;
}

nbfuse_open *nbfuse__open_adopt(nbfuse *f, uint64_t ino, vfs_file *vf)
{
    bool dup;
    nbfuse_open *o = insert(f, ino, vf, &dup);
    if (dup && !adopt_vf(o, vf))
        (void)vfs_release(vf); /* opened by a racing thread first; ours wrote nothing */
    return o;
}

int nbfuse__vf(nbfuse *f, nbfuse_open *o, vfs_file **out)
{
    *out = atomic_load(&o->vf);
    if (*out)
        return 0;
    pthread_mutex_lock(&o->vf_mu);
    int rc = 0;
    vfs_file *vf = atomic_load(&o->vf);
    if (!vf) {
        rc = vfs_file_open(f->v, NULL, o->ino, O_RDWR, &vf);
        if (rc == -EROFS)
            rc = vfs_file_open(f->v, NULL, o->ino, O_RDONLY, &vf);
        if (rc == 0)
            atomic_store(&o->vf, vf);
    }
    pthread_mutex_unlock(&o->vf_mu);
    *out = vf;
    return rc;
}

int nbfuse__open_get(nbfuse *f, uint64_t ino, bool rw, nbfuse_open **out)
{
    bool dup;
    *out = insert(f, ino, NULL, &dup);
    if (!rw)
        return 0;
    vfs_file *vf;
    int rc = nbfuse__vf(f, *out, &vf);
    if (rc) {
        (void)nbfuse__open_put(f, *out);
        *out = NULL;
    }
    return rc;
}

int nbfuse__open_put(nbfuse *f, nbfuse_open *o)
{
    pthread_mutex_lock(&f->opens_mu);
    bool last = --o->refs == 0;
    if (last) {
        nbfuse_open **pp = &f->opens[bucket(o->ino)];
        while (*pp != o)
            pp = &(*pp)->next;
        *pp = o->next;
    }
    pthread_mutex_unlock(&f->opens_mu);
    if (!last)
        return 0;
    vfs_file *vf = atomic_load(&o->vf);
    int rc = vf ? vfs_release(vf) : 0;
    pthread_mutex_destroy(&o->vf_mu);
    pthread_mutex_destroy(&o->append_mu);
    pthread_mutex_destroy(&o->st_mu);
    free(o);
    return rc;
}

void nbfuse__write_begin(nbfuse_open *o)
{
    pthread_mutex_lock(&o->st_mu);
    o->writes_in_flight++;
    pthread_mutex_unlock(&o->st_mu);
}

void nbfuse__write_end(nbfuse_open *o)
{
    pthread_mutex_lock(&o->st_mu);
    o->writes_in_flight--;
    o->write_gen++;
    pthread_mutex_unlock(&o->st_mu);
}

/* A write counted in write_gen had finished buffering before the publish
 * began, so the publish carries it; later writes leave the open unclean. */
uint64_t nbfuse__publish_begin(nbfuse_open *o)
{
    pthread_mutex_lock(&o->st_mu);
    uint64_t gen = o->write_gen;
    pthread_mutex_unlock(&o->st_mu);
    return gen;
}

void nbfuse__publish_end(nbfuse_open *o, uint64_t gen, int rc)
{
    if (rc)
        return;
    pthread_mutex_lock(&o->st_mu);
    if (gen > o->clean_gen)
        o->clean_gen = gen;
    pthread_mutex_unlock(&o->st_mu);
}

bool nbfuse__clean(nbfuse_open *o)
{
    pthread_mutex_lock(&o->st_mu);
    bool clean = o->writes_in_flight == 0 && o->write_gen == o->clean_gen;
    pthread_mutex_unlock(&o->st_mu);
    return clean;
}

vfs_file *nbfuse__reader(nbfuse *f, nbfuse_handle *h, int *rc)
{
    vfs_file *rd = atomic_load(&h->rd);
    if (rd)
        return rd;
    int r = vfs_file_open(f->v, NULL, h->o->ino, O_RDONLY, &rd);
    if (rc)
        *rc = r;
    if (r != 0)
        return NULL;
    vfs_file *none = NULL;
    if (!atomic_compare_exchange_strong(&h->rd, &none, rd)) {
        (void)vfs_release(rd); /* another read of this handle opened one first */
        rd = none;
    }
    return rd;
}
