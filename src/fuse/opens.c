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
            int rc = vfs_release(o->vf);
            if (rc)
                NB_WARN("release of inode %llu at unmount: %s", (unsigned long long)o->ino,
                        nb_strerror(rc));
            pthread_mutex_destroy(&o->append_mu);
            pthread_mutex_destroy(&o->st_mu);
            free(o);
        }
    }
}

/* Inserts vf as ino's open unless one exists; returns the one in use with
 * a new reference. *dup is set when vf was not used. */
static nbfuse_open *insert(nbfuse *f, uint64_t ino, vfs_file *vf, bool *dup)
{
    pthread_mutex_lock(&f->opens_mu);
    nbfuse_open *o = find_locked(f, ino);
    *dup = o != NULL;
    if (!o) {
        o = nb_xcalloc(1, sizeof *o);
        o->ino = ino;
        o->vf = vf;
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
    if (dup)
        (void)vfs_release(vf); /* opened by a racing thread first; ours wrote nothing */
    return o;
}

int nbfuse__open_get(nbfuse *f, uint64_t ino, nbfuse_open **out)
{
    *out = NULL;
    pthread_mutex_lock(&f->opens_mu);
    nbfuse_open *o = find_locked(f, ino);
    if (o)
        o->refs++;
    pthread_mutex_unlock(&f->opens_mu);
    if (o) {
        *out = o;
        return 0;
    }
    vfs_file *vf = NULL;
    int rc = vfs_file_open(f->v, NULL, ino, O_RDWR, &vf);
    if (rc == -EROFS)
        rc = vfs_file_open(f->v, NULL, ino, O_RDONLY, &vf);
    if (rc)
        return rc;
    *out = nbfuse__open_adopt(f, ino, vf);
    return 0;
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
    int rc = vfs_release(o->vf);
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

vfs_file *nbfuse__reader(nbfuse *f, nbfuse_handle *h)
{
    vfs_file *rd = atomic_load(&h->rd);
    if (rd)
        return rd;
    if (vfs_file_open(f->v, NULL, h->o->ino, O_RDONLY, &rd) != 0)
        return NULL;
    vfs_file *none = NULL;
    if (!atomic_compare_exchange_strong(&h->rd, &none, rd)) {
        (void)vfs_release(rd); /* another read of this handle opened one first */
        rd = none;
    }
    return rd;
}
