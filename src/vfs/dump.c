/*
 * dump.c — `nebula dump` and `nebula load`: the metadata as one readable
 * JSON document (docs/vfs.md "Dump format").
 */
#include <errno.h>

#include "vfs/vfs_int.h"

int vfs_dump(const char *data_dir, FILE *json_out)
{
    (void)data_dir;
    (void)json_out;
    return -ENOTSUP;
}

int vfs_load(const char *data_dir, FILE *json_in)
{
    (void)data_dir;
    (void)json_in;
    return -ENOTSUP;
}
