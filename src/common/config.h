/*
 * config.h — command options from four sources, strongest first:
 *
 *   1. command-line flags        --port 9000, --port=9000, --flag, --no-flag
 *   2. environment               NEBULA_PORT=9000 (name upper-cased, '-' → '_')
 *   3. a config file             `port = 9000` lines, named by --config FILE
 *                                or NEBULA_CONFIG; '#' starts a comment
 *   4. the option's default
 *
 * Every command describes its options in an nb_opt table; the same table
 * drives parsing, validation and `--help`, so no option goes undocumented.
 * Every command also accepts --config, --log-level and --help.
 *
 * Thread safety: parse once at start-up; reading a parsed config from
 * several threads is safe.
 */
#ifndef NB_COMMON_CONFIG_H
#define NB_COMMON_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "common/status.h"

typedef enum {
    NB_OPT_STR,
    NB_OPT_INT,   /* decimal integer within [min, max] */
    NB_OPT_BOOL,  /* true/false/yes/no/on/off/1/0 */
    NB_OPT_SIZE,  /* bytes with an optional K/M/G/T suffix (powers of 1024) */
    NB_OPT_FLOAT, /* a decimal number within [min, max] */
} nb_opt_type;

typedef struct nb_opt {
    const char *name; /* flag without "--", config-file key, env suffix */
    nb_opt_type type;
    const char *def;     /* default as text; NULL: unset */
    const char *metavar; /* shown in --help, e.g. "DIR" */
    const char *help;    /* one sentence */
    int64_t min, max;    /* bounds for INT and SIZE; both 0: unbounded */
} nb_opt;

typedef struct nb_cmd_spec {
    const char *name;    /* "server" */
    const char *usage;   /* "nebula server [OPTIONS]" */
    const char *summary; /* what the command does, a paragraph */
    const nb_opt *opts;
    size_t nopts;
    int max_args; /* positional arguments accepted */
    int min_args;
} nb_cmd_spec;

typedef struct nb_config nb_config;

/* Parses argv (the arguments after the command name) against spec, then
 * the environment and the config file. On success *out is an owned config
 * (free with nb_config_free). On bad input returns NB_EUSAGE with a
 * one-line message naming the problem in err; *out is NULL. When --help is
 * given, parsing stops there and nb_config_help_requested() is true. */
int nb_config_parse(const nb_cmd_spec *spec, int argc, char **argv, nb_config **out, char *err,
                    size_t errlen) NB_MUST_CHECK;
void nb_config_free(nb_config *cfg);

bool nb_config_help_requested(const nb_config *cfg);
/* The value of option `name`, or NULL when unset. Borrowed from cfg. */
const char *nb_config_str(const nb_config *cfg, const char *name);
/* Typed values; the value was validated at parse time. An unset option
 * reads as 0/false. */
int64_t nb_config_int(const nb_config *cfg, const char *name);
double nb_config_float(const nb_config *cfg, const char *name);
bool nb_config_bool(const nb_config *cfg, const char *name);
/* Where the value came from: "flag", "env", "file", "default" or "unset". */
const char *nb_config_source(const nb_config *cfg, const char *name);
int nb_config_nargs(const nb_config *cfg);
const char *nb_config_arg(const nb_config *cfg, int i);

/* Prints usage, summary and every option with its default and env name. */
void nb_config_print_help(const nb_cmd_spec *spec, FILE *f);

/* Parses a size like "64M" or "4096" into bytes. */
int nb_parse_size(const char *s, int64_t *out) NB_MUST_CHECK;

#endif
