/* strutil.h -- small string helpers: checked allocation, a growable string
 * buffer and a string vector, used by the config parser and the CLI. */
#ifndef PL_STRUTIL_H
#define PL_STRUTIL_H

#include <stddef.h>

void *pl_xmalloc(size_t n);
void *pl_xcalloc(size_t n, size_t size);
void *pl_xrealloc(void *p, size_t n);
char *pl_xstrdup(const char *s);
char *pl_xstrndup(const char *s, size_t n);

struct pl_strbuf { char *s; size_t len, cap; };
void pl_strbuf_addn(struct pl_strbuf *b, const char *s, size_t n);
void pl_strbuf_adds(struct pl_strbuf *b, const char *s);
void pl_strbuf_addc(struct pl_strbuf *b, char c);
void pl_strbuf_addf(struct pl_strbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
char *pl_strbuf_take(struct pl_strbuf *b);   /* caller frees; b is reset */
void pl_strbuf_free(struct pl_strbuf *b);

struct pl_strvec { char **v; size_t n, cap; };
void pl_strvec_add(struct pl_strvec *v, const char *s);
void pl_strvec_free(struct pl_strvec *v);

void pl_strtrim_right(char *s);

#endif
