/* cmd_fsck.c — `nebula fsck|dump|load DIR`: offline tools over a server's
 * namespace (src/vfs: vfs_fsck, vfs_dump, vfs_load). The server must not
 * be running on DIR; the data directory's lock makes sure of it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "common/common.h"
#include "vfs/vfs.h"

/* Holds DIR/LOCK like a server does, so a tool never runs beside one. */
static int lock_data_dir(const char *cmd, const char *dir, int *fd)
{
    char *path = nb_xasprintf("%s/LOCK", dir);
    pid_t holder = 0;
    int rc = nb_lock_file(path, fd, &holder);
    if (rc == NB_ELOCKED)
        fprintf(stderr, "nebula %s: %s is in use by a running nebula server (pid %d)\n", cmd, dir,
                (int)holder);
    else if (rc)
        fprintf(stderr, "nebula %s: cannot lock %s: %s\n", cmd, path, nb_strerror(rc));
    free(path);
    return rc;
}

static const nb_opt fsck_opts[] = {
    {"repair", NB_OPT_BOOL, "false", NULL,
     "Fix what is safe to fix (free unreferenced blocks, collect garbage).", 0, 0},
};

static const nb_cmd_spec fsck_spec = {
    .name = "fsck",
    .usage = "nebula fsck [--repair] DIR",
    .summary = "Checks the namespace in the data directory DIR: directory entries against\n"
               "inodes, link counts, chunk maps against blocks, orphans and usage counters.\n"
               "One line per problem, then a summary. Exit 0 clean (or repaired), 1 problems\n"
               "remain, 2 cannot run.",
    .opts = fsck_opts,
    .nopts = NB_ARRAY_LEN(fsck_opts),
    .min_args = 1,
    .max_args = 1,
};

int cli_fsck(int argc, char **argv)
{
    nb_config *cfg;
    int code;
    if (!cli_parse(&fsck_spec, argc, argv, &cfg, &code))
        return code;
    const char *dir = nb_config_arg(cfg, 0);
    int lock = -1;
    code = CLI_EXIT_USAGE;
    if (lock_data_dir("fsck", dir, &lock) == 0) {
        int rc = vfs_fsck(dir, nb_config_bool(cfg, "repair"), stdout);
        if (rc == 0)
            code = CLI_EXIT_OK;
        else if (rc == NB_ECORRUPT)
            code = CLI_EXIT_FAIL;
        else
            fprintf(stderr, "nebula fsck: %s: %s\n", dir, nb_strerror(rc));
        nb_unlock_file(lock);
    }
    nb_config_free(cfg);
    return code;
}

static const nb_cmd_spec dump_spec = {
    .name = "dump",
    .usage = "nebula dump DIR > meta.json",
    .summary = "Writes the metadata of the data directory DIR (namespace, object records,\n"
               "buckets) as one readable JSON document on standard output. Blocks are not\n"
               "included: the document names slices by id.",
    .min_args = 1,
    .max_args = 1,
};

int cli_dump(int argc, char **argv)
{
    nb_config *cfg;
    int code;
    if (!cli_parse(&dump_spec, argc, argv, &cfg, &code))
        return code;
    const char *dir = nb_config_arg(cfg, 0);
    int lock = -1;
    code = CLI_EXIT_USAGE;
    if (lock_data_dir("dump", dir, &lock) == 0) {
        int rc = vfs_dump(dir, stdout);
        if (rc == 0 && fflush(stdout) != 0)
            rc = -errno;
        if (rc)
            fprintf(stderr, "nebula dump: %s: %s\n", dir, nb_strerror(rc));
        code = rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
        nb_unlock_file(lock);
    }
    nb_config_free(cfg);
    return code;
}

static const nb_cmd_spec load_spec = {
    .name = "load",
    .usage = "nebula load DIR < meta.json",
    .summary = "Loads a document written by `nebula dump` into the data directory DIR, whose\n"
               "metadata must be empty. Load it next to the same blocks it refers to.",
    .min_args = 1,
    .max_args = 1,
};

int cli_load(int argc, char **argv)
{
    nb_config *cfg;
    int code;
    if (!cli_parse(&load_spec, argc, argv, &cfg, &code))
        return code;
    const char *dir = nb_config_arg(cfg, 0);
    int lock = -1;
    code = CLI_EXIT_USAGE;
    if (lock_data_dir("load", dir, &lock) == 0) {
        int rc = vfs_load(dir, stdin);
        if (rc)
            fprintf(stderr, "nebula load: %s: %s\n", dir, nb_strerror(rc));
        code = rc ? CLI_EXIT_FAIL : CLI_EXIT_OK;
        nb_unlock_file(lock);
    }
    nb_config_free(cfg);
    return code;
}
