/*
 * common.h — the shared vocabulary of every NebulaStore module: status
 * codes, allocation, logging, time, checksums, hashing, buffers and
 * encodings, a thread pool, configuration and file-system helpers.
 * Modules may include this or just the piece they use.
 */
#ifndef NB_COMMON_COMMON_H
#define NB_COMMON_COMMON_H

#include "common/buf.h"
#include "common/clock.h"
#include "common/coding.h"
#include "common/config.h"
#include "common/crc32c.h"
#include "common/fsutil.h"
#include "common/hash.h"
#include "common/log.h"
#include "common/mem.h"
#include "common/status.h"
#include "common/threadpool.h"

#endif
