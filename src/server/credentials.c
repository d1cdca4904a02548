/*
 * credentials.c — the root S3 credentials.
 *
 * Taken from NEBULA_ACCESS_KEY/NEBULA_SECRET_KEY (or their flags) when set;
 * otherwise read from DATA/root-credentials, or generated on first start
 * and stored there (mode 0600, written atomically) so a restart keeps them.
 *
 * File format, one line: "<access key> <secret key>\n".
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "server/server_int.h"

static bool key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n < 3 || n >= SERVER_KEY_MAX)
        return false;
    for (const char *p = k; *p; p++)
        if (*p <= ' ' || *p > '~')
            return false;
    return true;
}

int server__credentials_init(server *s, char *err, size_t errlen)
{
    const char *ak = s->opts.access_key, *sk = s->opts.secret_key;
    if (ak || sk) {
        if (!ak || !sk || !key_ok(ak) || !key_ok(sk)) {
            snprintf(err, errlen,
                     "NEBULA_ACCESS_KEY and NEBULA_SECRET_KEY must both be set, "
                     "3-127 printable characters without spaces");
            return NB_EUSAGE;
        }
        snprintf(s->access_key, sizeof s->access_key, "%s", ak);
        snprintf(s->secret_key, sizeof s->secret_key, "%s", sk);
        return 0;
    }
    char *path = nb_xasprintf("%s/root-credentials", s->data_dir);
    char *text = NULL;
    size_t len = 0;
    int rc = nb_read_file(path, 4096, &text, &len);
    if (rc == 0) {
        char a[SERVER_KEY_MAX], b[SERVER_KEY_MAX];
        if (sscanf(text, "%127s %127s", a, b) != 2 || !key_ok(a) || !key_ok(b)) {
            snprintf(err, errlen, "%s is damaged: expected '<access key> <secret key>'", path);
            rc = NB_ECORRUPT;
        } else {
            snprintf(s->access_key, sizeof s->access_key, "%s", a);
            snprintf(s->secret_key, sizeof s->secret_key, "%s", b);
        }
    } else if (rc == -ENOENT) {
        /* The shape of a user's keys (and of AWS's): 20 + 40 characters. */
        rc = s3_user_keys_generate(s->access_key, s->secret_key);
        if (!rc) {
            char line[2 * SERVER_KEY_MAX + 4];
            int n = snprintf(line, sizeof line, "%s %s\n", s->access_key, s->secret_key);
            rc = nb_write_file_atomic(path, line, (size_t)n, 0600);
        }
        if (rc)
            snprintf(err, errlen, "cannot create %s: %s", path, nb_strerror(rc));
        else
            s->credentials_generated = true;
    } else {
        snprintf(err, errlen, "cannot read %s: %s", path, nb_strerror(rc));
    }
    free(text);
    free(path);
    return rc;
}
