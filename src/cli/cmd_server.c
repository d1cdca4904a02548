/* cmd_server.c — `nebula server`: the all-in-one process. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/common.h"
#include "server/server.h"

static const nb_opt server_opts[] = {
    {"data", NB_OPT_STR, "./nebula-data", "DIR", "Data directory (created if missing).", 0, 0},
    {"port", NB_OPT_INT, "8080", "N", "TCP port for S3 and the admin endpoints (0: any free port).",
     0, 65535},
    {"listen", NB_OPT_STR, NULL, "ADDR:PORT",
     "Address and port to listen on, e.g. 127.0.0.1:8080 or [::1]:8080 (overrides --port).", 0, 0},
    {"threads", NB_OPT_INT, "0", "N", "HTTP worker threads (0: one per CPU).", 0, 1024},
    {"max-connections", NB_OPT_INT, "1024", "N", "Connections accepted at once.", 1, 1000000},
    {"idle-timeout", NB_OPT_INT, "60", "SECONDS", "Close connections idle this long.", 1, 86400},
    {"shutdown-grace", NB_OPT_INT, "30", "SECONDS",
     "On SIGINT/SIGTERM, wait this long for requests in flight.", 0, 3600},
    {"access-key", NB_OPT_STR, NULL, "KEY",
     "Root access key (default: generated on first start and kept in DIR).", 0, 0},
    {"secret-key", NB_OPT_STR, NULL, "KEY", "Root secret key.", 0, 0},
    {"meta-engine", NB_OPT_STR, NULL, "NAME",
     "Key-value engine under the metadata: rocksdb or nkv (default: the build's default).", 0, 0},
    {"cache-size", NB_OPT_SIZE, "256M", "BYTES", "Block cache for file and object data.", 0, 0},
    {"meta-cache-size", NB_OPT_SIZE, "32M", "BYTES",
     "Block cache of the metadata store, where small files (up to 16 KiB) are kept too.", 0, 0},
    {"block-store", NB_OPT_STR, "disk", "NAME",
     "Block store of a new data directory: disk (the disk engine: data files in DIR/disk that "
     "grow in preallocated steps) or dir (a file per block in DIR/blocks). A directory keeps "
     "the store it was made with.",
     0, 0},
    {"disk-size", NB_OPT_SIZE, "0", "BYTES",
     "Most space the disk store's data files grow to together (e.g. 100G); puts beyond it fail "
     "with "
     "no space left. 0: grow while the file system keeps --disk-reserve free.",
     0, 0},
    {"disk-files", NB_OPT_STR, NULL, "PATH,...",
     "Data files of a new disk store, comma separated: files (relative to DIR/disk unless "
     "absolute, e.g. on other disks) or block devices (used whole); blobs are spread over "
     "them (default: one file, data.0). Recorded at creation.",
     0, 0},
    {"disk-reserve", NB_OPT_SIZE, "0", "BYTES",
     "Free space the disk store leaves on its file system when --disk-size is 0 (0: 5 % of the "
     "file system, at most 4G).",
     0, 0},
    {"mount", NB_OPT_STR, NULL, "DIR",
     "Also mount the namespace at DIR with FUSE (a dead mount left there is reclaimed).", 0, 0},
    {"allow-other", NB_OPT_BOOL, "false", NULL, "Let other users use the mount (allow_other).", 0,
     0},
    {"default-permissions", NB_OPT_BOOL, "false", NULL,
     "Let the kernel check permissions on the mount (default_permissions).", 0, 0},
    {"mount-read-only", NB_OPT_BOOL, "false", NULL, "Mount read-only.", 0, 0},
    {"writeback-cache", NB_OPT_BOOL, "false", NULL,
     "Let the kernel cache writes to files on the mount and send them in large pieces (costs a "
     "FLUSH at every close, even of read-only descriptors).",
     0, 0},
    {"mount-threads", NB_OPT_INT, "16", "N",
     "Threads answering the mount's requests, at most (as many as CPUs serve; more start only "
     "while all are busy).",
     2, 256},
    {"entry-timeout", NB_OPT_FLOAT, "60", "SECONDS", "How long the kernel may cache names.", 0,
     86400},
    {"attr-timeout", NB_OPT_FLOAT, "60", "SECONDS", "How long the kernel may cache attributes.", 0,
     86400},
    {"lifecycle-interval", NB_OPT_FLOAT, "3600", "SECONDS",
     "Run the buckets' S3 lifecycle rules this often (0: never).", 0, 0},
    {"lifecycle-day-seconds", NB_OPT_FLOAT, "86400", "SECONDS",
     "Length of a lifecycle day, for tests only (Days in rules count these).", 0, 0},
};

static const nb_cmd_spec server_spec = {
    .name = "server",
    .usage = "nebula server [OPTIONS]",
    .summary = "Runs NebulaStore in one process: the namespace over the data directory,\n"
               "served over HTTP (S3 and the admin endpoints GET /health, GET /metrics)\n"
               "and, with --mount, as a POSIX file system. Stops cleanly on SIGINT or\n"
               "SIGTERM, finishing requests in flight and unmounting.",
    .opts = server_opts,
    .nopts = NB_ARRAY_LEN(server_opts),
};

/* Splits "host:port", "[v6]:port" or ":port" into host and port. */
static int parse_listen(const char *s, char *host, size_t hostlen, int *port)
{
    const char *colon;
    if (s[0] == '[') {
        const char *close = strchr(s, ']');
        if (!close || close[1] != ':')
            return NB_EUSAGE;
        snprintf(host, hostlen, "%.*s", (int)(close - s - 1), s + 1);
        colon = close + 1;
    } else {
        colon = strrchr(s, ':');
        if (!colon)
            return NB_EUSAGE;
        snprintf(host, hostlen, "%.*s", (int)(colon - s), s);
        if (!*host)
            snprintf(host, hostlen, "0.0.0.0");
    }
    char *end;
    errno = 0;
    long p = strtol(colon + 1, &end, 10);
    if (end == colon + 1 || *end || errno || p < 0 || p > 65535)
        return NB_EUSAGE;
    *port = (int)p;
    return 0;
}

int cli_server(int argc, char **argv)
{
    nb_config *cfg;
    int code;
    if (!cli_parse(&server_spec, argc, argv, &cfg, &code))
        return code;

    char host[256] = "0.0.0.0";
    int port = (int)nb_config_int(cfg, "port");
    const char *listen = nb_config_str(cfg, "listen");
    if (listen && parse_listen(listen, host, sizeof host, &port) != 0) {
        fprintf(stderr, "nebula server: --listen: '%s' is not ADDR:PORT\n", listen);
        nb_config_free(cfg);
        return CLI_EXIT_USAGE;
    }
    server_options o = {
        .data_dir = nb_config_str(cfg, "data"),
        .listen_host = host,
        .port = port,
        .threads = (unsigned)nb_config_int(cfg, "threads"),
        .max_connections = (unsigned)nb_config_int(cfg, "max-connections"),
        .idle_timeout_s = (unsigned)nb_config_int(cfg, "idle-timeout"),
        .shutdown_grace_s = (unsigned)nb_config_int(cfg, "shutdown-grace"),
        .access_key = nb_config_str(cfg, "access-key"),
        .secret_key = nb_config_str(cfg, "secret-key"),
        .meta_engine = nb_config_str(cfg, "meta-engine"),
        .cache_bytes = (size_t)nb_config_int(cfg, "cache-size"),
        .meta_cache_bytes = (size_t)nb_config_int(cfg, "meta-cache-size"),
        .block_store = nb_config_str(cfg, "block-store"),
        .disk_size = (uint64_t)nb_config_int(cfg, "disk-size"),
        .disk_reserve = (uint64_t)nb_config_int(cfg, "disk-reserve"),
        .disk_files = nb_config_str(cfg, "disk-files"),
        .lifecycle_interval_s = nb_config_float(cfg, "lifecycle-interval"),
        .lifecycle_day_s = nb_config_float(cfg, "lifecycle-day-seconds"),
    };
    nbfuse_options_init(&o.mount);
    o.mount.mountpoint = nb_config_str(cfg, "mount");
    o.mount.allow_other = nb_config_bool(cfg, "allow-other");
    o.mount.default_permissions = nb_config_bool(cfg, "default-permissions");
    o.mount.read_only = nb_config_bool(cfg, "mount-read-only");
    o.mount.writeback_cache = nb_config_bool(cfg, "writeback-cache");
    o.mount.max_threads = (unsigned)nb_config_int(cfg, "mount-threads");
    o.mount.entry_timeout = nb_config_float(cfg, "entry-timeout");
    o.mount.attr_timeout = nb_config_float(cfg, "attr-timeout");
    if (strcmp(o.block_store, "disk") != 0 && strcmp(o.block_store, "dir") != 0) {
        fprintf(stderr, "nebula server: --block-store: '%s' is not disk or dir\n", o.block_store);
        nb_config_free(cfg);
        return CLI_EXIT_USAGE;
    }
    if (o.threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        o.threads = n > 0 ? (unsigned)n : 1;
    }

    /* Block the stop signals before any thread starts, so every thread
     * inherits the mask and only sigwait below sees them. */
    sigset_t stop;
    /* A shell starts background jobs with SIGINT ignored; an ignored
     * signal never reaches sigwait, so take the default back first. */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    char err[512] = "";
    server *srv;
    int rc = server_open(&o, &srv, err, sizeof err);
    if (rc) {
        fprintf(stderr, "nebula server: %s\n", err[0] ? err : nb_strerror(rc));
        nb_config_free(cfg);
        return CLI_EXIT_FAIL;
    }
    const char *shown =
        strcmp(host, "0.0.0.0") == 0 || strcmp(host, "::") == 0 ? "localhost" : host;
    printf("NebulaStore %s\n"
           "  endpoint:   http://%s%s%s:%d\n"
           "  data:       %s\n"
           "  mount:      %s\n"
           "  access key: %s\n"
           "  secret key: %s%s\n"
           "Press Ctrl-C to stop.\n",
           NB_VERSION, strchr(shown, ':') ? "[" : "", shown, strchr(shown, ':') ? "]" : "",
           server_port(srv), o.data_dir, o.mount.mountpoint ? o.mount.mountpoint : "(none)",
           server_access_key(srv), server_secret_key(srv),
           server_credentials_generated(srv) ? "   (generated now; kept in the data directory)"
                                             : "");
    fflush(stdout);
    NB_INFO("serving on %s:%d, data in %s", host, server_port(srv), o.data_dir);

    int sig = 0;
    sigwait(&stop, &sig);
    NB_INFO("%s received, shutting down", sig == SIGINT ? "SIGINT" : "SIGTERM");
    server_free(srv);
    NB_INFO("stopped");
    nb_config_free(cfg);
    return CLI_EXIT_OK;
}
