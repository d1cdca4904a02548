/*
 * json.c — a small JSON reader and string writer for vfs_dump/vfs_load.
 * Numbers are kept as text (64-bit values must survive exactly); strings
 * are byte strings: the writer escapes every byte outside printable ASCII
 * as \u00XX and the reader turns \u00XX back into that one byte, so names
 * that are not UTF-8 round-trip (docs/vfs.md "Dump format").
 */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"
#include "vfs/vfs_json.h"

void vfs__json_put_str(FILE *out, const char *s, size_t n)
{
    fputc('"', out);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\')
            fprintf(out, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(out, "\\u%04x", c);
        else
            fputc(c, out);
    }
    fputc('"', out);
}

typedef struct parser {
    const char *p, *end;
    int depth;
} parser;

static void skip_ws(parser *ps)
{
    while (ps->p < ps->end && isspace((unsigned char)*ps->p))
        ps->p++;
}

static void add_kid(vfs__json *j, vfs__json *kid, char *key)
{
    if (j->n % 16 == 0) {
        j->kids = nb_xrealloc(j->kids, (j->n + 16) * sizeof(*j->kids));
        j->keys = nb_xrealloc(j->keys, (j->n + 16) * sizeof(*j->keys));
    }
    j->kids[j->n] = kid;
    j->keys[j->n] = key;
    j->n++;
}

static int parse_string(parser *ps, char **out, size_t *len)
{
    if (ps->p >= ps->end || *ps->p != '"')
        return NB_CORRUPT("json: string expected");
    ps->p++;
    nb_buf b = NB_BUF_INIT;
    int rc = 0;
    while (rc == 0) {
        if (ps->p >= ps->end) {
            rc = NB_CORRUPT("json: unterminated string");
            break;
        }
        char c = *ps->p++;
        if (c == '"')
            break;
        if (c != '\\') {
            rc = nb_buf_put_u8(&b, (uint8_t)c);
            continue;
        }
        if (ps->p >= ps->end) {
            rc = NB_CORRUPT("json: bad escape");
            break;
        }
        c = *ps->p++;
        uint8_t v = 0;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            v = (uint8_t)c;
            break;
        case 'b':
            v = '\b';
            break;
        case 'f':
            v = '\f';
            break;
        case 'n':
            v = '\n';
            break;
        case 'r':
            v = '\r';
            break;
        case 't':
            v = '\t';
            break;
        case 'u': {
            if (ps->end - ps->p < 4) {
                rc = NB_CORRUPT("json: bad \\u escape");
                break;
            }
            char hex[5] = {ps->p[0], ps->p[1], ps->p[2], ps->p[3], 0};
            char *e;
            unsigned long u = strtoul(hex, &e, 16);
            ps->p += 4;
            if (*e || u > 0xff) {
                rc = NB_CORRUPT("json: \\u%s is not a byte escape", hex);
                break;
            }
            v = (uint8_t)u;
            break;
        }
        default:
            rc = NB_CORRUPT("json: bad escape \\%c", c);
        }
        if (rc == 0)
            rc = nb_buf_put_u8(&b, v);
    }
    if (rc == 0)
        rc = nb_buf_nul_terminate(&b);
    if (rc != 0) {
        nb_buf_free(&b);
        return rc;
    }
    *len = b.len;
    *out = b.data ? (char *)nb_buf_take(&b, NULL) : nb_xstrdup("");
    return 0;
}

static int parse_value(parser *ps, vfs__json **out);

static int parse_container(parser *ps, vfs__json *j, bool obj)
{
    char close = obj ? '}' : ']';
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        return 0;
    }
    for (;;) {
        char *key = NULL;
        size_t kl;
        skip_ws(ps);
        if (obj) {
            int rc = parse_string(ps, &key, &kl);
            if (rc != 0)
                return rc;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') {
                free(key);
                return NB_CORRUPT("json: ':' expected");
            }
            ps->p++;
        }
        vfs__json *kid = NULL;
        int rc = parse_value(ps, &kid);
        if (rc != 0) {
            free(key);
            return rc;
        }
        add_kid(j, kid, key);
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') {
            ps->p++;
            continue;
        }
        if (ps->p < ps->end && *ps->p == close) {
            ps->p++;
            return 0;
        }
        return NB_CORRUPT("json: ',' or '%c' expected", close);
    }
}

static int parse_value(parser *ps, vfs__json **out)
{
    skip_ws(ps);
    if (ps->p >= ps->end)
        return NB_CORRUPT("json: value expected");
    if (++ps->depth > 64)
        return NB_CORRUPT("json: nested too deeply");
    vfs__json *j = nb_xcalloc(1, sizeof(*j));
    *out = j;
    int rc = 0;
    char c = *ps->p;
    if (c == '{' || c == '[') {
        j->type = c == '{' ? VFS__J_OBJ : VFS__J_ARR;
        rc = parse_container(ps, j, c == '{');
    } else if (c == '"') {
        j->type = VFS__J_STR;
        rc = parse_string(ps, &j->str, &j->len);
    } else if (c == '-' || isdigit((unsigned char)c)) {
        const char *s = ps->p;
        while (ps->p < ps->end && (isdigit((unsigned char)*ps->p) || strchr("+-.eE", *ps->p)))
            ps->p++;
        j->type = VFS__J_NUM;
        j->str = nb_xstrndup(s, (size_t)(ps->p - s));
        j->len = (size_t)(ps->p - s);
    } else if (ps->end - ps->p >= 4 && !memcmp(ps->p, "true", 4)) {
        j->type = VFS__J_BOOL;
        j->b = true;
        ps->p += 4;
    } else if (ps->end - ps->p >= 5 && !memcmp(ps->p, "false", 5)) {
        j->type = VFS__J_BOOL;
        ps->p += 5;
    } else if (ps->end - ps->p >= 4 && !memcmp(ps->p, "null", 4)) {
        j->type = VFS__J_NULL;
        ps->p += 4;
    } else {
        rc = NB_CORRUPT("json: unexpected '%c'", c);
    }
    ps->depth--;
    return rc;
}

int vfs__json_parse(const char *text, size_t len, vfs__json **out)
{
    parser ps = {text, text + len, 0};
    *out = NULL;
    vfs__json *j = NULL;
    int rc = parse_value(&ps, &j);
    if (rc == 0) {
        skip_ws(&ps);
        if (ps.p != ps.end)
            rc = NB_CORRUPT("json: trailing bytes");
    }
    if (rc != 0) {
        vfs__json_free(j);
        return rc;
    }
    *out = j;
    return 0;
}

void vfs__json_free(vfs__json *j)
{
    if (!j)
        return;
    for (size_t i = 0; i < j->n; i++) {
        vfs__json_free(j->kids[i]);
        free(j->keys[i]);
    }
    free(j->kids);
    free(j->keys);
    free(j->str);
    free(j);
}

const vfs__json *vfs__json_get(const vfs__json *obj, const char *key)
{
    if (!obj || obj->type != VFS__J_OBJ)
        return NULL;
    for (size_t i = 0; i < obj->n; i++)
        if (strcmp(obj->keys[i], key) == 0)
            return obj->kids[i];
    return NULL;
}

uint64_t vfs__json_u64(const vfs__json *obj, const char *key, uint64_t dflt)
{
    const vfs__json *j = vfs__json_get(obj, key);
    if (!j || j->type != VFS__J_NUM)
        return dflt;
    return j->str[0] == '-' ? (uint64_t)strtoll(j->str, NULL, 10) : strtoull(j->str, NULL, 10);
}

const char *vfs__json_str(const vfs__json *obj, const char *key, size_t *len)
{
    const vfs__json *j = vfs__json_get(obj, key);
    if (!j || j->type != VFS__J_STR)
        return NULL;
    if (len)
        *len = j->len;
    return j->str;
}
