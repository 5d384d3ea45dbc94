/* pop3_parse.c -- the pure parsers of lib/pop3_client.h (no I/O; what
 * fuzz/fuzz_pop3.c drives): status lines with RFC 2449 response codes,
 * CAPA lines, LIST and UIDL lines, and the multi-line body decoder
 * (dot-unstuffing, CRLF line ends, the terminating ".CRLF" found across
 * chunks of any size). */
#include "config.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

#include "pop3_client.h"

#define NUM_MAX 1000000000UL               /* message numbers above this are refused */

/* RFC 2449 rchar: %x21-2E / %x30-5C / %x5E-7F ('/' separates levels). */
static int rchar(unsigned char c)
{
    return c >= 0x21 && c <= 0x7f && c != '/' && c != ']';
}

int pl_pop3_status_parse(const char *line, size_t len, char *code, size_t codelen,
                         const char **text)
{
    size_t i, k;
    int ok;

    if (code != NULL && codelen > 0)
        code[0] = '\0';
    if (text != NULL)
        *text = line + len;
    if (len >= 3 && memcmp(line, "+OK", 3) == 0)
        ok = 1, i = 3;
    else if (len >= 4 && memcmp(line, "-ERR", 4) == 0)
        ok = 0, i = 4;
    else
        return -1;
    if (i < len && line[i] != ' ')
        return -1;                         /* "+OKAY" is not a status */
    while (i < len && line[i] == ' ')
        i++;
    if (i < len && line[i] == '[') {       /* [LEVEL/LEVEL] */
        size_t j = i + 1;
        int good = 1;
        for (;;) {
            size_t s = j;
            while (j < len && rchar((unsigned char)line[j]))
                j++;
            if (j == s) {
                good = 0;
                break;
            }
            if (j < len && line[j] == '/') {
                j++;
                continue;
            }
            break;
        }
        if (good && j < len && line[j] == ']') {
            if (code != NULL && codelen > 0) {
                k = j - (i + 1);
                if (k >= codelen)
                    k = codelen - 1;
                memcpy(code, line + i + 1, k);
                code[k] = '\0';
            }
            i = j + 1;
            while (i < len && line[i] == ' ')
                i++;
        }
    }
    if (text != NULL)
        *text = line + i;
    return ok;
}

/* Case-insensitive: does word[0..n) equal s? */
static int word_is(const char *word, size_t n, const char *s)
{
    return strlen(s) == n && strncasecmp(word, s, n) == 0;
}

/* A decimal number of at most 9 digits: its value, or -1. */
static long small_num(const char *s, size_t n)
{
    long v = 0;
    if (n == 0 || n > 9)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

void pl_pop3_caps_line(struct pl_pop3_caps *c, const char *line, size_t len)
{
    const char *w[8];
    size_t wl[8], nw = 0, i = 0;

    while (nw < 8) {                       /* split on spaces */
        while (i < len && line[i] == ' ')
            i++;
        if (i >= len)
            break;
        w[nw] = line + i;
        while (i < len && line[i] != ' ')
            i++;
        wl[nw] = (size_t)(line + i - w[nw]);
        nw++;
    }
    if (nw == 0)
        return;
    if (word_is(w[0], wl[0], "TOP"))
        c->top = 1;
    else if (word_is(w[0], wl[0], "UIDL"))
        c->uidl = 1;
    else if (word_is(w[0], wl[0], "USER"))
        c->user = 1;
    else if (word_is(w[0], wl[0], "PIPELINING"))
        c->pipelining = 1;
    else if (word_is(w[0], wl[0], "STLS"))
        c->stls = 1;
    else if (word_is(w[0], wl[0], "RESP-CODES"))
        c->resp_codes = 1;
    else if (word_is(w[0], wl[0], "AUTH-RESP-CODE"))
        c->auth_resp_code = 1;
    else if (word_is(w[0], wl[0], "SASL")) {
        for (size_t k = 1; k < nw; k++)
            if (word_is(w[k], wl[k], "PLAIN"))
                c->sasl_plain = 1;
    } else if (word_is(w[0], wl[0], "EXPIRE") && nw >= 2) {
        long v = word_is(w[1], wl[1], "NEVER") ? -2 : small_num(w[1], wl[1]);
        if (v != -1) {
            c->expire = v;
            c->expire_per_user = nw >= 3 && word_is(w[2], wl[2], "USER");
        }
    } else if (word_is(w[0], wl[0], "LOGIN-DELAY") && nw >= 2) {
        long v = small_num(w[1], wl[1]);
        if (v >= 0)
            c->login_delay = v;
    } else if (word_is(w[0], wl[0], "IMPLEMENTATION") && nw >= 2) {
        size_t s = (size_t)(w[1] - line), k = 0;
        for (; s < len && k + 1 < sizeof(c->implementation); s++) {
            unsigned char ch = (unsigned char)line[s];
            c->implementation[k++] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
        }
        c->implementation[k] = '\0';
    }
}

/* An unsigned decimal at line[*i..], at most 20 digits, no overflow. */
static int parse_ull(const char *line, size_t len, size_t *i, unsigned long long *v)
{
    size_t s = *i;
    *v = 0;
    while (*i < len && line[*i] >= '0' && line[*i] <= '9') {
        unsigned d = (unsigned)(line[*i] - '0');
        if (*v > (~0ULL - d) / 10)
            return -1;
        *v = *v * 10 + d;
        (*i)++;
    }
    return *i > s ? 0 : -1;
}

/* "a b" with a <= NUM_MAX, then the end or a space and anything (RFC 1939
 * allows more after a scan listing's size). */
static int two_numbers(const char *line, size_t len, unsigned long *a, unsigned long long *b)
{
    unsigned long long x;
    size_t i = 0;
    if (parse_ull(line, len, &i, &x) != 0 || x > NUM_MAX || i >= len || line[i] != ' ')
        return -1;
    i++;
    if (parse_ull(line, len, &i, b) != 0 || (i < len && line[i] != ' '))
        return -1;
    *a = (unsigned long)x;
    return 0;
}

int pl_pop3_list_parse(const char *line, size_t len, unsigned long *msgno,
                       unsigned long long *size)
{
    unsigned long n;
    unsigned long long s;
    if (two_numbers(line, len, &n, &s) != 0 || n == 0)
        return -1;
    *msgno = n;
    *size = s;
    return 0;
}

int pl_pop3_uidl_parse(const char *line, size_t len, unsigned long *msgno, char *id,
                       const char **why)
{
    size_t i = 0, n = 0;
    unsigned long v = 0;

    while (i < len && line[i] >= '0' && line[i] <= '9') {
        if (v > NUM_MAX / 10) {
            *why = "message number too large";
            return -1;
        }
        v = v * 10 + (unsigned long)(line[i++] - '0');
    }
    if (i == 0 || v == 0) {
        *why = i == 0 ? "no message number" : "message number 0";
        return -1;
    }
    if (i >= len || line[i] != ' ') {
        *why = "no space after the message number";
        return -1;
    }
    i++;
    while (i + n < len && line[i + n] >= 0x21 && line[i + n] <= 0x7e)
        n++;
    if (n == 0 || i + n != len) {
        *why = i + n == len ? "no unique id" : "the unique id has a character outside 0x21-0x7E";
        return -1;
    }
    if (n > PL_POP3_ID_MAX) {
        *why = "unique id longer than 70 characters";
        return -1;
    }
    memcpy(id, line + i, n);
    id[n] = '\0';
    *msgno = v;
    return 0;
}

/* The body decoder's states. */
enum { ML_BOL = 0, ML_MID, ML_CR, ML_DOT, ML_DOTCR };

void pl_pop3_ml_init(struct pl_pop3_ml *m)
{
    m->state = ML_BOL;
    m->done = 0;
}

size_t pl_pop3_ml_feed(struct pl_pop3_ml *m, const char *in, size_t inlen, char *out,
                       size_t *outlen)
{
    size_t i = 0, o = 0;
    int st = m->state;

    while (i < inlen && !m->done) {
        char c = in[i++];
        switch (st) {
        case ML_BOL:
            if (c == '.') {
                st = ML_DOT;
                break;
            }
            /* fall through */
        case ML_MID:
        mid:
            if (c == '\r')
                st = ML_CR;
            else if (c == '\n') {
                out[o++] = '\r';
                out[o++] = '\n';
                st = ML_BOL;
            } else {
                out[o++] = c;
                st = ML_MID;
            }
            break;
        case ML_CR:                        /* a CR, not yet written */
            if (c == '\n') {
                out[o++] = '\r';
                out[o++] = '\n';
                st = ML_BOL;
            } else {
                out[o++] = '\r';           /* a bare CR passes through */
                goto mid;
            }
            break;
        case ML_DOT:                       /* "." at a line start, dropped */
            if (c == '\n')
                m->done = 1;
            else if (c == '\r')
                st = ML_DOTCR;
            else {
                out[o++] = c;              /* ".." -> ".", ".x" -> "x" */
                st = ML_MID;
            }
            break;
        case ML_DOTCR:
            if (c == '\n')
                m->done = 1;
            else {
                out[o++] = '\r';
                goto mid;
            }
            break;
        }
    }
    m->state = st;
    *outlen = o;
    return i;
}
