/*
 * server.c — data directory lock, HTTP listener and graceful shutdown.
 *
 * HTTP runs on libmicrohttpd (docs/http.md says why this library): one
 * MHD daemon per HTTP thread, each with its own epoll loop, and one accept
 * thread of ours that hands every new connection to the daemon with the
 * fewest open ones. MHD's own thread pool lets whichever thread wakes
 * first accept up to 10 connections in a row, so two clients that connect
 * together usually share one thread while the other idles. We bind the
 * listening socket ourselves so that a busy port is reported with its
 * errno, and count requests "in flight" from the moment their request line
 * arrives (URI log callback) until MHD reports them complete: graceful
 * shutdown waits for exactly these, not for idle keep-alive connections.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/common.h"
#include "server/server_int.h"

static void count_status(server *s, unsigned status)
{
    if (status >= SERVER_STATUS_MIN && status <= SERVER_STATUS_MAX)
        atomic_fetch_add_explicit(&s->requests_by_status[status - SERVER_STATUS_MIN], 1,
                                  memory_order_relaxed);
}

static enum MHD_Result respond(server *s, struct MHD_Connection *c, unsigned status,
                               const char *content_type, char *body, size_t len)
{
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(r, MHD_HTTP_HEADER_SERVER, "NebulaStore/" NB_VERSION);
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    count_status(s, status);
    return ret;
}

static enum MHD_Result respond_text(server *s, struct MHD_Connection *c, unsigned status,
                                    const char *msg)
{
    return respond(s, c, status, "text/plain; charset=utf-8", nb_xstrdup(msg), strlen(msg));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req_cls)
{
    server *s = cls;
    NB_UNUSED(version);
    bool admin = strcmp(url, "/health") == 0 || strcmp(url, "/metrics") == 0;
    /* Everything but the admin endpoints is S3. */
    if (!admin && *req_cls)
        return (enum MHD_Result)s3_gw_handle(*req_cls, c, method, upload, upload_size);
    /* Admin endpoints take no body; anything sent is refused rather than
     * buffered (unread: MHD closes the connection). */
    if (*upload_size != 0 || MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Transfer-Encoding"))
        return respond_text(s, c, MHD_HTTP_CONTENT_TOO_LARGE, "request body not accepted\n");
    const char *cl = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Length");
    if (cl && strspn(cl, "0") != strlen(cl))
        return respond_text(s, c, MHD_HTTP_CONTENT_TOO_LARGE, "request body not accepted\n");
    /* Answered on the second call, once MHD has read the request: an
     * answer queued on the first one closes the connection. */
    if (*req_cls && s3_gw_req_first_call(*req_cls))
        return MHD_YES;
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    if (admin) {
        if (!get)
            return respond_text(s, c, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n");
        size_t len;
        if (url[1] == 'h') {
            char *body = server__health_json(s, &len);
            return respond(s, c, MHD_HTTP_OK, "application/json", body, len);
        }
        char *body = server__metrics_text(s, &len);
        return respond(s, c, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len);
    }
    return respond_text(s, c, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* Called when the request line has been parsed: the request is in flight.
 * uri is the request-target as sent (the access handler gets it decoded):
 * the gateway's request context keeps it for signature checks. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *c)
{
    server *s = cls;
    NB_UNUSED(c);
    atomic_fetch_add(&s->inflight_requests, 1);
    return s->gw ? s3_gw_req_new(s->gw, uri) : NULL;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    server *s = cls;
    NB_UNUSED(c);
    unsigned status = s3_gw_req_done(*req_cls, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
    *req_cls = NULL;
    if (status)
        count_status(s, status);
    atomic_fetch_sub(&s->inflight_requests, 1);
}

static void on_connection(void *cls, struct MHD_Connection *c, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
    server_worker *w = cls;
    NB_UNUSED(c);
    NB_UNUSED(socket_ctx);
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        atomic_fetch_add(&w->s->open_connections, 1);
    } else {
        atomic_fetch_sub(&w->s->open_connections, 1);
        atomic_fetch_sub(&w->conns, 1); /* counted when the accept thread handed it over */
    }
}

/* The accept thread: every new connection goes to the HTTP thread with
 * the fewest, so concurrent clients spread over the cores. Beyond
 * --max-connections a connection is closed at once (as MHD does at its
 * limit). server_shutdown stops it with shutdown(2) on the socket. */
static void *accept_main(void *arg)
{
    server *s = arg;
    pthread_setname_np(pthread_self(), "http-accept");
    while (atomic_load(&s->accepting)) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof ss;
        int fd = accept4(s->listen_fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                nb_sleep_ns(10 * NB_NS_PER_MS); /* out of descriptors: let some close */
            else if (errno != EINTR && errno != ECONNABORTED && errno != EAGAIN &&
                     errno != EPROTO && errno != EPERM)
                break; /* EINVAL after shutdown(2), or the socket is gone */
            continue;
        }
        server_worker *best = &s->workers[0];
        int64_t total = 0;
        for (unsigned i = 0; i < s->nworkers; i++) {
            int64_t n = atomic_load(&s->workers[i].conns);
            total += n;
            if (n < atomic_load(&best->conns))
                best = &s->workers[i];
        }
        if (total >= (int64_t)s->opts.max_connections) {
            close(fd);
            continue;
        }
        atomic_fetch_add(&best->conns, 1);
        /* MHD owns (and on failure closes) the socket from here. */
        if (MHD_add_connection(best->httpd, fd, (struct sockaddr *)&ss, sl) != MHD_YES)
            atomic_fetch_sub(&best->conns, 1);
    }
    return NULL;
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    NB_UNUSED(cls);
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    size_t n = strlen(msg);
    while (n && msg[n - 1] == '\n')
        msg[--n] = 0;
    NB_DEBUG("httpd: %s", msg);
}

static int listen_on(server *s, char *err, size_t errlen)
{
    char port[16];
    snprintf(port, sizeof port, "%d", s->opts.port);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    int gai = getaddrinfo(s->opts.listen_host, port, &hints, &res);
    if (gai != 0) {
        snprintf(err, errlen, "cannot resolve listen address '%s': %s", s->opts.listen_host,
                 gai_strerror(gai));
        return NB_EUSAGE;
    }
    int rc = 0;
    int fd = socket(res->ai_family, res->ai_socktype | SOCK_CLOEXEC, res->ai_protocol);
    if (fd < 0) {
        rc = -errno;
    } else {
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, res->ai_addr, res->ai_addrlen) != 0 || listen(fd, 1024) != 0)
            rc = -errno;
    }
    freeaddrinfo(res);
    if (rc) {
        if (fd >= 0)
            close(fd);
        snprintf(err, errlen, "cannot listen on %s:%d: %s", s->opts.listen_host, s->opts.port,
                 nb_strerror(rc));
        return rc;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    s->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    s->listen_fd = fd;
    return 0;
}

static int lock_data_dir(server *s, char *err, size_t errlen)
{
    int rc = nb_mkdir_p(s->data_dir, 0755);
    if (rc) {
        snprintf(err, errlen, "cannot create data directory %s: %s", s->data_dir, nb_strerror(rc));
        return rc;
    }
    if (access(s->data_dir, W_OK | X_OK) != 0) {
        rc = -errno;
        snprintf(err, errlen, "data directory %s is not writable: %s", s->data_dir,
                 nb_strerror(rc));
        return rc;
    }
    char *lock = nb_xasprintf("%s/LOCK", s->data_dir);
    pid_t holder = 0;
    rc = nb_lock_file(lock, &s->lock_fd, &holder);
    if (rc == NB_ELOCKED)
        snprintf(err, errlen, "data directory %s is in use by another nebula server (pid %d)",
                 s->data_dir, (int)holder);
    else if (rc)
        snprintf(err, errlen, "cannot lock %s: %s", lock, nb_strerror(rc));
    free(lock);
    return rc;
}

/* The gateway changed the namespace: the kernel's caches for the mount
 * must forget the old entries and contents. */
static void invalidate_mount(void *ctx, uint64_t parent, const char *name, uint64_t ino)
{
    server *s = ctx;
    if (name)
        (void)nbfuse_invalidate_entry(s->mount, parent, name);
    if (ino)
        (void)nbfuse_invalidate_inode(s->mount, ino);
}

static int open_namespace(server *s, char *err, size_t errlen)
{
    vfs_options vo;
    vfs_options_init(&vo);
    vo.data_dir = s->data_dir;
    vo.meta_engine = s->opts.meta_engine;
    vo.cache_bytes = s->opts.cache_bytes;
    vo.kv_cache_bytes = s->opts.meta_cache_bytes;
    vo.block_store = s->opts.block_store ? s->opts.block_store : "disk";
    vo.disk_size = s->opts.disk_size;
    vo.disk_reserve = s->opts.disk_reserve;
    vo.disk_files = s->opts.disk_files;
    int rc = vfs_open(&vo, &s->ns);
    if (rc) {
        snprintf(err, errlen, "cannot open the namespace in %s: %s", s->data_dir, nb_strerror(rc));
        return rc;
    }
    if (s->opts.mount.mountpoint) {
        char merr[400] = "";
        rc = nbfuse_mount(s->ns, &s->opts.mount, &s->mount, merr, sizeof merr);
        if (rc) {
            snprintf(err, errlen, "%s", merr[0] ? merr : nb_strerror(rc));
            return rc;
        }
    }
    s3_gw_options go = {
        .ns = s->ns,
        .access_key = s->access_key,
        .secret_key = s->secret_key,
        .invalidate = s->mount ? invalidate_mount : NULL,
        .invalidate_ctx = s,
        .lifecycle_interval_s = s->opts.lifecycle_interval_s,
        .lifecycle_day_s = s->opts.lifecycle_day_s,
    };
    rc = s3_gw_new(&go, &s->gw);
    if (rc)
        snprintf(err, errlen, "cannot start the S3 gateway: %s", nb_strerror(rc));
    return rc;
}

int server_open(const server_options *o, server **out, char *err, size_t errlen)
{
    *out = NULL;
    server *s = nb_xcalloc(1, sizeof *s);
    s->opts = *o;
    s->data_dir = nb_xstrdup(o->data_dir);
    s->lock_fd = -1;
    s->listen_fd = -1;
    s->started_mono_ns = nb_mono_ns();

    int rc = lock_data_dir(s, err, errlen);
    if (!rc)
        rc = server__credentials_init(s, err, errlen);
    /* Bind before opening the namespace: a busy port fails fast and
     * creates nothing. */
    if (!rc)
        rc = listen_on(s, err, errlen);
    if (!rc)
        rc = open_namespace(s, err, errlen);
    if (rc) {
        server_free(s);
        return rc;
    }
    /* Suspend/resume: the gateway finishes writes on its own workers.
     * Each daemon takes --max-connections; the accept thread keeps the
     * total under it. */
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_USE_ITC | MHD_USE_ERROR_LOG |
                     MHD_USE_TURBO | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_NO_LISTEN_SOCKET;
    s->nworkers = o->threads ? o->threads : 1;
    s->workers = nb_xcalloc(s->nworkers, sizeof *s->workers);
    for (unsigned i = 0; i < s->nworkers; i++) {
        server_worker *w = &s->workers[i];
        w->s = s;
        w->httpd = MHD_start_daemon(
            flags, 0, NULL, NULL, on_request, s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
            (size_t)(32u << 10), MHD_OPTION_CONNECTION_LIMIT, o->max_connections,
            MHD_OPTION_CONNECTION_TIMEOUT, o->idle_timeout_s, MHD_OPTION_URI_LOG_CALLBACK, on_uri,
            s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_NOTIFY_CONNECTION,
            on_connection, w, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, s, MHD_OPTION_END);
        if (!w->httpd) {
            snprintf(err, errlen, "cannot start the HTTP server on port %d", s->port);
            server_free(s);
            return NB_EINTERNAL;
        }
    }
    atomic_store(&s->accepting, true);
    rc = pthread_create(&s->acceptor, NULL, accept_main, s);
    if (rc) {
        atomic_store(&s->accepting, false);
        snprintf(err, errlen, "cannot start the HTTP accept thread: %s", nb_strerror(-rc));
        server_free(s);
        return -rc;
    }
    s->acceptor_started = true;
    *out = s;
    return 0;
}

int server_port(const server *s)
{
    return s->port;
}

const char *server_access_key(const server *s)
{
    return s->access_key;
}

const char *server_secret_key(const server *s)
{
    return s->secret_key;
}

int server_credentials_generated(const server *s)
{
    return s->credentials_generated;
}

/* After HTTP: programs on the mount and S3 clients are done; then the
 * namespace publishes what handles still hold and closes. */
static void close_namespace(server *s)
{
    s3_gw_free(s->gw);
    s->gw = NULL;
    nbfuse_unmount(s->mount);
    s->mount = NULL;
    vfs_close(s->ns);
    s->ns = NULL;
}

void server_shutdown(server *s)
{
    if (!s || s->stopped)
        return;
    s->stopped = true;
    if (!s->workers) {
        close_namespace(s);
        return;
    }
    /* Stop accepting (shutdown(2) wakes the blocked accept); connections
     * already open go on. */
    if (s->acceptor_started) {
        atomic_store(&s->accepting, false);
        (void)shutdown(s->listen_fd, SHUT_RDWR);
        pthread_join(s->acceptor, NULL);
        s->acceptor_started = false;
    }
    if (s->listen_fd >= 0) {
        close(s->listen_fd);
        s->listen_fd = -1;
    }
    uint64_t deadline = nb_mono_ns() + (uint64_t)s->opts.shutdown_grace_s * NB_NS_PER_SEC;
    int64_t n;
    while ((n = atomic_load(&s->inflight_requests)) > 0 && nb_mono_ns() < deadline)
        nb_sleep_ns(10 * NB_NS_PER_MS);
    if (n > 0)
        NB_WARN("shutdown: %lld requests still in flight after %us; closing them", (long long)n,
                s->opts.shutdown_grace_s);
    /* Connections suspended for a gateway commit are resumed by it; MHD
     * must not be stopped with any still suspended. */
    s3_gw_drain(s->gw);
    for (unsigned i = 0; i < s->nworkers; i++)
        if (s->workers[i].httpd)
            MHD_stop_daemon(s->workers[i].httpd);
    free(s->workers);
    s->workers = NULL;
    close_namespace(s);
}

void server_free(server *s)
{
    if (!s)
        return;
    server_shutdown(s);
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    nb_unlock_file(s->lock_fd);
    free(s->data_dir);
    free(s);
}
