/*
 * gw_int.h — private declarations of the gateway (gateway.c, gw_bucket.c,
 * gw_object.c, gw_multipart.c). The request pipeline and the answer
 * object are described in gateway.c.
 */
#ifndef NB_S3_GW_INT_H
#define NB_S3_GW_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include "common/threadpool.h"
#include "s3/s3.h"
#include "vfs/vfs.h"

/* Size of the pieces GET bodies are read in and copies are made with. */
#define GW_IO_BLOCK (256u << 10)

/* Workers that run the slow end of writes (commits that sync, copies),
 * so MHD's threads go on serving while they wait. */
#define GW_COMMIT_THREADS 16

/* A window of a large block-store file, mapped read-only (gw_get.c). */
#define GW_WINS_MAX 256
typedef struct gw_win {
    uint64_t dev, ino; /* the file */
    uint64_t start;    /* file offset of the mapping */
    uint8_t *p;
} gw_win;

struct s3_gw {
    vfs *ns;
    nb_pool *commits; /* GW_COMMIT_THREADS workers */
    char access_key[S3_ACCESS_KEY_MAX + 1];
    char secret_key[S3_SECRET_KEY_MAX + 1];
    char region[64];
    char *domain;
    s3_gw_invalidate_fn invalidate;
    void *invalidate_ctx;
    /* The lifecycle executor (gw_lifecycle.c). */
    pthread_t lc_thread;
    bool lc_running, lc_stop;
    pthread_mutex_t lc_mu;
    pthread_cond_t lc_cv;
    int64_t lc_interval_ns, lc_day_ns;
    /* Some bucket has (or had) versioning on: only then may an object
     * without a version id be a bucket's null version (gw_version.c). */
    atomic_bool any_versioned;
    /* GET bodies by the path that sent them (gw_get.c, /metrics). */
    _Atomic uint64_t get_paths[S3_GET_NPATHS];
    /* Windows of the block store's large files mapped for the gateway's
     * life (gw_get.c): entries [0, nwins) are set before nwins counts
     * them and never change; added under wins_mu. */
    pthread_mutex_t wins_mu;
    _Atomic size_t nwins;
    gw_win wins[GW_WINS_MAX];
};

/* What a handler answers: status, headers, and a body that is either a
 * buffer or a byte range of an open file streamed by MHD. */
typedef struct gw_answer {
    unsigned status; /* 0: 200 */
    s3_meta hdrs;    /* extra headers (owned; gw_hdr adds them, name and value in one block) */
    nb_buf body;     /* buffer body (XML) */
    vfs_file *file;  /* streaming body (owned) */
    uint64_t file_off, file_len;
    /* GET bodies (gw_get.c): instead of file, either the bytes read (small
     * objects, sent with the header in one write) or verified block-store
     * pieces sent without copying. file_len is the body's length. */
    uint8_t *raw;   /* owned */
    vfs_refs *refs; /* owned */
    /* A cold large answer streamed from the snapshot obj (owned), its
     * first pre_len bytes (from file_off) already read into raw. */
    vfs_s3_obj *obj;
    size_t pre_len;
    /* A small object's bytes where they lie in the snapshot inl_obj
     * (owned; inline in metadata), sent from there without a copy. */
    vfs_s3_obj *inl_obj;
    const uint8_t *inl;
    uint64_t length; /* Content-Length of a HEAD answer / of an empty stream */
    bool has_length; /* HEAD: report length without a body */
} gw_answer;

/* How a request's body is consumed. */
typedef enum gw_body_mode {
    GW_BODY_COLLECT, /* kept in r->body up to S3_XML_BODY_MAX (XML, tagging) */
    GW_BODY_PUT,     /* streamed into r->put (PutObject) or r->part (UploadPart) */
} gw_body_mode;

struct s3_gw_req {
    s3_gw *g;
    char *raw_uri;
    char *path;  /* raw path (owned copy) */
    char *query; /* raw query or NULL (points into path's allocation) */
    bool started;
    bool answered;
    /* An answer made on the first call (an error, or an admin answer) of a
     * request without a body: sent on the next call, once MHD has read the
     * whole request, so the connection stays open (MHD closes it after an
     * answer queued on the first call). */
    bool ready;
    bool seen; /* s3_gw_req_first_call */
    unsigned status;
    char request_id[17];

    /* Filled on the first call. */
    struct MHD_Connection *conn;
    s3_header *hdrs;
    size_t n_hdrs, cap_hdrs;
    s3_http_req req;
    s3_target t;
    s3_query q;
    s3_op op;
    s3_auth auth;
    bool head; /* HEAD request */
    /* GET/HEAD object by a caller that is neither root nor the bucket's
     * owner: the object's ACL decides (gw_object_readable). */
    bool acl_deferred;
    bool bucket_public; /* then: the bucket is public-read */

    /* Body. */
    gw_body_mode body_mode;
    int err; /* sticky error met while reading the body */
    nb_buf body;
    s3_chunked *chunked;
    s3_digest *md5, *sha256, *cks;
    s3_checksum checksum;
    bool has_md5;
    uint8_t content_md5[16];
    uint64_t expect_len; /* payload length */
    uint64_t got;        /* payload bytes seen */
    vfs_put *put;
    /* PutObject / UploadPart state. */
    vfs_objrec rec;   /* the record to store */
    uint32_t part_no; /* UploadPart number */
    vfs_part *part;   /* UploadPart: where the body goes */
    uint64_t upload_id;
    uint64_t old_ino; /* the object replaced, for the mount's caches */

    /* The last step, when it runs on a commit worker (the connection is
     * suspended meanwhile). */
    bool async_pending; /* handed to a worker */
    bool async_done;    /* the worker filled final_rc and ans */
    int final_rc;
    gw_answer ans;
    /* The block-store pieces of a GET answer sent with sendfile: held
     * until MHD is done with the connection's response. */
    vfs_refs *sent_refs;
};

/* ---- gateway.c ---- */
/* Adds a header to the answer (copied). */
void gw_hdr(gw_answer *a, const char *name, const char *value);
void gw_hdrf(gw_answer *a, const char *name, const char *fmt, ...) NB_PRINTF(3, 4);
/* Tells the mount about a change to bucket/key: every entry on the path
 * and the replaced inode old_ino (0: none). No-op without a mount. */
void gw_notify_key(s3_gw *g, const char *bucket, const char *key, uint64_t old_ino);
/* Maps a vfs error for an object operation to its S3 error. */
int gw_key_err(int rc);
/* 0 when bucket exists (a directory under the root that is not hidden),
 * NoSuchBucket otherwise; b (may be NULL) gets its record (zeroed when it
 * has none; free with vfs_bucket_free). */
int gw_bucket_check(s3_gw *g, const char *bucket, vfs_bucket *b) NB_MUST_CHECK;
/* The owner of everything (root), for listings. */
extern const s3_owner gw_owner_root;
/* The ETag (quoted, S3_ETAG_MAX + 2 bytes) of object ino with attributes
 * a: from its record when the record belongs to its current content,
 * otherwise the MD5 of its bytes, computed now and kept in the record.
 * rec (may be NULL) receives the decoded record (free with
 * vfs_objrec_free). */
int gw_object_etag(s3_gw *g, const vfs_attr *a, char *etag, vfs_objrec *rec) NB_MUST_CHECK;
/* The same from a record already read (enc.ptr NULL or len 0: none). */
int gw_object_etag_from(s3_gw *g, const vfs_attr *a, nb_slice enc, char *etag,
                        vfs_objrec *rec) NB_MUST_CHECK;
/* Stores rec on ino with etag_mtime_ns set to mtime_ns. */
int gw_objrec_store(s3_gw *g, uint64_t ino, vfs_objrec *rec, int64_t mtime_ns) NB_MUST_CHECK;
/* Copies every x-amz-meta-*, system header and tag into rec. */
int gw_rec_from_req(s3_gw_req *r, vfs_objrec *rec) NB_MUST_CHECK;
/* etag without its quotes into out (S3_ETAG_MAX + 2 bytes). */
void gw_unquote(const char *etag, char *out);
/* Copies [off, off+len) of the object with attributes sa into the put p
 * or else the part; md5 (may be NULL) receives the MD5 of the bytes. */
int gw_copy_bytes(s3_gw *g, const vfs_attr *sa, uint64_t off, uint64_t len, vfs_put *p,
                  vfs_part *part, uint8_t *md5) NB_MUST_CHECK;
/* Random upload id of 32 hex digits (out: 33 bytes). */
void gw_random_id(char *out);

/* Body streaming for PutObject / UploadPart (gw_object.c). */
/* Length, Content-MD5, checksum and digests for a body to stream. */
int gw_body_start(s3_gw_req *r) NB_MUST_CHECK;
int gw_put_start(s3_gw_req *r, const char *bucket, const char *key) NB_MUST_CHECK;
int gw_put_data(s3_gw_req *r, const uint8_t *p, size_t n) NB_MUST_CHECK;
/* Checks digests and the length; fills etag (quoted) and the checksum
 * value. Does not publish. */
int gw_put_verify(s3_gw_req *r, char *etag, char *cks_b64) NB_MUST_CHECK;

/* GET bodies (gw_get.c). */
/* Reads or references [off, off+len) of file ino for the answer: small
 * bodies are read into a->raw, larger ones become zero-copy pieces
 * (a->refs), and when the block store cannot give those the file is kept
 * open for the copying stream (a->file). */
int gw_get_body(s3_gw_req *r, gw_answer *a, uint64_t ino, uint64_t off, uint64_t len) NB_MUST_CHECK;
/* The same from an object read by vfs_s3_get (without opening it);
 * -EAGAIN when that snapshot cannot give the bytes (use gw_get_body). A
 * large answer over blocks not verified yet streams from the snapshot,
 * which the answer then owns (*o is set to NULL). */
int gw_get_obj_body(gw_answer *a, vfs_s3_obj **o, uint64_t off, uint64_t len) NB_MUST_CHECK;
/* The MHD response for a body set up by gw_get_body (NULL when MHD
 * refuses it; the answer keeps what it owned). */
struct MHD_Response *gw_body_response(s3_gw_req *r, gw_answer *a);
/* Unmaps the windows of mapped answers (MHD stopped: none in flight). */
void gw_get_wins_free(s3_gw *g);

/* Versioning (gw_version.c). */
/* "null" or 16 lowercase hex digits: the version ids the gateway makes. */
bool gw_version_id_ok(const char *id);
/* The versioning of a write to bucket (VFS_VER_*) and the new version's
 * id: 16 hex digits when enabled, "null" when suspended, "" when off. */
int gw_write_version(s3_gw *g, const char *bucket, int *mode, char id[17]) NB_MUST_CHECK;
/* Sets g->any_versioned from the bucket records (at start). */
int gw_versioning_scan(s3_gw *g) NB_MUST_CHECK;
/* The version id an object without one (rec_id NULL) answers with:
 * "null" in a bucket whose versioning is on or suspended (AWS), else
 * NULL (no x-amz-version-id). rec_id itself when set. */
const char *gw_answer_version(s3_gw *g, const char *bucket, const char *rec_id);
/* The object bucket/key at version_id (NULL: the current one) into attr.
 * NoSuchKey (with x-amz-delete-marker on a when the latest version is a
 * marker), NoSuchVersion, MethodNotAllowed for a delete marker (with its
 * headers), InvalidArgument for a malformed id. a may be NULL. */
int gw_version_resolve(s3_gw *g, const char *bucket, const char *key, const char *version_id,
                       vfs_attr *attr, gw_answer *a) NB_MUST_CHECK;
/* What a DELETE did, for its answer. */
typedef struct gw_deleted {
    bool has_version; /* version_id is to be reported */
    bool delete_marker;
    char version_id[VFS_VERSION_ID_MAX + 1];
} gw_deleted;
/* DeleteObject by version id, or making a delete marker in a versioned
 * bucket, or the plain delete; missing keys and versions are no error. */
int gw_delete_versioned(s3_gw *g, const char *bucket, const char *key, const char *version_id,
                        gw_deleted *out) NB_MUST_CHECK;
/* ---- gw_access.c: callers, owners, ACLs ---- */
/* An owner for the XML writers, with room for its strings. */
typedef struct gw_owner {
    s3_owner o;
    char id[S3_ACCESS_KEY_MAX + 1];
    char name[256];
} gw_owner;
/* s3_secret_fn over root's key and the users in metadata (ctx: s3_gw). */
int gw_secret_of(void *ctx, const char *access_key, char *secret, size_t cap);
/* The caller is root (the administrator). */
bool gw_is_root(const s3_gw_req *r);
/* The caller owns bucket b (a bucket without owner is root's). */
bool gw_bucket_mine(const s3_gw_req *r, const vfs_bucket *b);
/* The owner of bucket b / of access_key (NULL or root's key: root). */
void gw_bucket_owner(s3_gw *g, const vfs_bucket *b, gw_owner *o);
void gw_owner_of_key(s3_gw *g, const char *access_key, gw_owner *o);
/* After routing: may the caller do r->op on r's bucket? AccessDenied,
 * NoSuchBucket, or 0. */
int gw_access_check(s3_gw_req *r) NB_MUST_CHECK;
/* Get/PutBucketAcl (r->op says which). */
int gw_bucket_acl(s3_gw_req *r, gw_answer *a);
/* The object ACL a write asks for with x-amz-acl (VFS_ACL_NONE without):
 * private and the bucket-owner ones are kept as private, public-read as
 * itself; others are NotImplemented, unknown ones InvalidArgument. */
int gw_acl_of_write(const s3_http_req *req, uint8_t *out) NB_MUST_CHECK;
/* GET/HEAD object: with r->acl_deferred, turns a lookup error rc into
 * AccessDenied where the caller may not know the key exists (a bucket that
 * is not public-read), and with rec (the object found) decides by its ACL.
 * Returns rc, or 0 / AccessDenied. */
int gw_object_readable(const s3_gw_req *r, int rc, const vfs_objrec *rec) NB_MUST_CHECK;
/* Get/PutObjectAcl (r->op says which; with versionId). */
int gw_object_acl(s3_gw_req *r, gw_answer *a);

/* ---- gw_admin.c: the user administration endpoint ---- */
/* Requests under this path are the admin API, not S3 (it cannot be a
 * bucket: bucket names start with a letter or digit). */
#define GW_ADMIN_PREFIX "/_nebula/admin/"
bool gw_is_admin(const s3_gw_req *r);
/* Authenticates (root only) and serves an admin request into a. */
int gw_admin(s3_gw_req *r, const char *method, gw_answer *a) NB_MUST_CHECK;

/* The lifecycle executor (gw_lifecycle.c): a thread that runs
 * s3_gw_lifecycle_run every interval_s (<= 0: no thread); day_s is the
 * length of a lifecycle day (<= 0: 86400 s). */
int gw_lifecycle_start(s3_gw *g, double interval_s, double day_s) NB_MUST_CHECK;
void gw_lifecycle_stop(s3_gw *g);

/* ---- handlers: one per operation ---- */
int gw_put_bucket_versioning(s3_gw_req *r, gw_answer *a);
int gw_list_versions(s3_gw_req *r, gw_answer *a);
int gw_list_buckets(s3_gw_req *r, gw_answer *a);
int gw_create_bucket(s3_gw_req *r, gw_answer *a);
int gw_delete_bucket(s3_gw_req *r, gw_answer *a);
int gw_head_bucket(s3_gw_req *r, gw_answer *a);
int gw_bucket_location(s3_gw_req *r, gw_answer *a);
int gw_bucket_versioning(s3_gw_req *r, gw_answer *a);
int gw_list_objects(s3_gw_req *r, gw_answer *a);
/* Put/Get/Delete of the bucket's tagging, CORS and lifecycle documents
 * (validated, stored as sent in the bucket record). */
int gw_bucket_config(s3_gw_req *r, gw_answer *a);
/* OPTIONS preflight against the bucket's CORS rules. */
int gw_cors_preflight(s3_gw_req *r, gw_answer *a);
/* CORS headers for a request with an Origin that a rule allows. */
void gw_cors_actual(s3_gw_req *r, gw_answer *a);
int gw_put_object_start(s3_gw_req *r);
int gw_put_object(s3_gw_req *r, gw_answer *a);
int gw_get_object(s3_gw_req *r, gw_answer *a);
int gw_delete_object(s3_gw_req *r, gw_answer *a);
int gw_delete_objects(s3_gw_req *r, gw_answer *a);
int gw_copy_object(s3_gw_req *r, gw_answer *a);
int gw_object_tagging(s3_gw_req *r, gw_answer *a);
int gw_create_upload(s3_gw_req *r, gw_answer *a);
int gw_upload_part_start(s3_gw_req *r);
int gw_upload_part(s3_gw_req *r, gw_answer *a);
int gw_upload_part_copy(s3_gw_req *r, gw_answer *a);
int gw_complete_upload(s3_gw_req *r, gw_answer *a);
int gw_abort_upload(s3_gw_req *r, gw_answer *a);
int gw_list_parts(s3_gw_req *r, gw_answer *a);
int gw_list_uploads(s3_gw_req *r, gw_answer *a);

#endif
