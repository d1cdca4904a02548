/* common_cli.c — argument handling shared by the subcommands. */
#include <stdio.h>

#include "cli/cli.h"
#include "common/common.h"

int cli_parse(const nb_cmd_spec *spec, int argc, char **argv, nb_config **cfg, int *exit_code)
{
    char err[512];
    *cfg = NULL;
    int rc = nb_config_parse(spec, argc, argv, cfg, err, sizeof err);
    if (rc) {
        fprintf(stderr, "nebula %s\n", err);
        *exit_code = CLI_EXIT_USAGE;
        return 0;
    }
    if (nb_config_help_requested(*cfg)) {
        nb_config_print_help(spec, stdout);
        nb_config_free(*cfg);
        *cfg = NULL;
        *exit_code = CLI_EXIT_OK;
        return 0;
    }
    nb_log_level level;
    if (nb_log_level_parse(nb_config_str(*cfg, "log-level"), &level) != 0) {
        fprintf(stderr,
                "nebula %s: --log-level: '%s' is not one of debug, info, warn, error, off\n",
                spec->name, nb_config_str(*cfg, "log-level"));
        nb_config_free(*cfg);
        *cfg = NULL;
        *exit_code = CLI_EXIT_USAGE;
        return 0;
    }
    nb_log_set_level(level);
    return 1;
}

int cli_version(int argc, char **argv)
{
    static const nb_cmd_spec spec = {
        .name = "version",
        .usage = "nebula version",
        .summary = "Prints the NebulaStore version.",
    };
    nb_config *cfg;
    int code;
    if (!cli_parse(&spec, argc, argv, &cfg, &code))
        return code;
    nb_config_free(cfg);
    printf("nebula %s\n", NB_VERSION);
    return CLI_EXIT_OK;
}
