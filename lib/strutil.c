/* strutil.c -- implementation of strutil.h. Allocation failure is fatal:
 * postlink processes are supervised and restart cleanly. */
#include "config.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "strutil.h"

void *pl_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        msg_fatal("out of memory allocating %zu bytes", n);
    return p;
}

void *pl_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (p == NULL)
        msg_fatal("out of memory allocating %zu objects", n);
    return p;
}

void *pl_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        msg_fatal("out of memory allocating %zu bytes", n);
    return q;
}

char *pl_xstrdup(const char *s)
{
    return pl_xstrndup(s, strlen(s));
}

char *pl_xstrndup(const char *s, size_t n)
{
    char *p = pl_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

static void grow(struct pl_strbuf *b, size_t more)
{
    if (b->len + more + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + more + 1)
            cap *= 2;
        b->s = pl_xrealloc(b->s, cap);
        b->cap = cap;
    }
}

void pl_strbuf_addn(struct pl_strbuf *b, const char *s, size_t n)
{
    grow(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void pl_strbuf_adds(struct pl_strbuf *b, const char *s)
{
    pl_strbuf_addn(b, s, strlen(s));
}

void pl_strbuf_addc(struct pl_strbuf *b, char c)
{
    pl_strbuf_addn(b, &c, 1);
}

void pl_strbuf_addf(struct pl_strbuf *b, const char *fmt, ...)
{
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *pl_strbuf_take(struct pl_strbuf *b)
{
    char *s = b->s ? b->s : pl_xstrdup("");
    b->s = NULL;
    b->len = b->cap = 0;
    return s;
}

void pl_strbuf_free(struct pl_strbuf *b)
{
    free(b->s);
    b->s = NULL;
    b->len = b->cap = 0;
}

void pl_strvec_add(struct pl_strvec *v, const char *s)
{
    if (v->n + 1 >= v->cap) {
        v->cap = v->cap ? v->cap * 2 : 8;
        v->v = pl_xrealloc(v->v, v->cap * sizeof(*v->v));
    }
    v->v[v->n++] = pl_xstrdup(s);
    v->v[v->n] = NULL;
}

void pl_strvec_free(struct pl_strvec *v)
{
    for (size_t i = 0; i < v->n; i++)
        free(v->v[i]);
    free(v->v);
    v->v = NULL;
    v->n = v->cap = 0;
}

void pl_strtrim_right(char *s)
{
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1]))
        s[--n] = '\0';
}
