/* server_int.h — private state of the server module. */
#ifndef NB_SERVER_SERVER_INT_H
#define NB_SERVER_SERVER_INT_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "s3/s3.h"
#include "server/server.h"

#define SERVER_KEY_MAX    128
#define SERVER_STATUS_MIN 100
#define SERVER_STATUS_MAX 599

/* One HTTP thread: an MHD daemon with one epoll loop, fed connections by
 * the server's accept thread (docs/http.md, "Threads and connections"). */
typedef struct server_worker {
    struct server *s;
    struct MHD_Daemon *httpd;
    _Atomic int64_t conns; /* handed to this daemon and not yet closed */
} server_worker;

struct server {
    server_options opts;
    char *data_dir;
    int lock_fd;
    int listen_fd;
    int port;
    server_worker *workers; /* opts.threads of them */
    unsigned nworkers;
    pthread_t acceptor;
    bool acceptor_started;
    _Atomic bool accepting; /* cleared to stop the accept thread */
    vfs *ns;                /* the namespace */
    nbfuse *mount;          /* NULL without --mount */
    s3_gw *gw;              /* the S3 gateway: every request but the admin endpoints */
    bool stopped;
    uint64_t started_mono_ns;
    char access_key[SERVER_KEY_MAX];
    char secret_key[SERVER_KEY_MAX];
    bool credentials_generated;

    /* Metrics, updated by HTTP threads. */
    _Atomic uint64_t requests_by_status[SERVER_STATUS_MAX - SERVER_STATUS_MIN + 1];
    _Atomic int64_t open_connections;
    _Atomic int64_t inflight_requests; /* request line seen, not completed */
};

/* Builds the Prometheus text for GET /metrics into *out (owned; free()). */
char *server__metrics_text(server *s, size_t *len);
/* Builds the JSON for GET /health. */
char *server__health_json(server *s, size_t *len);
/* Loads, takes from options or generates the root credentials. */
int server__credentials_init(server *s, char *err, size_t errlen);

#endif
