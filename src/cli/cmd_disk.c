/* cmd_disk.c — `nebula disk check|stats DIR`, `nebula disk add-file DIR
 * PATH`: the disk engine's offline
 * tools (src/disk/disk_tool.c), behind the CLI's option conventions. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "common/common.h"
#include "disk/disk.h"

static const nb_cmd_spec disk_spec = {
    .name = "disk",
    .usage = "nebula disk check|stats DIR | nebula disk add-file DIR PATH",
    .summary = "Offline tools for a disk-engine directory (the server must not be running on it):\n"
               "  check DIR   recover read-only and verify every blob's CRC32C;\n"
               "              exit 0 healthy, 1 damage found, 2 cannot open\n"
               "  stats DIR   capacity, blob count, WAL and allocator figures\n"
               "  add-file DIR PATH   add a data file (a new file, or a block device used\n"
               "              whole; relative to DIR unless absolute); later opens need it",
    .min_args = 2,
    .max_args = 3,
};

int cli_disk(int argc, char **argv)
{
    nb_config *cfg;
    int code;
    if (!cli_parse(&disk_spec, argc, argv, &cfg, &code))
        return code;
    const char *verb = nb_config_arg(cfg, 0);
    int add = strcmp(verb, "add-file") == 0;
    int nargs = nb_config_nargs(cfg);
    if (!add && strcmp(verb, "check") != 0 && strcmp(verb, "stats") != 0) {
        fprintf(stderr, "nebula disk: unknown action '%s' (check, stats or add-file)\n", verb);
        nb_config_free(cfg);
        return CLI_EXIT_USAGE;
    }
    if (nargs != (add ? 3 : 2)) {
        fprintf(stderr, "nebula disk: %s takes %s\n", verb, add ? "DIR PATH" : "DIR");
        nb_config_free(cfg);
        return CLI_EXIT_USAGE;
    }
    char prog[] = "nebula disk";
    char *args[] = {prog, (char *)verb, (char *)nb_config_arg(cfg, 1),
                    add ? (char *)nb_config_arg(cfg, 2) : NULL, NULL};
    code = disk_tool_main(add ? 4 : 3, args);
    nb_config_free(cfg);
    return code;
}
