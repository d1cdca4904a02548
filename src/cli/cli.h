/*
 * cli.h — the `nebula` program's subcommands. Each returns the process exit
 * status: 0 success, 1 failure at run time, 2 bad usage (CLI_EXIT_*).
 */
#ifndef NB_CLI_CLI_H
#define NB_CLI_CLI_H

#include "common/config.h"

enum { CLI_EXIT_OK = 0, CLI_EXIT_FAIL = 1, CLI_EXIT_USAGE = 2 };

int cli_server(int argc, char **argv);
int cli_version(int argc, char **argv);
int cli_disk(int argc, char **argv);
int cli_fsck(int argc, char **argv);
int cli_dump(int argc, char **argv);
int cli_load(int argc, char **argv);
int cli_admin(int argc, char **argv);

/* Parses a subcommand's arguments; on --help prints help and returns with
 * *exit_code = 0 and *cfg NULL; on bad usage prints one line and sets
 * *exit_code = 2. Returns 1 when the command should go on. Also applies
 * --log-level. */
int cli_parse(const nb_cmd_spec *spec, int argc, char **argv, nb_config **cfg, int *exit_code);

#endif
