/* imap_resp.c -- lib/imap_resp.h: the response framer (lines and
 * literals, bounded memory: the text is cut at PL_IMAP_TEXT_MAX, a body at
 * body_max) and the parsers of the responses a read-only mirror reads. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "imap_resp.h"
#include "strutil.h"

#define LIT_MAX 0xffffffffffULL     /* a literal of more than 1 TiB is nonsense */

enum { ST_LINE = 0, ST_LIT = 1 };

void pl_imap_rd_init(struct pl_imap_rd *r, size_t body_max)
{
    memset(r, 0, sizeof(*r));
    r->body_max = body_max;
    r->tcap = 256;
    r->text = pl_xmalloc(r->tcap);
    r->text[0] = '\0';
}

void pl_imap_rd_free(struct pl_imap_rd *r)
{
    free(r->text);
    free(r->body);
    memset(r, 0, sizeof(*r));
}

static void start(struct pl_imap_rd *r)
{
    r->len = 0;
    r->text[0] = '\0';
    r->cut = r->has_body = r->body_cut = r->complete = 0;
    r->body_len = 0;
    r->llen = 0;
    r->state = ST_LINE;
}

static void text_add(struct pl_imap_rd *r, const char *s, size_t n)
{
    if (r->len + n > PL_IMAP_TEXT_MAX) {
        r->cut = 1;
        n = PL_IMAP_TEXT_MAX - r->len;
    }
    if (r->len + n + 1 > r->tcap) {
        while (r->len + n + 1 > r->tcap)
            r->tcap *= 2;
        r->text = pl_xrealloc(r->text, r->tcap);
    }
    for (size_t i = 0; i < n; i++)      /* a NUL has no place in a line: the text stays a string */
        r->text[r->len + i] = s[i] ? s[i] : '?';
    r->len += n;
    r->text[r->len] = '\0';
}

/* The last bytes of the line so far (tail keeps up to 31). */
static void tail_add(struct pl_imap_rd *r, const char *s, size_t n)
{
    size_t keep = sizeof(r->tail) - 1, have = r->llen < keep ? r->llen : keep;
    if (n >= keep) {
        memcpy(r->tail, s + n - keep, keep);
    } else {
        size_t old = have + n > keep ? keep - n : have;
        memmove(r->tail, r->tail + have - old, old);
        memcpy(r->tail + old, s, n);
    }
    r->llen += n;
}

/* A line ending in "{n}" or "{n+}": 1 with *n; 0 not; -1 malformed. */
static int literal_at_end(const char *t, size_t tl, unsigned long long *n, size_t *speclen)
{
    size_t i;
    if (tl < 3 || t[tl - 1] != '}')
        return 0;
    i = tl - 1;
    if (t[i - 1] == '+')
        i--;
    if (i == 0 || t[i - 1] < '0' || t[i - 1] > '9')
        return 0;
    while (i > 0 && t[i - 1] >= '0' && t[i - 1] <= '9')
        i--;
    if (i == 0 || t[i - 1] != '{')
        return 0;
    *n = 0;
    for (size_t k = i; t[k] >= '0' && t[k] <= '9'; k++) {
        *n = *n * 10 + (unsigned long long)(t[k] - '0');
        if (*n > LIT_MAX)
            return -1;
    }
    *speclen = tl - (i - 1);
    return 1;
}

/* The text before a literal's "{n}" ends with "BODY[section]<origin> ". */
static int before_is_body(const char *t, size_t end)
{
    size_t i = end;
    if (i == 0 || t[--i] != ' ')
        return 0;
    if (i > 0 && t[i - 1] == '>') {
        i--;
        while (i > 0 && t[i - 1] >= '0' && t[i - 1] <= '9')
            i--;
        if (i == 0 || t[--i] != '<')
            return 0;
    }
    if (i == 0 || t[i - 1] != ']')
        return 0;
    i--;
    while (i > 0 && t[i - 1] != '[' && t[i - 1] != ']')
        i--;
    if (i == 0 || t[i - 1] != '[')
        return 0;
    i--;
    return i >= 5 && strncasecmp(t + i - 4, "BODY", 4) == 0 &&
           (t[i - 5] == ' ' || t[i - 5] == '(');
}

static void body_add(struct pl_imap_rd *r, const char *s, size_t n)
{
    if (r->body_len + n > r->body_max) {
        r->body_cut = 1;
        n = r->body_max - r->body_len;
    }
    if (n == 0)
        return;
    if (r->body_len + n > r->bcap) {
        size_t c = r->bcap ? r->bcap : 4096;
        while (c < r->body_len + n)
            c *= 2;
        r->body = pl_xrealloc(r->body, c);
        r->bcap = c;
    }
    memcpy(r->body + r->body_len, s, n);
    r->body_len += n;
}

/* The current line is complete (its LF taken): 1 the response is complete. */
static int line_end(struct pl_imap_rd *r)
{
    size_t tl = r->llen < sizeof(r->tail) - 1 ? r->llen : sizeof(r->tail) - 1, spec = 0;
    unsigned long long n = 0;
    int lit;

    if (tl > 0 && r->tail[tl - 1] == '\r') {
        tl--;
        if (!r->cut && r->len > 0 && r->text[r->len - 1] == '\r')
            r->text[--r->len] = '\0';
    }
    lit = literal_at_end(r->tail, tl, &n, &spec);
    if (lit < 0) {
        snprintf(r->err, sizeof(r->err), "a literal of more than %llu bytes", LIT_MAX);
        return -1;
    }
    r->llen = 0;
    if (lit == 0)
        return 1;
    r->lit_body = !r->cut && !r->has_body && r->len >= spec &&
                  before_is_body(r->text, r->len - spec);
    if (r->lit_body)
        r->has_body = 1;
    r->lit_left = n;
    r->state = n ? ST_LIT : ST_LINE;
    return 0;
}

int pl_imap_rd_feed(struct pl_imap_rd *r, const char *in, size_t n, size_t *used)
{
    size_t pos = 0;

    if (r->complete)
        start(r);
    while (pos < n) {
        if (r->state == ST_LIT) {
            size_t k = n - pos;
            if ((unsigned long long)k > r->lit_left)
                k = (size_t)r->lit_left;
            if (r->lit_body)
                body_add(r, in + pos, k);
            pos += k;
            r->lit_left -= k;
            if (r->lit_left == 0)
                r->state = ST_LINE;
            continue;
        }
        const char *nl = memchr(in + pos, '\n', n - pos);
        size_t k = nl ? (size_t)(nl - (in + pos)) : n - pos;
        text_add(r, in + pos, k);
        tail_add(r, in + pos, k);
        pos += k;
        if (nl == NULL)
            break;
        pos++;
        int rc = line_end(r);
        if (rc < 0) {
            *used = pos;
            return -1;
        }
        if (rc == 1) {
            r->complete = 1;
            *used = pos;
            return 1;
        }
    }
    *used = pos;
    return 0;
}

/* ---- parsers --------------------------------------------------------- */

int pl_imap_tagged(const char *text, const char *tag, const char **rest)
{
    static const char *const st[] = {"OK", "NO", "BAD"};
    size_t tl = strlen(tag);
    if (tl == 0 || strncmp(text, tag, tl) != 0 || text[tl] != ' ')
        return -1;
    text += tl + 1;
    for (int i = 0; i < 3; i++) {
        size_t k = strlen(st[i]);
        if (strncasecmp(text, st[i], k) == 0 && (text[k] == ' ' || text[k] == '\0')) {
            *rest = text[k] ? text + k + 1 : text + k;
            return i;
        }
    }
    return -1;
}

/* Digits at *p as a number (at most max): 0 and *p after them, or -1. */
static int number(const char **p, unsigned long long max, unsigned long long *v)
{
    const char *s = *p;
    *v = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        if (*v > (max - (unsigned long long)(*s - '0')) / 10)
            return -1;
        *v = *v * 10 + (unsigned long long)(*s - '0');
    }
    *p = s;
    return 0;
}

int pl_imap_untagged_num(const char *text, const char *word, unsigned long *n)
{
    const char *p = text + 2;
    unsigned long long v;
    size_t wl = strlen(word);
    if (strncmp(text, "* ", 2) != 0 || number(&p, 0xffffffffULL, &v) != 0 || *p != ' ' ||
        strncasecmp(p + 1, word, wl) != 0 || p[1 + wl] != '\0')
        return -1;
    *n = (unsigned long)v;
    return 0;
}

int pl_imap_code_num(const char *text, const char *code, unsigned long *n)
{
    const char *p;
    unsigned long long v;
    size_t cl = strlen(code);
    if (strncasecmp(text, "* OK [", 6) != 0 || strncasecmp(text + 6, code, cl) != 0 ||
        text[6 + cl] != ' ')
        return -1;
    p = text + 7 + cl;
    if (number(&p, 0xffffffffULL, &v) != 0 || *p != ']')
        return -1;
    *n = (unsigned long)v;
    return 0;
}

/* A quoted string at *p ('"' ... '"'): 0 with *p after it, q/qlen its content. */
static int quoted(const char **p, const char **q, size_t *qlen)
{
    const char *s = *p + 1;
    for (; *s && *s != '"'; s++)
        if (*s == '\\' && (s[1] == '"' || s[1] == '\\'))
            s++;
        else if (*s == '\\')
            return -1;
    if (*s != '"')
        return -1;
    *q = *p + 1;
    *qlen = (size_t)(s - *q);
    *p = s + 1;
    return 0;
}

/* A literal's "{n}" or "{n+}" at *p. */
static int litspec(const char **p)
{
    const char *s = *p + 1;
    unsigned long long v;
    if (number(&s, LIT_MAX, &v) != 0)
        return -1;
    if (*s == '+')
        s++;
    if (*s != '}')
        return -1;
    *p = s + 1;
    return 0;
}

/* Any value: number/atom, NIL, quoted, literal, or a parenthesized list. */
static int skip_value(const char **p, int depth)
{
    const char *s = *p, *q;
    size_t ql;
    if (depth > 16)
        return -1;
    if (*s == '"') {
        if (quoted(&s, &q, &ql) != 0)
            return -1;
    } else if (*s == '{') {
        if (litspec(&s) != 0)
            return -1;
    } else if (*s == '(') {
        s++;
        while (*s != ')') {
            if (*s == ' ') {
                s++;
                continue;
            }
            if (*s == '\0' || skip_value(&s, depth + 1) != 0)
                return -1;
        }
        s++;
    } else {
        const char *b = s;
        while (*s > ' ' && *s < 0x7f && !strchr("()\"{", *s)) {
            if (*s == '[') {             /* BODY[..] style: up to the ']' */
                while (*s && *s != ']')
                    s++;
                if (*s == '\0')
                    return -1;
            }
            s++;
        }
        if (s == b)
            return -1;
    }
    *p = s;
    return 0;
}

int pl_imap_fetch_parse(const char *text, struct pl_imap_fetch *f)
{
    const char *p = text + 2;
    unsigned long long v;

    memset(f, 0, sizeof(*f));
    if (strncmp(text, "* ", 2) != 0 || number(&p, 0xffffffffULL, &v) != 0 ||
        strncasecmp(p, " FETCH ", 7) != 0)
        return 1;
    f->seq = (unsigned long)v;
    p += 7;
    if (*p++ != '(')
        return -1;
    for (;;) {
        const char *name = p;
        size_t nl;
        while (*p == ' ')
            p++;
        if (*p == ')')
            return p[1] == '\0' ? 0 : -1;
        name = p;
        while (*p > ' ' && *p < 0x7f && !strchr("()[\"{", *p))
            p++;
        nl = (size_t)(p - name);
        if (nl == 0)
            return -1;
        if (nl == 4 && strncasecmp(name, "BODY", 4) == 0 && *p == '[') {
            while (*p && *p != ']')
                p++;
            if (*p++ != ']')
                return -1;
            if (*p == '<') {
                p++;
                if (number(&p, LIT_MAX, &v) != 0 || *p++ != '>')
                    return -1;
            }
            if (*p++ != ' ')
                return -1;
            if (*p == '{') {
                if (litspec(&p) != 0)
                    return -1;
                if (!f->body)
                    f->body = 1;
            } else if (*p == '"') {
                const char *q;
                size_t ql;
                if (quoted(&p, &q, &ql) != 0)
                    return -1;
                if (!f->body) {
                    f->body = 2;
                    f->q = q;
                    f->qlen = ql;
                }
            } else if (strncasecmp(p, "NIL", 3) == 0) {
                p += 3;
                if (!f->body)
                    f->body = 3;
            } else {
                return -1;
            }
            continue;
        }
        if (*p++ != ' ')
            return -1;
        if (nl == 3 && strncasecmp(name, "UID", 3) == 0) {
            if (number(&p, 0xffffffffULL, &v) != 0 || v == 0)
                return -1;
            f->uid = (unsigned long)v;
        } else if (nl == 11 && strncasecmp(name, "RFC822.SIZE", 11) == 0) {
            if (number(&p, LIT_MAX, &v) != 0)
                return -1;
            f->has_size = 1;
            f->size = v;
        } else if (skip_value(&p, 0) != 0) {
            return -1;
        }
        if (*p != ' ' && *p != ')')
            return -1;
    }
}

size_t pl_imap_unquote(const char *q, size_t qlen, char *out)
{
    size_t n = 0;
    for (size_t i = 0; i < qlen; i++) {
        if (q[i] == '\\' && i + 1 < qlen)
            i++;
        out[n++] = q[i];
    }
    return n;
}
