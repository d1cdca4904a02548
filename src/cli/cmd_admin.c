/*
 * cmd_admin.c — `nebula admin user add|list|remove`: S3 users beyond root.
 *
 * With --endpoint the command talks to a running server (which holds the
 * data directory's lock) through its admin API (src/s3/gw_admin.c),
 * signing each request with SigV4 as root: keys from NEBULA_ACCESS_KEY /
 * NEBULA_SECRET_KEY (or --access-key/--secret-key), else from the data
 * directory's root-credentials file. Without --endpoint it opens the data
 * directory itself, which only works while no server runs there.
 */
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "common/common.h"
#include "s3/s3.h"
#include "vfs/vfs.h"

static const nb_opt admin_opts[] = {
    {"endpoint", NB_OPT_STR, NULL, "URL",
     "A running server, e.g. http://127.0.0.1:8080 (default: open --data offline).", 0, 0},
    {"data", NB_OPT_STR, "./nebula-data", "DIR",
     "Data directory: opened when no --endpoint is given; its root-credentials file signs "
     "requests to --endpoint when no keys are given.",
     0, 0},
    {"access-key", NB_OPT_STR, NULL, "KEY", "Root access key for --endpoint.", 0, 0},
    {"secret-key", NB_OPT_STR, NULL, "KEY", "Root secret key for --endpoint.", 0, 0},
    {"name", NB_OPT_STR, NULL, "NAME", "add: the user's display name.", 0, 0},
};

static const nb_cmd_spec admin_spec = {
    .name = "admin user",
    .usage = "nebula admin user add [--name NAME] | list | remove ACCESS_KEY  [OPTIONS]",
    .summary = "Manages S3 users beyond root. `add` creates a user with a new access key and\n"
               "secret key and prints both: the secret is shown only this once. `list`\n"
               "prints access key, creation time and name of every user (never secrets).\n"
               "`remove` deletes a user; its keys stop working at once. Users own the\n"
               "buckets they create; root sees and may act on every bucket.",
    .opts = admin_opts,
    .nopts = NB_ARRAY_LEN(admin_opts),
    .min_args = 1,
    .max_args = 2,
};

/* ---- offline: the data directory ------------------------------------------------------------ */

typedef struct offline {
    int lock;
    vfs *ns;
} offline;

static int offline_open(const char *dir, offline *o)
{
    o->lock = -1;
    o->ns = NULL;
    char *path = nb_xasprintf("%s/LOCK", dir);
    pid_t holder = 0;
    int rc = nb_lock_file(path, &o->lock, &holder);
    if (rc == NB_ELOCKED)
        fprintf(stderr,
                "nebula admin: %s is in use by a running nebula server (pid %d); "
                "use --endpoint to reach it\n",
                dir, (int)holder);
    else if (rc)
        fprintf(stderr, "nebula admin: cannot lock %s: %s\n", path, nb_strerror(rc));
    free(path);
    if (rc)
        return rc;
    vfs_options vo;
    vfs_options_init(&vo);
    vo.data_dir = dir;
    rc = vfs_open(&vo, &o->ns);
    if (rc) {
        fprintf(stderr, "nebula admin: cannot open the namespace in %s: %s\n", dir,
                nb_strerror(rc));
        nb_unlock_file(o->lock);
    }
    return rc;
}

static void offline_close(offline *o)
{
    vfs_close(o->ns);
    nb_unlock_file(o->lock);
}

static void print_time(int64_t ns, char *out, size_t cap)
{
    time_t t = (time_t)(ns / NB_NS_PER_SEC);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void print_added(const char *ak, const char *sk, const char *name)
{
    printf("access_key = %s\nsecret_key = %s\n", ak, sk);
    if (name && *name)
        printf("name = %s\n", name);
    fprintf(stderr, "nebula admin: user %s added; the secret key is shown only now\n", ak);
}

static int list_cb(void *arg, const vfs_user *u)
{
    NB_UNUSED(arg);
    char t[32];
    print_time(u->ctime_ns, t, sizeof t);
    printf("%-24s %s %s\n", u->access_key, t, u->name ? u->name : "");
    return 0;
}

static int offline_run(const char *dir, const char *cmd, const char *arg, const char *name)
{
    offline o;
    if (offline_open(dir, &o) != 0)
        return CLI_EXIT_FAIL;
    int rc = 0;
    if (strcmp(cmd, "add") == 0) {
        char ak[21], sk[41];
        vfs_user u = {.access_key = ak, .secret_key = sk, .name = (char *)name};
        for (int tries = 0; tries < 8; tries++) {
            rc = s3_user_keys_generate(ak, sk);
            u.ctime_ns = (int64_t)nb_wall_ns();
            if (rc == 0)
                rc = vfs_user_add(o.ns, &u);
            if (rc != -EEXIST)
                break;
        }
        if (rc == 0)
            print_added(ak, sk, name);
    } else if (strcmp(cmd, "list") == 0) {
        rc = vfs_user_list(o.ns, list_cb, NULL);
    } else {
        rc = vfs_user_remove(o.ns, arg);
        if (rc == NB_ENOTFOUND) {
            fprintf(stderr, "nebula admin: no user with access key %s\n", arg);
            offline_close(&o);
            return CLI_EXIT_FAIL;
        }
    }
    if (rc)
        fprintf(stderr, "nebula admin: %s: %s\n", dir, nb_strerror(rc));
    offline_close(&o);
    return rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
}

/* ---- online: the admin API of a running server ---------------------------------------------- */

typedef struct endpoint {
    char host[280]; /* without the port and brackets */
    char port[16];
    char hostport[280]; /* as given, for the Host header */
} endpoint;

static int endpoint_parse(const char *url, endpoint *e)
{
    const char *p = url;
    if (strncmp(p, "http://", 7) == 0)
        p += 7;
    else if (strstr(p, "://"))
        return NB_EUSAGE; /* https is not served */
    size_t n = strcspn(p, "/");
    if (n == 0 || n >= sizeof e->hostport)
        return NB_EUSAGE;
    snprintf(e->hostport, sizeof e->hostport, "%.*s", (int)n, p);
    const char *colon = strrchr(e->hostport, ':');
    const char *bracket = strrchr(e->hostport, ']');
    if (colon && (!bracket || colon > bracket)) {
        snprintf(e->host, sizeof e->host, "%.*s", (int)(colon - e->hostport), e->hostport);
        snprintf(e->port, sizeof e->port, "%s", colon + 1);
    } else {
        snprintf(e->host, sizeof e->host, "%s", e->hostport);
        snprintf(e->port, sizeof e->port, "80");
    }
    size_t hl = strlen(e->host);
    if (hl >= 2 && e->host[0] == '[' && e->host[hl - 1] == ']') {
        memmove(e->host, e->host + 1, hl - 2);
        e->host[hl - 2] = 0;
    }
    return e->host[0] ? 0 : NB_EUSAGE;
}

static int read_root_keys(const char *dir, char *ak, char *sk, size_t cap)
{
    char *path = nb_xasprintf("%s/root-credentials", dir);
    char *text = NULL;
    size_t len = 0;
    int rc = nb_read_file(path, 4096, &text, &len);
    char a[256], b[256];
    if (rc == 0 && sscanf(text, "%255s %255s", a, b) != 2)
        rc = NB_ECORRUPT;
    if (rc == 0) {
        snprintf(ak, cap, "%s", a);
        snprintf(sk, cap, "%s", b);
    } else {
        fprintf(stderr,
                "nebula admin: no root keys: set NEBULA_ACCESS_KEY and NEBULA_SECRET_KEY, "
                "or point --data at the server's data directory (%s: %s)\n",
                path, nb_strerror(rc));
    }
    free(text);
    free(path);
    return rc;
}

/* Sends one signed request with no body; *status and *body (owned) get
 * the answer. */
static int http_call(const endpoint *e, const char *ak, const char *sk, const char *method,
                     const char *path, const char *query, int *status, char **body)
{
    static const char empty_sha[] =
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    char date[20];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%Y%m%dT%H%M%SZ", &tm);
    s3_header hs[3] = {
        {"host", e->hostport}, {"x-amz-content-sha256", empty_sha}, {"x-amz-date", date}};
    s3_http_req req = {
        .method = method, .path = path, .query = query, .headers = hs, .n_headers = 3};
    char authz[512];
    int rc = s3_sigv4_sign(&req, ak, sk, "us-east-1", authz, sizeof authz);
    if (rc)
        return rc;
    nb_buf out = NB_BUF_INIT;
    rc = nb_buf_appendf(&out,
                        "%s %s%s%s HTTP/1.1\r\nHost: %s\r\nx-amz-date: %s\r\n"
                        "x-amz-content-sha256: %s\r\nAuthorization: %s\r\n"
                        "Content-Length: 0\r\nConnection: close\r\n\r\n",
                        method, path, query ? "?" : "", query ? query : "", e->hostport, date,
                        empty_sha, authz);
    struct addrinfo hints = {0}, *res = NULL;
    hints.ai_socktype = SOCK_STREAM;
    int gai = rc ? 0 : getaddrinfo(e->host, e->port, &hints, &res);
    if (gai) {
        fprintf(stderr, "nebula admin: cannot resolve %s: %s\n", e->host, gai_strerror(gai));
        nb_buf_free(&out);
        return NB_EUSAGE;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; rc == 0 && ai && fd < 0; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd >= 0 && connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            rc = -errno;
            close(fd);
            fd = -1;
            if (ai->ai_next)
                rc = 0;
        }
    }
    if (res)
        freeaddrinfo(res);
    if (rc == 0 && fd < 0)
        rc = -ECONNREFUSED;
    for (size_t off = 0; rc == 0 && off < out.len;) {
        ssize_t w = send(fd, out.data + off, out.len - off, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = -errno;
        else
            off += (size_t)w;
    }
    nb_buf in = NB_BUF_INIT;
    nb_buf_init(&in, 16u << 20); /* a list of users; far below */
    char chunk[8192];
    while (rc == 0) {
        ssize_t n = recv(fd, chunk, sizeof chunk, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = -errno;
        if (n <= 0)
            break;
        rc = nb_buf_append(&in, chunk, (size_t)n);
    }
    if (fd >= 0)
        close(fd);
    nb_buf_free(&out);
    if (rc) {
        fprintf(stderr, "nebula admin: %s: %s\n", e->hostport, nb_strerror(rc));
        nb_buf_free(&in);
        return rc;
    }
    rc = nb_buf_nul_terminate(&in);
    const char *text = rc ? NULL : (const char *)in.data;
    const char *sep = text ? strstr(text, "\r\n\r\n") : NULL;
    if (!sep || sscanf(text, "HTTP/1.%*d %d", status) != 1) {
        fprintf(stderr, "nebula admin: %s: not an HTTP answer\n", e->hostport);
        nb_buf_free(&in);
        return -EPROTO;
    }
    *body = nb_xstrdup(sep + 4);
    nb_buf_free(&in);
    return 0;
}

/* The value of "name":"..." in a flat JSON object (no escapes in keys
 * or the values we print). */
static const char *json_get(const char *obj, const char *name, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":\"", name);
    const char *p = strstr(obj, pat);
    if (!p)
        return NULL;
    p += strlen(pat);
    size_t n = 0;
    while (p[n] && p[n] != '"' && n + 1 < cap) {
        if (p[n] == '\\' && p[n + 1])
            p++;
        out[n] = p[n];
        n++;
    }
    out[n] = 0;
    return p + n;
}

/* The S3 error document's Code and Message. */
static void print_error(int status, const char *body)
{
    const char *c = strstr(body, "<Code>"), *m = strstr(body, "<Message>");
    int cl = c ? (int)strcspn(c + 6, "<") : 0, ml = m ? (int)strcspn(m + 9, "<") : 0;
    fprintf(stderr, "nebula admin: the server answered %d %.*s: %.*s\n", status, cl, c ? c + 6 : "",
            ml, m ? m + 9 : "");
}

static int online_run(const char *url, const char *ak, const char *sk, const char *cmd,
                      const char *arg, const char *name)
{
    endpoint e;
    if (endpoint_parse(url, &e) != 0) {
        fprintf(stderr, "nebula admin: --endpoint: '%s' is not http://HOST:PORT\n", url);
        return CLI_EXIT_USAGE;
    }
    int status = 0;
    char *body = NULL;
    int rc;
    nb_buf q = NB_BUF_INIT, path = NB_BUF_INIT;
    if (strcmp(cmd, "add") == 0) {
        rc = 0;
        if (name) {
            rc = nb_buf_append_str(&q, "name=");
            rc = rc ? rc : s3_uri_encode(&q, name, strlen(name), false);
            rc = rc ? rc : nb_buf_nul_terminate(&q);
        }
        rc = rc ? rc
                : http_call(&e, ak, sk, "POST", "/_nebula/admin/users",
                            name ? (const char *)q.data : NULL, &status, &body);
    } else if (strcmp(cmd, "list") == 0) {
        rc = http_call(&e, ak, sk, "GET", "/_nebula/admin/users", NULL, &status, &body);
    } else {
        rc = nb_buf_append_str(&path, "/_nebula/admin/users/");
        rc = rc ? rc : s3_uri_encode(&path, arg, strlen(arg), false);
        rc = rc ? rc : nb_buf_nul_terminate(&path);
        rc = rc ? rc
                : http_call(&e, ak, sk, "DELETE", (const char *)path.data, NULL, &status, &body);
    }
    nb_buf_free(&q);
    nb_buf_free(&path);
    if (rc)
        return CLI_EXIT_FAIL;
    int code = CLI_EXIT_OK;
    if (status != 200 && status != 204) {
        print_error(status, body);
        code = CLI_EXIT_FAIL;
    } else if (strcmp(cmd, "add") == 0) {
        char a[256], s[256], n[512];
        if (!json_get(body, "access_key", a, sizeof a) ||
            !json_get(body, "secret_key", s, sizeof s)) {
            fprintf(stderr, "nebula admin: unexpected answer: %s\n", body);
            code = CLI_EXIT_FAIL;
        } else {
            print_added(a, s, json_get(body, "name", n, sizeof n) ? n : NULL);
        }
    } else if (strcmp(cmd, "list") == 0) {
        const char *p = body;
        char a[256], t[64], n[512];
        while ((p = strstr(p, "{\"access_key\"")) != NULL) {
            if (!json_get(p, "access_key", a, sizeof a) || !json_get(p, "created", t, sizeof t) ||
                !json_get(p, "name", n, sizeof n))
                break;
            printf("%-24s %s %s\n", a, t, n);
            p++;
        }
    }
    free(body);
    return code;
}

/* `nebula admin user ...` */
int cli_admin(int argc, char **argv)
{
    if (argc < 1 || (strcmp(argv[0], "user") != 0 && strcmp(argv[0], "--help") != 0 &&
                     strcmp(argv[0], "-h") != 0)) {
        fprintf(stderr, "nebula admin: expected 'user' (see 'nebula admin --help')\n");
        return CLI_EXIT_USAGE;
    }
    if (strcmp(argv[0], "user") == 0) {
        argc--;
        argv++;
    }
    nb_config *cfg;
    int code;
    if (!cli_parse(&admin_spec, argc, argv, &cfg, &code))
        return code;
    const char *cmd = nb_config_arg(cfg, 0);
    const char *arg = nb_config_nargs(cfg) > 1 ? nb_config_arg(cfg, 1) : NULL;
    bool add = strcmp(cmd, "add") == 0, list = strcmp(cmd, "list") == 0,
         rm = strcmp(cmd, "remove") == 0;
    if ((!add && !list && !rm) || (rm != (arg != NULL))) {
        fprintf(stderr, "nebula admin user: usage: %s\n", admin_spec.usage);
        nb_config_free(cfg);
        return CLI_EXIT_USAGE;
    }
    const char *name = nb_config_str(cfg, "name");
    const char *dir = nb_config_str(cfg, "data");
    const char *url = nb_config_str(cfg, "endpoint");
    if (!url) {
        code = offline_run(dir, cmd, arg, name);
    } else {
        const char *ak = nb_config_str(cfg, "access-key"), *sk = nb_config_str(cfg, "secret-key");
        char a[256], s[256];
        if (!ak || !sk) {
            if (read_root_keys(dir, a, s, sizeof a) != 0) {
                nb_config_free(cfg);
                return CLI_EXIT_USAGE;
            }
            ak = a;
            sk = s;
        }
        code = online_run(url, ak, sk, cmd, arg, name);
    }
    nb_config_free(cfg);
    return code;
}
