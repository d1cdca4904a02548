/*
 * vfs_json.h — private to src/vfs: the JSON reader and string writer of
 * vfs_dump/vfs_load (json.c).
 */
#ifndef NB_VFS_VFS_JSON_H
#define NB_VFS_VFS_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum { VFS__J_NULL, VFS__J_BOOL, VFS__J_NUM, VFS__J_STR, VFS__J_ARR, VFS__J_OBJ };

typedef struct vfs__json {
    int type;
    bool b;
    char *str; /* strings (bytes, NUL-terminated) and numbers (their text) */
    size_t len;
    struct vfs__json **kids; /* arrays and objects */
    char **keys;             /* objects */
    size_t n;
} vfs__json;

/* Writes s[0, n) as a JSON string, bytes outside printable ASCII as \u00XX. */
void vfs__json_put_str(FILE *out, const char *s, size_t n);
/* Parses text; *out is owned (vfs__json_free). NB_ECORRUPT on bad input. */
int vfs__json_parse(const char *text, size_t len, vfs__json **out);
void vfs__json_free(vfs__json *j);
const vfs__json *vfs__json_get(const vfs__json *obj, const char *key);
uint64_t vfs__json_u64(const vfs__json *obj, const char *key, uint64_t dflt);
const char *vfs__json_str(const vfs__json *obj, const char *key, size_t *len);

#endif
