/*
 * memfs.h — an in-memory file system behind the disk engine's I/O table
 * that models what survives a power loss.
 *
 * Every file keeps two images: what readers see now, and what is durable.
 * Writes and size changes since the last sync are kept as a list of
 * pending operations; sync makes them durable. Directory entries
 * (creations, renames, unlinks) become durable only at sync_dir.
 *
 * memfs_arm(fs, n) makes the n-th I/O operation from now, and every one
 * after it, fail with -EIO: the power is off. memfs_power_cut() then builds
 * the state after reboot from the durable images plus a random selection
 * of the pending writes, sector by sector, tearing one sector in the
 * middle: either a prefix of the pending writes (in order) with the last
 * one torn, or any subset of their 512-byte sectors (the disk reordered
 * them). Single-threaded use only (one mutex guards it anyway).
 */
#ifndef NB_TESTS_DISK_MEMFS_H
#define NB_TESTS_DISK_MEMFS_H

#include <stdint.h>

#include "disk/disk_io.h"

typedef struct memfs memfs;

memfs *memfs_new(uint64_t seed);
void memfs_free(memfs *fs);
/* The table to put in disk_options.io, with fs as io_ctx. */
extern const disk_io_ops memfs_ops;
/* Fails the n-th operation from now (1 = the next) and all later ones;
 * 0 disarms. */
void memfs_arm(memfs *fs, uint64_t n);
/* Operations performed so far. */
uint64_t memfs_ops_done(const memfs *fs);
/* Loses power: keeps durable data plus a random part of pending writes,
 * closes every descriptor, and powers on again (disarmed). */
void memfs_power_cut(memfs *fs);
/* The same, keeping nothing but what was synced: the worst case, for cuts
 * at each step of an operation whose order of syncs is the point. */
void memfs_power_cut_sync_only(memfs *fs);
/* The same, keeping every write that was made (file contents; directory
 * entries still need sync_dir): the disk wrote everything in order, and a
 * write that never found its record stays on it. */
void memfs_power_cut_keep_all(memfs *fs);
/* Flips the byte at off (modulo the size) of path, now and in its durable
 * image (bit rot, or a torn write the file system did not notice).
 * Returns 0 or -ENOENT (missing or empty). */
int memfs_corrupt(memfs *fs, const char *path, uint64_t off);

#endif
