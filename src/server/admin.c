/*
 * admin.c — the operator endpoints: GET /health (JSON) and GET /metrics
 * (Prometheus text exposition format 0.0.4).
 */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "common/common.h"
#include "server/server_int.h"

static double uptime_seconds(server *s)
{
    return (double)(nb_mono_ns() - s->started_mono_ns) / 1e9;
}

static long long resident_bytes(void)
{
    long long size = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return 0;
    if (fscanf(f, "%lld %lld", &size, &resident) != 2)
        resident = 0;
    fclose(f);
    return resident * sysconf(_SC_PAGESIZE);
}

char *server__health_json(server *s, size_t *len)
{
    nb_buf b = NB_BUF_INIT;
    int rc = nb_buf_appendf(&b, "{\"status\":\"ok\",\"version\":\"%s\",\"uptime_seconds\":%.3f}\n",
                            NB_VERSION, uptime_seconds(s));
    NB_ASSERT(rc == 0);
    return (char *)nb_buf_take(&b, len);
}

char *server__metrics_text(server *s, size_t *len)
{
    nb_buf b = NB_BUF_INIT;
    int rc = 0;
    rc |= nb_buf_appendf(&b,
                         "# HELP nebula_build_info NebulaStore build information.\n"
                         "# TYPE nebula_build_info gauge\n"
                         "nebula_build_info{version=\"%s\"} 1\n",
                         NB_VERSION);
    rc |= nb_buf_appendf(&b,
                         "# HELP nebula_uptime_seconds Seconds since the server started.\n"
                         "# TYPE nebula_uptime_seconds gauge\n"
                         "nebula_uptime_seconds %.3f\n",
                         uptime_seconds(s));
    rc |= nb_buf_appendf(&b, "# HELP nebula_http_requests_total HTTP requests answered, by "
                             "status code.\n"
                             "# TYPE nebula_http_requests_total counter\n");
    for (int st = SERVER_STATUS_MIN; st <= SERVER_STATUS_MAX; st++) {
        uint64_t n = atomic_load_explicit(&s->requests_by_status[st - SERVER_STATUS_MIN],
                                          memory_order_relaxed);
        if (n)
            rc |= nb_buf_appendf(&b, "nebula_http_requests_total{code=\"%d\"} %llu\n", st,
                                 (unsigned long long)n);
    }
    rc |= nb_buf_appendf(&b,
                         "# HELP nebula_http_open_connections HTTP connections open now.\n"
                         "# TYPE nebula_http_open_connections gauge\n"
                         "nebula_http_open_connections %lld\n",
                         (long long)atomic_load(&s->open_connections));
    rc |= nb_buf_appendf(&b,
                         "# HELP nebula_http_inflight_requests HTTP requests being served now.\n"
                         "# TYPE nebula_http_inflight_requests gauge\n"
                         "nebula_http_inflight_requests %lld\n",
                         (long long)atomic_load(&s->inflight_requests));
    if (s->gw) {
        rc |= nb_buf_appendf(&b, "# HELP nebula_s3_get_bodies_total S3 GET bodies answered, by "
                                 "how they were sent (sendfile and mapped: zero-copy).\n"
                                 "# TYPE nebula_s3_get_bodies_total counter\n");
        for (int p = 0; p < S3_GET_NPATHS; p++)
            rc |= nb_buf_appendf(&b, "nebula_s3_get_bodies_total{path=\"%s\"} %llu\n",
                                 s3_get_path_name((s3_get_path)p),
                                 (unsigned long long)s3_gw_get_count(s->gw, (s3_get_path)p));
    }
    rc |= nb_buf_appendf(&b,
                         "# HELP process_resident_memory_bytes Resident set size in bytes.\n"
                         "# TYPE process_resident_memory_bytes gauge\n"
                         "process_resident_memory_bytes %lld\n",
                         resident_bytes());
    rc |= nb_buf_appendf(&b,
                         "# HELP process_cpu_seconds_total CPU time used by the process.\n"
                         "# TYPE process_cpu_seconds_total counter\n"
                         "process_cpu_seconds_total %.3f\n",
                         (double)nb_cpu_ns() / 1e9);
    NB_ASSERT(rc == 0); /* unbounded buffer: appends cannot fail */
    return (char *)nb_buf_take(&b, len);
}
