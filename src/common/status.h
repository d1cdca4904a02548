/*
 * status.h — the one error convention of NebulaStore.
 *
 * Every fallible function returns int: 0 is success, -errno is an operating
 * system failure (-ENOENT, -EIO, ...), and NebulaStore's own conditions are
 * the NB_E* codes below, in a reserved range far from any errno. Only the
 * edges translate: the S3 gateway to XML error codes, FUSE to errno, the CLI
 * to messages. See docs/errors.md.
 *
 * Thread safety: everything here is safe to call from any thread.
 */
#ifndef NB_COMMON_STATUS_H
#define NB_COMMON_STATUS_H

#include <stdio.h>
#include <stdlib.h>

/* XX(name, value, message). Values are fixed forever: they reach logs,
 * tools and tests. Add new codes at the end. */
#define NB_ERR_MAP(XX)                                                                             \
    XX(ENOTFOUND, -30001, "not found")                                                             \
    XX(EEXIST, -30002, "already exists")                                                           \
    XX(ECORRUPT, -30003, "data corruption detected")                                               \
    XX(ECHECKSUM, -30004, "checksum mismatch")                                                     \
    XX(ECONFLICT, -30005, "conflicting concurrent update")                                         \
    XX(EAGAIN, -30006, "resource temporarily unavailable, try again")                              \
    XX(EVERSION, -30007, "unsupported format version")                                             \
    XX(ELOCKED, -30008, "locked by another process")                                               \
    XX(EUSAGE, -30009, "invalid usage")                                                            \
    XX(ECLOSED, -30010, "handle is closed or shutting down")                                       \
    XX(ETOOBIG, -30011, "size limit exceeded")                                                     \
    XX(ENOSPACE, -30012, "no space left")                                                          \
    XX(EINTERNAL, -30013, "internal error")

enum {
#define NB__ERR_ENUM(name, value, msg) NB_##name = (value),
    NB_ERR_MAP(NB__ERR_ENUM)
#undef NB__ERR_ENUM
};

#define NB_OK 0

/* Marks functions whose result must be looked at. */
#define NB_MUST_CHECK                __attribute__((warn_unused_result))
#define NB_PRINTF(fmt_idx, args_idx) __attribute__((format(printf, fmt_idx, args_idx)))
#define NB_NORETURN                  __attribute__((noreturn))
#define NB_UNUSED(x)                 ((void)(x))
#define NB_LIKELY(x)                 __builtin_expect(!!(x), 1)
#define NB_UNLIKELY(x)               __builtin_expect(!!(x), 0)
#define NB_ARRAY_LEN(a)              (sizeof(a) / sizeof((a)[0]))

/* A human-readable message for rc (0, -errno or NB_E*). Never NULL; the
 * string is static. */
const char *nb_strerror(int rc);

/* The symbolic name of rc: "OK", "ENOENT", "NB_ECORRUPT", or "E?<n>". */
const char *nb_errname(int rc);

/* Logs "assertion failed" with file:line and aborts. Used by NB_ASSERT. */
NB_NORETURN void nb__assert_fail(const char *expr, const char *file, int line);

/* Logs a corruption report with the detection site and returns
 * NB_ECORRUPT, so callers write `return NB_CORRUPT("bad crc in %s", f);`. */
int nb__corrupt(const char *file, int line, const char *fmt, ...) NB_PRINTF(3, 4);

/* NB_ASSERT is always on: it guards invariants that protect data. Plain
 * assert() documents preconditions and vanishes in release builds. */
#define NB_ASSERT(expr)                                                                            \
    do {                                                                                           \
        if (NB_UNLIKELY(!(expr)))                                                                  \
            nb__assert_fail(#expr, __FILE__, __LINE__);                                            \
    } while (0)

#define NB_CORRUPT(...) nb__corrupt(__FILE__, __LINE__, __VA_ARGS__)

#endif
