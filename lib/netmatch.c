/* netmatch.c -- address/network lists (netmatch.h). */
#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "netmatch.h"
#include "strutil.h"

int pl_net_parse(const char *item, size_t len, struct pl_net *n)
{
    char buf[64], *slash;
    char *end;
    long bits;

    if (len >= sizeof(buf))
        return -1;
    memcpy(buf, item, len);
    buf[len] = '\0';
    if ((slash = strchr(buf, '/')) != NULL)
        *slash = '\0';
    memset(n, 0, sizeof(*n));
    if (inet_pton(AF_INET, buf, n->addr) == 1) {
        n->family = AF_INET;
        n->bits = 32;
    } else if (inet_pton(AF_INET6, buf, n->addr) == 1) {
        n->family = AF_INET6;
        n->bits = 128;
    } else {
        return -1;
    }
    if (slash) {
        bits = strtol(slash + 1, &end, 10);
        if (*end != '\0' || slash[1] == '\0' || bits < 0 || bits > (long)n->bits)
            return -1;
        n->bits = (unsigned)bits;
    }
    return 0;
}

int pl_netlist_parse(struct pl_netlist *l, const char *list, char *err, size_t errlen)
{
    const char *item;
    size_t len;

    memset(l, 0, sizeof(*l));
    while ((item = pl_conf_next_item(&list, &len)) != NULL) {
        struct pl_net n;
        if (pl_net_parse(item, len, &n) != 0) {
            snprintf(err, errlen, "not an IP address or network: \"%.*s\"", (int)len, item);
            pl_netlist_free(l);
            return -1;
        }
        pl_netlist_add(l, &n);
    }
    return 0;
}

void pl_netlist_add(struct pl_netlist *l, const struct pl_net *n)
{
    l->v = pl_xrealloc(l->v, (l->n + 1) * sizeof(*l->v));
    l->v[l->n++] = *n;
}

void pl_netlist_free(struct pl_netlist *l)
{
    free(l->v);
    memset(l, 0, sizeof(*l));
}

static int prefix_eq(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;
    if (memcmp(a, b, full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[full] & mask) == (b[full] & mask);
}

static int match(const struct pl_netlist *l, int family, const unsigned char *addr)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].family == family && prefix_eq(l->v[i].addr, addr, l->v[i].bits))
            return 1;
    return 0;
}

int pl_netlist_match(const struct pl_netlist *l, const struct sockaddr *sa)
{
    if (sa == NULL)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const void *)sa;
        return match(l, AF_INET, (const unsigned char *)&in->sin_addr);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const void *)sa;
        const unsigned char *a = (const unsigned char *)&in6->sin6_addr;
        static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(a, mapped, 12) == 0)
            return match(l, AF_INET, a + 12);
        return match(l, AF_INET6, a);
    }
    return 0;
}

int pl_netlist_match_text(const struct pl_netlist *l, const char *addr)
{
    unsigned char buf[16];
    if (inet_pton(AF_INET, addr, buf) == 1)
        return match(l, AF_INET, buf);
    if (inet_pton(AF_INET6, addr, buf) == 1)
        return match(l, AF_INET6, buf);
    return 0;
}

int pl_hostport_split(const char *v, char *host, size_t hlen, unsigned *port)
{
    const char *colon = strrchr(v, ':');
    unsigned char buf[16];
    size_t n;
    long p;
    if (colon == NULL || colon[1] == '\0' || strspn(colon + 1, "0123456789") != strlen(colon + 1) ||
        (p = strtol(colon + 1, NULL, 10)) < 1 || p > 65535)
        return -1;
    n = (size_t)(colon - v);
    if (n >= 2 && v[0] == '[' && v[n - 1] == ']') {
        v++;
        n -= 2;
    }
    if (n == 0 || n >= hlen)
        return -1;
    memcpy(host, v, n);
    host[n] = '\0';
    if (inet_pton(AF_INET, host, buf) != 1 && inet_pton(AF_INET6, host, buf) != 1)
        return -2;
    *port = (unsigned)p;
    return 0;
}
