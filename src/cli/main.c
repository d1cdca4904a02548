/*
 * main.c — `nebula` entry point: dispatch on argv[0] (role names) and on
 * the subcommand.
 */
#include <libgen.h>
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/common.h"

typedef struct subcommand {
    const char *name;
    const char *summary;
    int (*run)(int argc, char **argv);
} subcommand;

static int cli_help(int argc, char **argv);

static const subcommand commands[] = {
    {"server", "Run everything in one process: S3 gateway, metadata, data.", cli_server},
    {"fsck", "Check (and with --repair fix) a data directory's namespace.", cli_fsck},
    {"dump", "Write a data directory's metadata as JSON.", cli_dump},
    {"load", "Load metadata written by dump into an empty data directory.", cli_load},
    {"admin", "Manage S3 users (admin user add|list|remove).", cli_admin},
    {"disk", "Check or show statistics of a disk-engine directory.", cli_disk},
    {"version", "Print the version.", cli_version},
    {"help", "Show help for nebula or one of its commands.", cli_help},
};

/* Role names that will start one part of a split deployment. They are
 * reserved now so that scripts and packages can rely on them. */
static const struct {
    const char *argv0;
    const char *role;
} roles[] = {
    {"nebula-master", "metadata service"},
    {"nebula-s3-gateway", "S3 gateway"},
    {"nebula-fuse", "FUSE client"},
};

static void usage(FILE *f)
{
    fprintf(f, "Usage: nebula <command> [OPTIONS]\n\n"
               "NebulaStore: one namespace for AI training data, served as S3 and as a POSIX\n"
               "mount.\n\nCommands:\n");
    for (size_t i = 0; i < NB_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun 'nebula <command> --help' for a command's options.\n");
}

static const subcommand *find_command(const char *name)
{
    for (size_t i = 0; i < NB_ARRAY_LEN(commands); i++)
        if (strcmp(commands[i].name, name) == 0)
            return &commands[i];
    return NULL;
}

static int cli_help(int argc, char **argv)
{
    if (argc < 1) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    const subcommand *c = find_command(argv[0]);
    if (!c || c->run == cli_help) {
        fprintf(stderr, "nebula: unknown command '%s' (see 'nebula help')\n", argv[0]);
        return CLI_EXIT_USAGE;
    }
    char help[] = "--help";
    char *args[] = {help, NULL};
    return c->run(1, args);
}

int main(int argc, char **argv)
{
    char *self = basename(argv[0]);
    for (size_t i = 0; i < NB_ARRAY_LEN(roles); i++) {
        if (strcmp(self, roles[i].argv0) == 0) {
            fprintf(stderr,
                    "%s: the %s role is not available in this build yet; "
                    "run 'nebula server' for the all-in-one server\n",
                    self, roles[i].role);
            return CLI_EXIT_USAGE;
        }
    }
    if (argc < 2) {
        usage(stderr);
        return CLI_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0) {
        usage(stdout);
        return CLI_EXIT_OK;
    }
    if (strcmp(name, "--version") == 0)
        return cli_version(0, NULL);
    const subcommand *c = find_command(name);
    if (!c) {
        fprintf(stderr, "nebula: unknown command '%s' (see 'nebula help')\n", name);
        return CLI_EXIT_USAGE;
    }
    return c->run(argc - 2, argv + 2);
}
