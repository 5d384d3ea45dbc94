/* smtp_reply.c -- the pure half of lib/smtp_client.h: parsing an SMTP reply
 * (multiline, enhanced status codes, bounded text), writing one back, and
 * reading the capabilities out of an EHLO reply.  No I/O, no allocation:
 * fuzz/fuzz_smtp_reply.c drives it directly. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "smtp_client.h"

/* A byte that the text shows as a space. */
static int is_blank(char c)
{
    return (unsigned char)c <= ' ' || c == 0x7f;
}

/* Length of an enhanced status code "C.S.D" at s (C = class, 1-3 digits
 * each after it) followed by the end or a byte shown as a space (so that
 * the reply written back parses the same); 0 if there is none. */
static size_t enh_len(const char *s, size_t len, char cls)
{
    size_t i = 1;

    if (len < 5 || s[0] != cls || s[1] != '.')
        return 0;
    for (int part = 0; part < 2; part++) {
        size_t d = 0;
        i++;                               /* past the '.' */
        while (i < len && d < 4 && s[i] >= '0' && s[i] <= '9')
            i++, d++;
        if (d == 0 || d > 3)
            return 0;
        if (part == 0 && (i >= len || s[i] != '.'))
            return 0;
    }
    return (i == len || is_blank(s[i])) ? i : 0;
}

static void text_add(struct pl_smtp_reply *r, const char *s, size_t n)
{
    size_t room = PL_SMTP_TEXT_MAX - r->textlen;

    if (n > room) {
        n = room;
        r->truncated = 1;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        r->text[r->textlen++] = (c < 0x20 || c == 0x7f) ? ' ' : (char)c;
    }
    r->text[r->textlen] = '\0';
}

int pl_smtp_reply_line(struct pl_smtp_reply *r, const char *line, size_t len)
{
    int code, last;
    const char *t;
    size_t tlen, e;

    if (len < 3 || len > PL_SMTP_LINE_MAX || line[0] < '2' || line[0] > '5'
        || line[1] < '0' || line[1] > '9' || line[2] < '0' || line[2] > '9')
        return -1;
    code = (line[0] - '0') * 100 + (line[1] - '0') * 10 + (line[2] - '0');
    if (len == 3)
        last = 1;
    else if (line[3] == ' ')
        last = 1;
    else if (line[3] == '-')
        last = 0;
    else
        return -1;
    if (r->nlines > 0 && code != r->code)
        return -1;
    t = len > 3 ? line + 4 : line + 3;
    tlen = len > 3 ? len - 4 : 0;
    if (r->nlines == 0) {
        r->code = code;
        r->text[0] = '\0';
        if ((e = enh_len(t, tlen, line[0])) > 0) {
            memcpy(r->enh, t, e);
            r->enh[e] = '\0';
        }
    } else {
        e = strlen(r->enh);
        if (e == 0 || tlen < e || memcmp(t, r->enh, e) != 0 || (tlen > e && !is_blank(t[e])))
            e = 0;
        if (r->textlen < PL_SMTP_TEXT_MAX) {   /* the line separator */
            r->text[r->textlen++] = '\n';
            r->text[r->textlen] = '\0';
        } else {
            r->truncated = 1;
        }
    }
    if (e > 0) {                           /* drop the code and the spaces after it */
        t += e;
        tlen -= e;
        while (tlen > 0 && *t == ' ')
            t++, tlen--;
    }
    text_add(r, t, tlen);
    r->nlines++;
    return last;
}

int pl_smtp_reply_parse(const char *buf, size_t len, struct pl_smtp_reply *r, size_t *consumed)
{
    size_t off = 0;

    memset(r, 0, sizeof(*r));
    *consumed = 0;
    for (;;) {
        const char *nl = memchr(buf + off, '\n', len - off);
        size_t n;
        int rc;
        if (nl == NULL)                    /* room for the line and its CR */
            return len - off > PL_SMTP_LINE_MAX + 1 ? -1 : 0;
        n = (size_t)(nl - (buf + off));
        if (n > 0 && buf[off + n - 1] == '\r')
            n--;
        if (n > PL_SMTP_LINE_MAX)
            return -1;
        rc = pl_smtp_reply_line(r, buf + off, n);
        off = (size_t)(nl + 1 - buf);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            *consumed = off;
            return 1;
        }
    }
}

size_t pl_smtp_reply_format(const struct pl_smtp_reply *r, char *buf, size_t len)
{
    const char *t = r->text, *end = r->text + r->textlen;
    size_t o = 0;

    if (r->code < 200 || r->code > 599)
        return 0;
    for (;;) {
        const char *nl = memchr(t, '\n', (size_t)(end - t));
        size_t n = nl ? (size_t)(nl - t) : (size_t)(end - t);
        int k = snprintf(buf + o, len - o, "%d%c%s%s%.*s\r\n", r->code, nl ? '-' : ' ',
                         r->enh, r->enh[0] && n ? " " : "", (int)n, t);
        if (k < 0 || (size_t)k >= len - o)
            return 0;
        o += (size_t)k;
        if (nl == NULL)
            return o;
        t = nl + 1;
    }
}

/* Does the keyword at s (n bytes, up to a space or the end) equal kw? */
static int kw_is(const char *s, size_t n, const char *kw)
{
    return n == strlen(kw) && strncasecmp(s, kw, n) == 0;
}

void pl_smtp_caps_parse(const struct pl_smtp_reply *r, struct pl_smtp_caps *caps)
{
    const char *t = r->text, *end = r->text + r->textlen;

    memset(caps, 0, sizeof(*caps));
    if (r->code < 200 || r->code > 299)
        return;
    t = memchr(t, '\n', (size_t)(end - t));    /* the first line names the server */
    while (t != NULL && t < end) {
        const char *line = t + 1, *nl = memchr(line, '\n', (size_t)(end - line));
        const char *le = nl ? nl : end, *sp;
        size_t n;
        while (line < le && *line == ' ')
            line++;
        sp = memchr(line, ' ', (size_t)(le - line));
        n = (size_t)((sp ? sp : le) - line);
        if (kw_is(line, n, "PIPELINING")) {
            caps->pipelining = 1;
        } else if (kw_is(line, n, "8BITMIME")) {
            caps->eightbitmime = 1;
        } else if (kw_is(line, n, "SMTPUTF8")) {
            caps->smtputf8 = 1;
        } else if (kw_is(line, n, "DSN")) {
            caps->dsn = 1;
        } else if (kw_is(line, n, "ENHANCEDSTATUSCODES")) {
            caps->enhancedstatuscodes = 1;
        } else if (kw_is(line, n, "SIZE")) {
            unsigned long long v = 0;
            const char *p = line + n;
            caps->size = 1;
            while (p < le && *p == ' ')
                p++;
            for (; p < le && *p >= '0' && *p <= '9'; p++) {
                if (v > (~0ULL - 9) / 10) {
                    v = 0;                 /* absurd: as if no limit were given */
                    break;
                }
                v = v * 10 + (unsigned)(*p - '0');
            }
            caps->size_max = v;
        } else if (kw_is(line, n, "XCLIENT")) {
            const char *p = line + n;
            caps->xclient = 1;
            while (p < le) {
                const char *a, *ae;
                while (p < le && *p == ' ')
                    p++;
                a = p;
                while (p < le && *p != ' ')
                    p++;
                ae = p;
                if (kw_is(a, (size_t)(ae - a), "ADDR"))
                    caps->xclient_attrs |= PL_SMTP_XCLIENT_ADDR;
                else if (kw_is(a, (size_t)(ae - a), "NAME"))
                    caps->xclient_attrs |= PL_SMTP_XCLIENT_NAME;
                else if (kw_is(a, (size_t)(ae - a), "PROTO"))
                    caps->xclient_attrs |= PL_SMTP_XCLIENT_PROTO;
                else if (kw_is(a, (size_t)(ae - a), "HELO"))
                    caps->xclient_attrs |= PL_SMTP_XCLIENT_HELO;
            }
        }                                  /* CHUNKING, AUTH, ...: ignored */
        t = nl;
    }
}
