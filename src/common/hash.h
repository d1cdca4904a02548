/*
 * hash.h — a fast, well-distributed 64-bit hash for in-memory tables,
 * bloom filters and sharding (XXH3 from Debian's libxxhash). Not a
 * checksum for stored data: that is CRC32C. Thread-safe.
 */
#ifndef NB_COMMON_HASH_H
#define NB_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t nb_hash64(const void *data, size_t n, uint64_t seed);

#endif
