/* config.c — options from flags, environment, config file, defaults (config.h). */
#include "common/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "common/fsutil.h"
#include "common/mem.h"

enum { SRC_UNSET, SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG };
static const char *const source_names[] = {"unset", "default", "file", "env", "flag"};

/* Options every command accepts, ahead of the command's own table. */
static const nb_opt builtin_opts[] = {
    {"config", NB_OPT_STR, NULL, "FILE", "Read options from FILE (`key = value` lines).", 0, 0},
    {"log-level", NB_OPT_STR, "info", "LEVEL", "Log verbosity: debug, info, warn, error or off.", 0,
     0},
};

typedef struct value {
    const nb_opt *opt;
    char *text; /* owned; NULL when unset */
    int source;
} value;

struct nb_config {
    value *values;
    size_t nvalues;
    char **args;
    int nargs;
    bool help;
};

#define NBUILTIN NB_ARRAY_LEN(builtin_opts)

static void set_err(char *err, size_t errlen, const char *fmt, ...) NB_PRINTF(3, 4);
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || !errlen)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static value *find_value(const nb_config *cfg, const char *name, size_t namelen)
{
    for (size_t i = 0; i < cfg->nvalues; i++) {
        const char *n = cfg->values[i].opt->name;
        if (strlen(n) == namelen && strncmp(n, name, namelen) == 0)
            return &cfg->values[i];
    }
    return NULL;
}

int nb_parse_size(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || errno || v < 0)
        return NB_EUSAGE;
    double mult = 1;
    switch (toupper((unsigned char)*end)) {
    case 0:
        break;
    case 'K':
        mult = 1024.0;
        break;
    case 'M':
        mult = 1024.0 * 1024;
        break;
    case 'G':
        mult = 1024.0 * 1024 * 1024;
        break;
    case 'T':
        mult = 1024.0 * 1024 * 1024 * 1024;
        break;
    default:
        return NB_EUSAGE;
    }
    if (*end) {
        end++;
        if (toupper((unsigned char)*end) == 'I')
            end++;
        if (toupper((unsigned char)*end) == 'B')
            end++;
        if (*end)
            return NB_EUSAGE;
    }
    v *= mult;
    if (v > 9.2e18)
        return NB_EUSAGE;
    *out = (int64_t)v;
    return 0;
}

static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "true", "yes", "on"};
    static const char *const no[] = {"0", "false", "no", "off"};
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return NB_EUSAGE;
}

/* Checks text against the option's type and bounds. */
static int validate(const nb_opt *o, const char *text, const char *where, char *err, size_t errlen)
{
    int64_t v = 0;
    bool b;
    switch (o->type) {
    case NB_OPT_STR:
        return 0;
    case NB_OPT_BOOL:
        if (parse_bool(text, &b) == 0)
            return 0;
        set_err(err, errlen, "%s: '%s' is not a boolean (true or false)", where, text);
        return NB_EUSAGE;
    case NB_OPT_INT: {
        char *end;
        errno = 0;
        long long ll = strtoll(text, &end, 10);
        if (end == text || *end || errno) {
            set_err(err, errlen, "%s: '%s' is not an integer", where, text);
            return NB_EUSAGE;
        }
        v = ll;
        break;
    }
    case NB_OPT_FLOAT: {
        char *end;
        errno = 0;
        double d = strtod(text, &end);
        if (end == text || *end || errno || d != d) {
            set_err(err, errlen, "%s: '%s' is not a number", where, text);
            return NB_EUSAGE;
        }
        if ((o->min || o->max) && (d < (double)o->min || d > (double)o->max)) {
            set_err(err, errlen, "%s: %s is out of range [%lld, %lld]", where, text,
                    (long long)o->min, (long long)o->max);
            return NB_EUSAGE;
        }
        return 0;
    }
    case NB_OPT_SIZE:
        if (nb_parse_size(text, &v) != 0) {
            set_err(err, errlen, "%s: '%s' is not a size (e.g. 4096, 64K, 8M, 1G)", where, text);
            return NB_EUSAGE;
        }
        break;
    }
    if ((o->min || o->max) && (v < o->min || v > o->max)) {
        set_err(err, errlen, "%s: %s is out of range [%lld, %lld]", where, text, (long long)o->min,
                (long long)o->max);
        return NB_EUSAGE;
    }
    return 0;
}

static int assign(value *v, const char *text, int source, const char *where, char *err,
                  size_t errlen)
{
    if (source < v->source)
        return 0; /* a stronger source already set it */
    int rc = validate(v->opt, text, where, err, errlen);
    if (rc)
        return rc;
    free(v->text);
    v->text = nb_xstrdup(text);
    v->source = source;
    return 0;
}

static char *trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = 0;
    return s;
}

static int load_file(nb_config *cfg, const char *path, char *err, size_t errlen)
{
    char *text;
    size_t len;
    int rc = nb_read_file(path, 1 << 20, &text, &len);
    if (rc) {
        set_err(err, errlen, "config file %s: %s", path, nb_strerror(rc));
        return NB_EUSAGE;
    }
    int lineno = 0;
    char *save = NULL;
    rc = 0;
    /* strtok_r would skip empty lines and miscount; split by hand. */
    for (char *line = text; line && !rc; line = save) {
        lineno++;
        char *nl = strchr(line, '\n');
        save = nl ? nl + 1 : NULL;
        if (nl)
            *nl = 0;
        char *hash = strchr(line, '#');
        if (hash)
            *hash = 0;
        char *s = trim(line);
        if (!*s)
            continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            set_err(err, errlen, "config file %s line %d: expected 'key = value', got '%s'", path,
                    lineno, s);
            rc = NB_EUSAGE;
            break;
        }
        *eq = 0;
        char *key = trim(s);
        char *val = trim(eq + 1);
        value *v = find_value(cfg, key, strlen(key));
        if (!v || strcmp(key, "config") == 0) {
            set_err(err, errlen, "config file %s line %d: unknown option '%s'", path, lineno, key);
            rc = NB_EUSAGE;
            break;
        }
        char where[512];
        snprintf(where, sizeof where, "config file %s line %d", path, lineno);
        rc = assign(v, val, SRC_FILE, where, err, errlen);
    }
    free(text);
    return rc;
}

static void env_name(const char *opt, char *out, size_t outlen)
{
    size_t n = (size_t)snprintf(out, outlen, "NEBULA_");
    for (const char *p = opt; *p && n + 1 < outlen; p++)
        out[n++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[n] = 0;
}

int nb_config_parse(const nb_cmd_spec *spec, int argc, char **argv, nb_config **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    nb_config *cfg = nb_xcalloc(1, sizeof *cfg);
    cfg->nvalues = NBUILTIN + spec->nopts;
    cfg->values = nb_xcalloc(cfg->nvalues, sizeof *cfg->values);
    cfg->args = nb_xcalloc((size_t)argc + 1, sizeof *cfg->args);
    for (size_t i = 0; i < cfg->nvalues; i++)
        cfg->values[i].opt = i < NBUILTIN ? &builtin_opts[i] : &spec->opts[i - NBUILTIN];

    int rc = 0;
    bool options_done = false;
    for (int i = 0; i < argc && !rc; i++) {
        const char *a = argv[i];
        if (options_done || a[0] != '-' || a[1] == 0) {
            if (cfg->nargs >= spec->max_args) {
                set_err(err, errlen, "%s: unexpected argument '%s'", spec->name, a);
                rc = NB_EUSAGE;
                break;
            }
            cfg->args[cfg->nargs++] = nb_xstrdup(a);
            continue;
        }
        if (strcmp(a, "--") == 0) {
            options_done = true;
            continue;
        }
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            cfg->help = true;
            *out = cfg;
            return 0;
        }
        if (a[1] != '-') {
            set_err(err, errlen, "%s: unknown option '%s' (options are long: --name)", spec->name,
                    a);
            rc = NB_EUSAGE;
            break;
        }
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t namelen = eq ? (size_t)(eq - name) : strlen(name);
        value *v = find_value(cfg, name, namelen);
        bool negated = false;
        if (!v && namelen > 3 && strncmp(name, "no-", 3) == 0) {
            v = find_value(cfg, name + 3, namelen - 3);
            negated = v && v->opt->type == NB_OPT_BOOL && !eq;
            if (!negated)
                v = NULL;
        }
        if (!v) {
            set_err(err, errlen, "%s: unknown option '--%.*s' (see 'nebula %s --help')", spec->name,
                    (int)namelen, name, spec->name);
            rc = NB_EUSAGE;
            break;
        }
        const char *text;
        if (negated)
            text = "false";
        else if (eq)
            text = eq + 1;
        else if (v->opt->type == NB_OPT_BOOL)
            text = "true";
        else if (i + 1 < argc)
            text = argv[++i];
        else {
            set_err(err, errlen, "%s: option '--%s' needs a value", spec->name, v->opt->name);
            rc = NB_EUSAGE;
            break;
        }
        char where[128];
        snprintf(where, sizeof where, "--%s", v->opt->name);
        rc = assign(v, text, SRC_FLAG, where, err, errlen);
    }
    /* Environment. */
    for (size_t i = 0; i < cfg->nvalues && !rc; i++) {
        char ename[128];
        env_name(cfg->values[i].opt->name, ename, sizeof ename);
        const char *e = getenv(ename);
        if (e && *e)
            rc = assign(&cfg->values[i], e, SRC_ENV, ename, err, errlen);
    }
    /* Config file, named by --config or NEBULA_CONFIG (both land in "config"). */
    if (!rc) {
        const char *path = nb_config_str(cfg, "config");
        if (path)
            rc = load_file(cfg, path, err, errlen);
    }
    /* Defaults. */
    for (size_t i = 0; i < cfg->nvalues && !rc; i++) {
        value *v = &cfg->values[i];
        if (v->opt->def)
            rc = assign(v, v->opt->def, SRC_DEFAULT, v->opt->name, err, errlen);
    }
    if (!rc && cfg->nargs < spec->min_args) {
        set_err(err, errlen, "%s: missing argument (usage: %s)", spec->name, spec->usage);
        rc = NB_EUSAGE;
    }
    if (rc) {
        nb_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

void nb_config_free(nb_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->nvalues; i++)
        free(cfg->values[i].text);
    for (int i = 0; i < cfg->nargs; i++)
        free(cfg->args[i]);
    free(cfg->values);
    free(cfg->args);
    free(cfg);
}

bool nb_config_help_requested(const nb_config *cfg)
{
    return cfg->help;
}

const char *nb_config_str(const nb_config *cfg, const char *name)
{
    value *v = find_value(cfg, name, strlen(name));
    return v ? v->text : NULL;
}

int64_t nb_config_int(const nb_config *cfg, const char *name)
{
    value *v = find_value(cfg, name, strlen(name));
    if (!v || !v->text)
        return 0;
    int64_t r = 0;
    if (v->opt->type == NB_OPT_SIZE) {
        if (nb_parse_size(v->text, &r) != 0)
            return 0;
        return r;
    }
    return strtoll(v->text, NULL, 10);
}

double nb_config_float(const nb_config *cfg, const char *name)
{
    value *v = find_value(cfg, name, strlen(name));
    return v && v->text ? strtod(v->text, NULL) : 0.0;
}

bool nb_config_bool(const nb_config *cfg, const char *name)
{
    value *v = find_value(cfg, name, strlen(name));
    bool b = false;
    if (v && v->text && parse_bool(v->text, &b) != 0)
        b = false;
    return b;
}

const char *nb_config_source(const nb_config *cfg, const char *name)
{
    value *v = find_value(cfg, name, strlen(name));
    return source_names[v ? v->source : SRC_UNSET];
}

int nb_config_nargs(const nb_config *cfg)
{
    return cfg->nargs;
}

const char *nb_config_arg(const nb_config *cfg, int i)
{
    return i >= 0 && i < cfg->nargs ? cfg->args[i] : NULL;
}

static void print_opt(const nb_opt *o, FILE *f)
{
    char flag[96];
    if (o->type == NB_OPT_BOOL)
        snprintf(flag, sizeof flag, "--%s, --no-%s", o->name, o->name);
    else
        snprintf(flag, sizeof flag, "--%s %s", o->name, o->metavar ? o->metavar : "VALUE");
    char ename[128];
    env_name(o->name, ename, sizeof ename);
    fprintf(f, "  %-28s %s\n", flag, o->help);
    fprintf(f, "  %-28s [env %s", "", ename);
    if (o->def)
        fprintf(f, "; default %s", o->def);
    fprintf(f, "]\n");
}

void nb_config_print_help(const nb_cmd_spec *spec, FILE *f)
{
    fprintf(f, "Usage: %s\n\n%s\n\nOptions:\n", spec->usage, spec->summary);
    for (size_t i = 0; i < spec->nopts; i++)
        print_opt(&spec->opts[i], f);
    for (size_t i = 0; i < NBUILTIN; i++)
        print_opt(&builtin_opts[i], f);
    fprintf(f, "  %-28s %s\n", "-h, --help", "Show this help and exit.");
    fprintf(f, "\nPrecedence: flags > NEBULA_* environment > config file > defaults.\n");
}
