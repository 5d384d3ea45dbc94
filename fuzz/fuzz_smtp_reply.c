/* fuzz_smtp_reply.c -- libFuzzer target: the SMTP reply parser and the EHLO
 * capability parser of lib/smtp_client.h (lib/smtp_reply.c), as the client
 * meets what a server sends.  The input is a stream of replies; each parsed
 * reply is checked against the same lines fed one at a time, read for
 * capabilities, written back and parsed again. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "smtp_client.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static volatile unsigned sum;

/* The reply at buf[0..len) fed line by line must give the same result. */
static void check_by_lines(const char *buf, size_t len, const struct pl_smtp_reply *want)
{
    static struct pl_smtp_reply r;
    size_t off = 0;
    int rc = 0;

    memset(&r, 0, sizeof(r));
    while (off < len) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t n;
        if (nl == NULL)
            abort();                              /* a complete reply ends with LF */
        n = (size_t)(nl - (buf + off));
        if (n > 0 && buf[off + n - 1] == '\r')
            n--;
        rc = pl_smtp_reply_line(&r, buf + off, n);
        off = (size_t)(nl + 1 - buf);
        if (rc != 0)
            break;
    }
    if (rc != 1 || off != len || r.code != want->code || strcmp(r.enh, want->enh) != 0
        || r.textlen != want->textlen || memcmp(r.text, want->text, r.textlen) != 0
        || r.nlines != want->nlines)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pl_smtp_reply r, again;
    static char out[PL_SMTP_TEXT_MAX * 2 + 4096];
    const char *buf = (const char *)data;
    size_t off = 0;

    for (int i = 0; i < 1000 && off < size; i++) {
        struct pl_smtp_caps caps;
        size_t used = 0, n;
        int rc = pl_smtp_reply_parse(buf + off, size - off, &r, &used);
        if (rc != 1) {
            if (rc != 0 && rc != -1)
                abort();
            if (used != 0)
                abort();
            break;
        }
        if (used == 0 || used > size - off)
            abort();
        if (r.code < 200 || r.code > 599 || r.nlines == 0 || r.textlen > PL_SMTP_TEXT_MAX
            || strlen(r.text) != r.textlen || strlen(r.enh) >= sizeof(r.enh)
            || (r.enh[0] != '\0' && r.enh[0] != '0' + r.code / 100))
            abort();
        for (size_t k = 0; k < r.textlen; k++)    /* no control bytes but the separators */
            if (((unsigned char)r.text[k] < 0x20 && r.text[k] != '\n') || r.text[k] == 0x7f)
                abort();
        check_by_lines(buf + off, used, &r);
        pl_smtp_caps_parse(&r, &caps);
        if (caps.size_max != 0 && !caps.size)
            abort();
        if (caps.xclient_attrs != 0 && !caps.xclient)
            abort();
        sum += (unsigned)caps.pipelining + (unsigned)caps.dsn;
        n = pl_smtp_reply_format(&r, out, sizeof(out));
        if (n != 0) {
            size_t used2;
            int rc2 = pl_smtp_reply_parse(out, n, &again, &used2);
            /* may be refused when a line grew past LINE_MAX with the code */
            if (rc2 == 0 || (rc2 == 1 && (used2 != n || again.code != r.code
                                          || strcmp(again.enh, r.enh) != 0
                                          || (!r.truncated && again.nlines != r.nlines))))
                abort();
        }
        off += used;
    }
    return 0;
}
