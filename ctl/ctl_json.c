/* ctl_json.c -- JSON output of postlinkctl with jansson (ctl_json.h):
 * valid UTF-8 for any bytes found in the store, compact printing. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include "ctl_json.h"
#include "store.h"
#include "strutil.h"

/* Length of the well-formed UTF-8 sequence at p (Unicode table 3-7), or 0
 * and in *bad the length of its maximal ill-formed subpart (at least 1). */
static size_t utf8_seq(const unsigned char *p, size_t *bad)
{
    unsigned char lo = 0x80, hi = 0xBF;
    size_t need, i;

    if (p[0] < 0x80)
        return 1;
    if (p[0] >= 0xC2 && p[0] <= 0xDF)
        need = 2;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF)
        need = 3;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4)
        need = 4;
    else {
        *bad = 1;
        return 0;
    }
    if (p[0] == 0xE0)
        lo = 0xA0;          /* no overlong 3-byte forms */
    else if (p[0] == 0xED)
        hi = 0x9F;          /* no UTF-16 surrogates */
    else if (p[0] == 0xF0)
        lo = 0x90;          /* no overlong 4-byte forms */
    else if (p[0] == 0xF4)
        hi = 0x8F;          /* nothing above U+10FFFF */
    for (i = 1; i < need; i++) {
        if (p[i] < lo || p[i] > hi) {   /* a NUL terminator fails here too */
            *bad = i;
            return 0;
        }
        lo = 0x80;
        hi = 0xBF;
    }
    return need;
}

json_t *ctl_json_string(const char *s)
{
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    struct pl_strbuf b = {0};
    json_t *v;

    while (*p) {
        size_t bad = 0, n = utf8_seq(p, &bad);
        if (n > 0) {
            pl_strbuf_addn(&b, (const char *)p, n);
            p += n;
        } else {
            pl_strbuf_adds(&b, "\xEF\xBF\xBD");   /* U+FFFD */
            p += bad;
        }
    }
    v = json_stringn(b.s ? b.s : "", b.len);
    pl_strbuf_free(&b);
    return v;
}

int ctl_json_print(json_t *v)
{
    int rc = 0;

    if (v == NULL) {
        fprintf(stderr, "postlinkctl: out of memory while writing JSON\n");
        return -1;
    }
    if (json_dumpf(v, stdout, JSON_COMPACT | JSON_REAL_PRECISION(6)) < 0 || putchar('\n') == EOF ||
        fflush(stdout) == EOF) {
        fprintf(stderr, "postlinkctl: cannot write the JSON output\n");
        rc = -1;
    }
    json_decref(v);
    return rc;
}

int ctl_json_output(int rc, int json, json_t *rows, struct pl_strbuf *text)
{
    if (rc == PL_OK && json && ctl_json_print(json_incref(rows)) < 0)
        rc = PL_ERR;
    else if (rc == PL_OK && !json && text->s)
        fputs(text->s, stdout);
    json_decref(rows);
    pl_strbuf_free(text);
    return rc;
}
