/* kwscan.c -- Aho-Corasick keyword matcher (kwscan.h).  The trie's edges
 * are kept per state in a linked list (keyword tables are small and the
 * search follows failure links, so it stays linear in the text). */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "kwscan.h"

struct edge { unsigned char c; unsigned next, to; };
struct state { unsigned first_edge, fail; long word; unsigned wlen; };
struct pl_kw {
    struct state *st;
    struct edge *ed;
    size_t nst, cst, ned, ced;
};

#define NONE 0xffffffffu

static unsigned char fold(unsigned char c) { return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c; }

static unsigned find_edge(const struct pl_kw *kw, unsigned s, unsigned char c)
{
    for (unsigned e = kw->st[s].first_edge; e != NONE; e = kw->ed[e].next)
        if (kw->ed[e].c == c)
            return kw->ed[e].to;
    return NONE;
}

static int grow(void **p, size_t *cap, size_t need, size_t size)
{
    if (need <= *cap)
        return 0;
    size_t c = *cap ? *cap * 2 : 64;
    while (c < need)
        c *= 2;
    void *q = realloc(*p, c * size);
    if (q == NULL)
        return -1;
    *p = q;
    *cap = c;
    return 0;
}

static unsigned new_state(struct pl_kw *kw)
{
    if (grow((void **)&kw->st, &kw->cst, kw->nst + 1, sizeof(*kw->st)) != 0)
        return NONE;
    kw->st[kw->nst] = (struct state){NONE, 0, -1, 0};
    return (unsigned)kw->nst++;
}

void pl_kw_free(struct pl_kw *kw)
{
    if (kw) {
        free(kw->st);
        free(kw->ed);
        free(kw);
    }
}

struct pl_kw *pl_kw_build(const char *const *words, size_t n)
{
    struct pl_kw *kw;
    unsigned *queue = NULL;
    if (n > PL_KW_MAX_COUNT || (kw = calloc(1, sizeof(*kw))) == NULL)
        return NULL;
    if (new_state(kw) == NONE)
        goto fail;
    for (size_t w = 0; w < n; w++) {
        size_t len = words[w] ? strlen(words[w]) : 0;
        unsigned s = 0;
        if (len > PL_KW_MAX_LEN)
            goto fail;
        if (len == 0)
            continue;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = fold((unsigned char)words[w][i]);
            unsigned t = find_edge(kw, s, c);
            if (t == NONE) {
                if ((t = new_state(kw)) == NONE ||
                    grow((void **)&kw->ed, &kw->ced, kw->ned + 1, sizeof(*kw->ed)) != 0)
                    goto fail;
                kw->ed[kw->ned] = (struct edge){c, kw->st[s].first_edge, t};
                kw->st[s].first_edge = (unsigned)kw->ned++;
            }
            s = t;
        }
        if (kw->st[s].word < 0) {       /* the first of duplicate words wins */
            kw->st[s].word = (long)w;
            kw->st[s].wlen = (unsigned)len;
        }
    }
    /* breadth first: failure links, and each state reports the longest
     * word ending there (its own, else its failure state's) */
    if ((queue = malloc(kw->nst * sizeof(*queue))) == NULL)
        goto fail;
    size_t qh = 0, qt = 0;
    for (unsigned e = kw->st[0].first_edge; e != NONE; e = kw->ed[e].next) {
        kw->st[kw->ed[e].to].fail = 0;
        queue[qt++] = kw->ed[e].to;
    }
    while (qh < qt) {
        unsigned s = queue[qh++];
        if (kw->st[s].word < 0 && kw->st[kw->st[s].fail].word >= 0) {
            kw->st[s].word = kw->st[kw->st[s].fail].word;
            kw->st[s].wlen = kw->st[kw->st[s].fail].wlen;
        }
        for (unsigned e = kw->st[s].first_edge; e != NONE; e = kw->ed[e].next) {
            unsigned t = kw->ed[e].to, f = kw->st[s].fail, g;
            while ((g = find_edge(kw, f, kw->ed[e].c)) == NONE && f != 0)
                f = kw->st[f].fail;
            kw->st[t].fail = (g != NONE && g != t) ? g : 0;
            queue[qt++] = t;
        }
    }
    free(queue);
    return kw;
fail:
    free(queue);
    pl_kw_free(kw);
    return NULL;
}

long pl_kw_first(const struct pl_kw *kw, const char *text, size_t len, size_t *at)
{
    unsigned s = 0;
    if (kw == NULL || kw->nst <= 1)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = fold((unsigned char)text[i]);
        unsigned t;
        while ((t = find_edge(kw, s, c)) == NONE && s != 0)
            s = kw->st[s].fail;
        s = t == NONE ? 0 : t;
        if (kw->st[s].word >= 0) {
            if (at)
                *at = i + 1 - kw->st[s].wlen;
            return kw->st[s].word;
        }
    }
    return -1;
}
