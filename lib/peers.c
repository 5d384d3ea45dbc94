/* peers.c -- sync_peers: addresses, networks and certificate fingerprints
 * (peers.h). */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "peers.h"
#include "strutil.h"

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = tolower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int pl_fprint_norm(const char *in, size_t len, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    int colons = len > 2 && in[2] == ':';
    size_t nbytes = 0, i = 0, o = 0;

    while (i < len) {
        int hi, lo;
        if (i + 2 > len || (hi = hexval((unsigned char)in[i])) < 0 ||
            (lo = hexval((unsigned char)in[i + 1])) < 0)
            return -1;
        i += 2;
        if (i < len && colons) {
            if (in[i] != ':' || i + 1 == len)
                return -1;
            i++;
        }
        if (o + 3 > outlen)
            return -1;
        if (nbytes++)
            out[o++] = ':';
        out[o++] = hex[hi];
        out[o++] = hex[lo];
    }
    if (!(nbytes == 16 || nbytes == 20 || nbytes == 32 || nbytes == 48 || nbytes == 64) ||
        o >= outlen)
        return -1;
    out[o] = '\0';
    return 0;
}

int pl_peers_parse(struct pl_peers *p, const char *list, char *err, size_t errlen)
{
    const char *item;
    size_t len;

    memset(p, 0, sizeof(*p));
    while ((item = pl_conf_next_item(&list, &len)) != NULL) {
        struct pl_net n;
        char fp[PL_FPRINT_MAX];
        if (pl_net_parse(item, len, &n) == 0) {
            pl_netlist_add(&p->nets, &n);
        } else if (pl_fprint_norm(item, len, fp, sizeof(fp)) == 0) {
            p->fp = pl_xrealloc(p->fp, (p->nfp + 1) * sizeof(*p->fp));
            memcpy(p->fp[p->nfp++], fp, sizeof(fp));
        } else {
            snprintf(err, errlen, "not an IP address, network or certificate fingerprint: \"%.*s\"",
                     (int)len, item);
            pl_peers_free(p);
            return -1;
        }
    }
    return 0;
}

void pl_peers_free(struct pl_peers *p)
{
    pl_netlist_free(&p->nets);
    free(p->fp);
    memset(p, 0, sizeof(*p));
}

int pl_peers_match_fprint(const struct pl_peers *p, const char *fprint)
{
    char fp[PL_FPRINT_MAX];
    if (fprint == NULL || pl_fprint_norm(fprint, strlen(fprint), fp, sizeof(fp)) != 0)
        return 0;
    for (size_t i = 0; i < p->nfp; i++)
        if (strcmp(p->fp[i], fp) == 0)
            return 1;
    return 0;
}
