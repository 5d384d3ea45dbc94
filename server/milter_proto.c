/* milter_proto.c -- the milter wire format (milter_proto.h). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "milter_proto.h"
#include "strutil.h"

void pl_mbuf_add(struct pl_mbuf *b, const void *data, size_t len)
{
    if (len == 0)
        return;
    if (b->len + len > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (cap < b->len + len)
            cap *= 2;
        b->p = pl_xrealloc(b->p, cap);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, len);
    b->len += len;
}

void pl_mbuf_consume(struct pl_mbuf *b, size_t n)
{
    if (n >= b->len) {
        b->len = 0;
        return;
    }
    memmove(b->p, b->p + n, b->len - n);
    b->len -= n;
}

void pl_mbuf_free(struct pl_mbuf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

static uint32_t get32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

int pl_mproto_next(const unsigned char *buf, size_t len, unsigned char *cmd,
                   const unsigned char **data, size_t *dlen, size_t *used)
{
    uint32_t n;
    if (len < 4)
        return 0;
    n = get32(buf);
    if (n == 0 || n > PL_MPROTO_MAX_PACKET)
        return -1;
    if (len - 4 < n)
        return 0;
    *cmd = buf[4];
    *data = buf + 5;
    *dlen = n - 1;
    *used = 4 + (size_t)n;
    return 1;
}

int pl_mproto_strings(const unsigned char *data, size_t len, char ***argv, size_t max)
{
    char *copy, **v;
    size_t n = 0;

    *argv = NULL;
    if (len > 0 && data[len - 1] != '\0')
        return -1;
    for (size_t i = 0; i < len; i++)
        if (data[i] == '\0' && ++n > max)
            return -1;
    /* one block: the pointers, then the strings */
    v = pl_xmalloc((n + 1) * sizeof(char *) + len + 1);
    copy = (char *)(v + n + 1);
    memcpy(copy, data, len);
    copy[len] = '\0';
    for (size_t i = 0, k = 0; k < n; k++) {
        v[k] = copy + i;
        i += strlen(copy + i) + 1;
    }
    v[n] = NULL;
    *argv = v;
    return (int)n;
}

int pl_mproto_optneg(const unsigned char *data, size_t len, uint32_t *version,
                     uint32_t *actions, uint32_t *proto)
{
    if (len < 12)
        return -1;
    *version = get32(data);
    *actions = get32(data + 4);
    *proto = get32(data + 8);
    return 0;
}

int pl_mproto_connect(const unsigned char *data, size_t len, char **store, const char **host,
                      struct sockaddr_storage *ss)
{
    const unsigned char *nul = memchr(data, '\0', len);
    size_t hl;
    char *copy;

    *store = NULL;
    memset(ss, 0, sizeof(*ss));
    ss->ss_family = AF_UNSPEC;
    if (nul == NULL)
        return -1;
    hl = (size_t)(nul - data);
    copy = pl_xmalloc(len + 1);
    memcpy(copy, data, len);
    copy[len] = '\0';
    *store = copy;
    *host = copy;
    if (hl + 1 >= len)
        return -1;                     /* no family */
    {
        char family = copy[hl + 1];
        const char *addr;
        unsigned port;
        if (family == 'U' || family == 'L')
            return 0;
        if (family != '4' && family != '6')
            return -1;
        if (hl + 4 >= len || copy[len - 1] != '\0')
            return -1;
        port = (unsigned)data[hl + 2] << 8 | data[hl + 3];
        addr = copy + hl + 4;
        if (family == '4') {
            struct sockaddr_in *sin = (struct sockaddr_in *)ss;
            if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1)
                return -1;
            sin->sin_family = AF_INET;
            sin->sin_port = htons((uint16_t)port);
        } else {
            struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;
            if (strncmp(addr, "IPv6:", 5) == 0)
                addr += 5;
            if (inet_pton(AF_INET6, addr, &sin6->sin6_addr) != 1)
                return -1;
            sin6->sin6_family = AF_INET6;
            sin6->sin6_port = htons((uint16_t)port);
        }
    }
    return 0;
}

static void put_header(struct pl_mbuf *out, unsigned char cmd, size_t len)
{
    unsigned char h[5];
    uint32_t n = (uint32_t)len + 1;
    h[0] = (unsigned char)(n >> 24);
    h[1] = (unsigned char)(n >> 16);
    h[2] = (unsigned char)(n >> 8);
    h[3] = (unsigned char)n;
    h[4] = cmd;
    pl_mbuf_add(out, h, 5);
}

void pl_mproto_put(struct pl_mbuf *out, unsigned char cmd, const void *data, size_t len)
{
    put_header(out, cmd, len);
    pl_mbuf_add(out, data, len);
}

void pl_mproto_put_strings(struct pl_mbuf *out, unsigned char cmd, const char *s1, ...)
{
    va_list ap;
    size_t len = 0;
    const char *s;

    va_start(ap, s1);
    for (s = s1; s; s = va_arg(ap, const char *))
        len += strlen(s) + 1;
    va_end(ap);
    put_header(out, cmd, len);
    va_start(ap, s1);
    for (s = s1; s; s = va_arg(ap, const char *))
        pl_mbuf_add(out, s, strlen(s) + 1);
    va_end(ap);
}

void pl_mproto_put_indexed(struct pl_mbuf *out, unsigned char cmd, uint32_t index,
                           const char *name, const char *value)
{
    unsigned char i[4] = {(unsigned char)(index >> 24), (unsigned char)(index >> 16),
                          (unsigned char)(index >> 8), (unsigned char)index};
    put_header(out, cmd, 4 + strlen(name) + 1 + strlen(value) + 1);
    pl_mbuf_add(out, i, 4);
    pl_mbuf_add(out, name, strlen(name) + 1);
    pl_mbuf_add(out, value, strlen(value) + 1);
}
