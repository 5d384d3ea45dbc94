/* fuzz_kwscan.c -- libFuzzer target: postlink-route's keyword matcher
 * (lib/kwscan.c).  The input's first byte says how many of the following
 * lines are keywords, the rest is the text; the matcher's answer must be
 * the one a plain search gives: the occurrence that ends first, the
 * longest of those ending at the same byte, ASCII letters without case. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kwscan.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static unsigned char fold(unsigned char c) { return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c; }

static long naive(char **w, size_t nw, const char *t, size_t len, size_t *at)
{
    for (size_t end = 1; end <= len; end++) {
        long best = -1;
        size_t blen = 0;
        for (size_t k = 0; k < nw; k++) {
            size_t n = strlen(w[k]), i;
            if (n == 0 || n > end || n <= blen)
                continue;
            for (i = 0; i < n && fold((unsigned char)t[end - n + i]) == fold((unsigned char)w[k][i]); i++)
                ;
            if (i == n) {
                best = (long)k;
                blen = n;
            }
        }
        if (best >= 0) {
            *at = end - blen;
            return best;
        }
    }
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *w[8];
    size_t nw = 0, pos = 1, at1 = 0, at2 = 0;
    if (size < 1)
        return 0;
    size_t want = data[0] % 8;
    while (nw < want && pos < size) {
        const uint8_t *nl = memchr(data + pos, '\n', size - pos);
        size_t n = nl ? (size_t)(nl - (data + pos)) : size - pos;
        if (n > 64)
            n = 64;
        w[nw] = malloc(n + 1);
        memcpy(w[nw], data + pos, n);
        w[nw][n] = '\0';
        if (memchr(w[nw], '\0', n)) {           /* keywords are C strings */
            w[nw][strlen(w[nw])] = '\0';
        }
        nw++;
        pos += n + (nl ? 1 : 0);
    }
    struct pl_kw *kw = pl_kw_build((const char *const *)w, nw);
    if (kw == NULL)
        abort();                                /* short words, few of them: must build */
    const char *text = (const char *)data + pos;
    size_t len = size - pos;
    long a = pl_kw_first(kw, text, len, &at1), b = naive(w, nw, text, len, &at2);
    /* equal words (after folding) may be reported by either index */
    if ((a < 0) != (b < 0))
        abort();
    if (a >= 0) {
        size_t la = strlen(w[a]), lb = strlen(w[b]);
        if (at1 != at2 || la != lb)
            abort();
        for (size_t i = 0; i < la; i++)
            if (fold((unsigned char)w[a][i]) != fold((unsigned char)w[b][i]))
                abort();
    }
    pl_kw_free(kw);
    for (size_t i = 0; i < nw; i++)
        free(w[i]);
    return 0;
}
