/*
 * nkv_bench.h — the engine table behind nkv_bench.
 *
 * nkv_bench runs db_bench's workloads through one of several key-value
 * engines. Each engine (engine_leveldb.c, engine_rocksdb.c, engine_nkv.c)
 * fills in an nkvb_engine table of plain functions over opaque handles, so
 * the benchmark loops in nkv_bench.c are the same code for every engine and
 * differ only in the library calls they end up in.
 *
 * Thread safety: open/close/destroy/compact are called from the main thread
 * only, with no benchmark thread running. put/del/get and the iterator
 * functions are called from any number of benchmark threads at once on the
 * same database handle; an iterator belongs to one thread.
 *
 * Errors: fallible functions return 0 on success and -1 on failure, after
 * writing a NUL-terminated message into err (errlen bytes). get returns 1
 * when the key was found and 0 when it was not.
 */
#ifndef NKV_BENCH_NKV_BENCH_H
#define NKV_BENCH_NKV_BENCH_H

#include <stdbool.h>
#include <stddef.h>

typedef enum nkvb_compression {
    NKVB_COMP_NONE = 0,
    NKVB_COMP_SNAPPY = 1,
    NKVB_COMP_ZSTD = 2,
} nkvb_compression;

/* The settings every engine is opened with; see the table at the top of
 * nkv_bench.c for how each engine maps them. A negative value means "the
 * engine's own default". */
typedef struct nkvb_settings {
    long long cache_size;        /* block cache bytes; <0 = engine default */
    int bloom_bits;              /* bloom filter bits per key; <0 = no filter */
    int block_size;              /* data block bytes (before compression) */
    long long write_buffer_size; /* memtable bytes before a flush */
    long long max_file_size;     /* SST target size; <0 = engine default */
    int open_files;              /* table cache capacity; <0 = engine default */
    nkvb_compression compression;
    bool create_if_missing; /* false with --use_existing_db=1 */
} nkvb_settings;

typedef struct nkvb_engine {
    const char *name; /* "leveldb", "rocksdb", "nkv" */
    /* A one-line description of the library and its version (static). */
    const char *(*describe)(void);
    /* Opens the database in dir; *out receives an owned handle freed with
     * close(). Fails when the engine cannot honour a setting (e.g. zstd on
     * a LevelDB without it). */
    int (*open)(const nkvb_settings *s, const char *dir, void **out, char *err, size_t errlen);
    void (*close)(void *db);
    /* Removes the database in dir; the database must not be open. */
    int (*destroy)(const nkvb_settings *s, const char *dir, char *err, size_t errlen);
    int (*put)(void *db, bool sync, const char *k, size_t klen, const char *v, size_t vlen,
               char *err, size_t errlen);
    int (*del)(void *db, bool sync, const char *k, size_t klen, char *err, size_t errlen);
    /* Looks k up; *vlen receives the value length when found. Returns 1, 0,
     * or -1 on error. The value is fetched but not kept. */
    int (*get)(void *db, const char *k, size_t klen, size_t *vlen, char *err, size_t errlen);
    /* Called by each benchmark thread before it starts timing; may be NULL. */
    void (*thread_init)(void);
    /* Compacts the whole key range; blocks until done. */
    int (*compact)(void *db, char *err, size_t errlen);
    /* Iterators over the latest state: iter_new returns an owned handle, freed
     * with iter_free(); key/value pointers are valid until the next move. */
    void *(*iter_new)(void *db);
    void (*iter_free)(void *it);
    void (*iter_seek)(void *it, const char *k, size_t klen);
    void (*iter_first)(void *it);
    void (*iter_last)(void *it);
    void (*iter_next)(void *it);
    void (*iter_prev)(void *it);
    bool (*iter_valid)(void *it);
    const char *(*iter_key)(void *it, size_t *klen);
    const char *(*iter_value)(void *it, size_t *vlen);
    /* 0, or -1 with a message when the iterator stopped on an error. */
    int (*iter_status)(void *it, char *err, size_t errlen);
} nkvb_engine;

/* Engine tables; each is defined only when its library was found at build
 * time (NKVB_HAVE_LEVELDB, NKVB_HAVE_ROCKSDB, NKVB_HAVE_NKV). */
extern const nkvb_engine nkvb_engine_leveldb;
extern const nkvb_engine nkvb_engine_rocksdb;
extern const nkvb_engine nkvb_engine_nkv;

#endif
