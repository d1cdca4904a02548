/*
 * xml.c — the XML writer for S3 responses. S3 documents are small and
 * regular: an element stack over an nb_buf, escaping, sticky errors.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/mem.h"
#include "s3/s3_int.h"

int s3_xml_escape(nb_buf *out, const char *s, size_t n)
{
    size_t start = 0;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *rep = NULL;
        char num[8];
        switch (c) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&apos;";
            break;
        default:
            if (c < 0x20 || c == 0x7f) {
                snprintf(num, sizeof num, "&#x%X;", c);
                rep = num;
            }
        }
        if (rep) {
            rc = nb_buf_append(out, s + start, i - start);
            if (!rc)
                rc = nb_buf_append_str(out, rep);
            start = i + 1;
        }
    }
    if (!rc)
        rc = nb_buf_append(out, s + start, n - start);
    return rc;
}

static void put(s3_xml *x, const char *s)
{
    if (!x->rc)
        x->rc = nb_buf_append_str(x->out, s);
}

void s3_xml_begin(s3_xml *x, nb_buf *out)
{
    memset(x, 0, sizeof *x);
    x->out = out;
    put(x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
}

static void open_tag(s3_xml *x, const char *name, bool ns)
{
    if (x->rc)
        return;
    if (x->depth >= S3_XML_DEPTH) {
        x->rc = NB_EUSAGE;
        return;
    }
    x->stack[x->depth++] = name;
    put(x, "<");
    put(x, name);
    if (ns)
        put(x, " xmlns=\"" S3_XMLNS "\"");
    put(x, ">");
}

void s3_xml_open(s3_xml *x, const char *name)
{
    open_tag(x, name, false);
}

void s3_xml_open_ns(s3_xml *x, const char *name)
{
    open_tag(x, name, true);
}

void s3_xml_close(s3_xml *x)
{
    if (x->rc)
        return;
    if (x->depth == 0) {
        x->rc = NB_EUSAGE;
        return;
    }
    const char *name = x->stack[--x->depth];
    put(x, "</");
    put(x, name);
    put(x, ">");
}

void s3_xml_elem_n(s3_xml *x, const char *name, const char *text, size_t n)
{
    if (x->rc)
        return;
    put(x, "<");
    put(x, name);
    put(x, ">");
    if (text && !x->rc)
        x->rc = s3_xml_escape(x->out, text, n);
    put(x, "</");
    put(x, name);
    put(x, ">");
}

void s3_xml_elem(s3_xml *x, const char *name, const char *text)
{
    s3_xml_elem_n(x, name, text, text ? strlen(text) : 0);
}

void s3_xml_elemf(s3_xml *x, const char *name, const char *fmt, ...)
{
    if (x->rc)
        return;
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0) {
        x->rc = NB_EINTERNAL;
        return;
    }
    s3_xml_elem_n(x, name, s, (size_t)n);
    free(s);
}

void s3_xml_elem_u64(s3_xml *x, const char *name, uint64_t v)
{
    char num[24];
    snprintf(num, sizeof num, "%llu", (unsigned long long)v);
    s3_xml_elem(x, name, num);
}

void s3_xml_elem_bool(s3_xml *x, const char *name, bool v)
{
    s3_xml_elem(x, name, v ? "true" : "false");
}

void s3_xml_elem_time(s3_xml *x, const char *name, int64_t t, int ms)
{
    char ts[32];
    s3_iso8601_format(t, ms, ts, sizeof ts);
    s3_xml_elem(x, name, ts);
}

int s3_xml_end(s3_xml *x)
{
    while (!x->rc && x->depth > 0)
        s3_xml_close(x);
    return x->rc;
}

int s3_xml_location(nb_buf *out, const char *region)
{
    s3_xml x;
    s3_xml_begin(&x, out);
    s3_xml_open_ns(&x, "LocationConstraint");
    /* us-east-1 answers with an empty constraint, as AWS does. */
    if (region && strcmp(region, "us-east-1") != 0 && !x.rc)
        x.rc = s3_xml_escape(out, region, strlen(region));
    return s3_xml_end(&x);
}

int s3_xml_copy_result(nb_buf *out, const char *etag, int64_t mtime, bool part)
{
    s3_xml x;
    s3_xml_begin(&x, out);
    s3_xml_open_ns(&x, part ? "CopyPartResult" : "CopyObjectResult");
    s3_xml_elem_time(&x, "LastModified", mtime, 0);
    s3_xml_elemf(&x, "ETag", "\"%s\"", etag);
    return s3_xml_end(&x);
}

int s3_xml_initiate_upload(nb_buf *out, const char *bucket, const char *key, const char *upload_id)
{
    s3_xml x;
    s3_xml_begin(&x, out);
    s3_xml_open_ns(&x, "InitiateMultipartUploadResult");
    s3_xml_elem(&x, "Bucket", bucket);
    s3_xml_elem(&x, "Key", key);
    s3_xml_elem(&x, "UploadId", upload_id);
    return s3_xml_end(&x);
}

int s3_xml_complete_upload(nb_buf *out, const char *location, const char *bucket, const char *key,
                           const char *etag)
{
    s3_xml x;
    s3_xml_begin(&x, out);
    s3_xml_open_ns(&x, "CompleteMultipartUploadResult");
    s3_xml_elem(&x, "Location", location);
    s3_xml_elem(&x, "Bucket", bucket);
    s3_xml_elem(&x, "Key", key);
    s3_xml_elemf(&x, "ETag", "\"%s\"", etag);
    return s3_xml_end(&x);
}

int s3_xml_versioning(nb_buf *out, const char *status)
{
    s3_xml x;
    s3_xml_begin(&x, out);
    s3_xml_open_ns(&x, "VersioningConfiguration");
    if (status)
        s3_xml_elem(&x, "Status", status);
    return s3_xml_end(&x);
}
