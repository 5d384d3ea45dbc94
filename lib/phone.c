/* phone.c -- IP phone numbers: normalising, prefixes, finding them in an
 * address or in text (phone.h). */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include "phone.h"

#define SEP_TEXT "-. ()"
#define SEP_LOCAL "-.()"
#define SEP_DOMAIN "-"

static int isdig(int c) { return c >= '0' && c <= '9'; }
static int isalnum_ascii(int c) { return isdig(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

/* Read up to want digits from s[i..len), allowing one or two separator
 * characters (from seps) between digits and one '(' before the first.
 * Returns the count read into d; *end is the offset just after the last
 * digit (a ')' closing an opening '(' right after it is taken too). */
static size_t read_digits(const char *s, size_t len, size_t i, size_t want, const char *seps,
                          char *d, size_t *end)
{
    size_t n = 0, j = i;
    int paren = 0;
    if (j < len && s[j] == '(' && strchr(seps, '(')) {
        paren = 1;
        j++;
    }
    *end = i;
    while (j < len && n < want) {
        if (isdig((unsigned char)s[j])) {
            d[n++] = s[j++];
            *end = j;
            continue;
        }
        if (n == 0)
            break;
        size_t k = j, nsep = 0;
        while (k < len && nsep < 2 && s[k] != '\0' && strchr(seps, s[k]) && !isdig((unsigned char)s[k])) {
            k++;
            nsep++;
        }
        if (nsep == 0 || k >= len || !isdig((unsigned char)s[k]))
            break;
        j = k;
    }
    if (paren && *end < len && s[*end] == ')')
        (*end)++;
    return n;
}

int pl_phone_norm(const char *in, const char *cc, char *out, size_t outlen, const char **why)
{
    char d[PL_PHONE_MAX_DIGITS + 2];
    size_t len = in ? strlen(in) : 0, i = 0, end = 0, n, cclen = cc ? strlen(cc) : 0;
    int plus = 0;
    const char *w = NULL;

    while (i < len && in[i] == ' ')
        i++;
    while (len > i && in[len - 1] == ' ')
        len--;
    if (i == len)
        w = "empty number";
    else {
        if (in[i] == '+') {
            plus = 1;
            i++;
        }
        n = read_digits(in, len, i, PL_PHONE_MAX_DIGITS + 1, SEP_TEXT, d, &end);
        if (n == 0)
            w = plus ? "'+' must be followed by the country code's digits" : "a number must start with a digit";
        else if (end != len)
            w = strchr(SEP_TEXT, in[end]) || isdig((unsigned char)in[end])
                    ? "separators may only stand between digits, at most two in a row"
                    : "a number may have only digits, '+' in front, and the separators - . ( ) and space";
        else if (n > PL_PHONE_MAX_DIGITS)
            w = "more than 15 digits";
        else if (n < PL_PHONE_MIN_DIGITS)
            w = "fewer than 3 digits";
        else if (plus && cclen > 0 && n > cclen && memcmp(d, cc, cclen) == 0) {
            if (n - cclen + 1 < PL_PHONE_MIN_DIGITS)
                w = "fewer than 3 digits after the country code and trunk 0";
            else if (n - cclen + 2 > outlen)
                w = "no room";
            else {
                out[0] = '0';
                memcpy(out + 1, d + cclen, n - cclen);
                out[n - cclen + 1] = '\0';
            }
        } else if (n + 2 > outlen)
            w = "no room";
        else {
            size_t o = 0;
            if (plus)
                out[o++] = '+';
            memcpy(out + o, d, n);
            out[o + n] = '\0';
        }
    }
    if (why)
        *why = w;
    return w ? -1 : 0;
}

int pl_phone_prefix_parse(const char *in, unsigned after, const char *cc,
                          struct pl_phone_prefix *p, const char **why)
{
    char tmp[64];
    size_t len = in ? strlen(in) : 0;
    /* "050-": a trailing separator says "more digits follow"; drop it. */
    while (len > 0 && strchr("-. ", in[len - 1]))
        len--;
    if (len == 0 || len >= sizeof(tmp)) {
        *why = len == 0 ? "empty prefix" : "prefix too long";
        return -1;
    }
    memcpy(tmp, in, len);
    tmp[len] = '\0';
    if (pl_phone_norm(tmp, cc, p->digits, sizeof(p->digits), why) != 0) {
        /* a short prefix ("05") is fine: only the full number has a minimum */
        size_t i = tmp[0] == '+' ? 1 : 0, k = i;
        while (isdig((unsigned char)tmp[k]))
            k++;
        if (tmp[k] != '\0' || k == i || k - i >= PL_PHONE_MIN_DIGITS)
            return -1;
        memcpy(p->digits, tmp, k);
        p->digits[k] = '\0';
    }
    if (after == 0)
        after = 8;
    size_t nd = strlen(p->digits) - (p->digits[0] == '+');
    if (nd + after > PL_PHONE_MAX_DIGITS || nd + after < PL_PHONE_MIN_DIGITS) {
        *why = "prefix and digits after it must make 3 to 15 digits";
        return -1;
    }
    p->after = after;
    *why = NULL;
    return 0;
}

/* Try prefix p at s[i]: on success the canonical number is in out and *end
 * just after it. */
static int try_prefix(const char *s, size_t len, size_t i, const struct pl_phone_prefix *p,
                      const char *cc, const char *seps, char *out, size_t outlen, size_t *end)
{
    char d[PL_PHONE_MAX_DIGITS + 2];
    size_t plen = strlen(p->digits), cclen = cc ? strlen(cc) : 0, want, n, o = 0;
    int pplus = p->digits[0] == '+';
    size_t total = plen - (size_t)pplus + p->after;      /* digits of the canonical form */

    if (total + 2 > outlen || total > PL_PHONE_MAX_DIGITS)
        return 0;
    if (s[i] == '+') {
        if (pplus)
            want = total;
        else if (cclen > 0 && p->digits[0] == '0')
            want = cclen + total - 1;
        else
            return 0;
        if (want > PL_PHONE_MAX_DIGITS)
            return 0;
        n = read_digits(s, len, i + 1, want, seps, d, end);
        if (n != want)
            return 0;
        if (pplus)
            out[o++] = '+';
        else {
            if (memcmp(d, cc, cclen) != 0)
                return 0;
            memmove(d, d + cclen, n - cclen);
            n -= cclen;
            out[o++] = '0';
        }
    } else {
        if (pplus)
            return 0;
        want = total;
        n = read_digits(s, len, i, want, seps, d, end);
        if (n != want)
            return 0;
    }
    memcpy(out + o, d, n);
    out[o + n] = '\0';
    return strncmp(out, p->digits, plen) == 0;
}

static int start_ok(const char *s, size_t i)
{
    if (i == 0)
        return 1;
    unsigned char c = (unsigned char)s[i - 1];
    if (isalnum_ascii(c) || c == '+')
        return 0;
    if ((c == '-' || c == '.') && i >= 2 && isdig((unsigned char)s[i - 2]))
        return 0;
    return 1;
}

static int end_ok(const char *s, size_t len, size_t e)
{
    if (e >= len)
        return 1;
    unsigned char c = (unsigned char)s[e];
    if (isalnum_ascii(c))
        return 0;
    if ((c == '-' || c == '.') && e + 1 < len && isdig((unsigned char)s[e + 1]))
        return 0;
    return 1;
}

static int starts_number(const char *s, size_t len, size_t i)
{
    unsigned char c = (unsigned char)s[i];
    if (isdig(c))
        return 1;
    return (c == '+' || c == '(') && i + 1 < len && isdig((unsigned char)s[i + 1]);
}

int pl_phone_in_text(const char *text, size_t len, const struct pl_phone_prefix *p, size_t np,
                     const char *cc, char *out, size_t outlen, size_t *at)
{
    size_t end;
    if (np == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        if (!starts_number(text, len, i) || !start_ok(text, i))
            continue;
        for (size_t k = 0; k < np; k++)
            if (try_prefix(text, len, i, &p[k], cc, SEP_TEXT, out, outlen, &end) &&
                end_ok(text, len, end)) {
                if (at)
                    *at = i;
                return 1;
            }
    }
    return 0;
}

int pl_phone_in_address(const char *addr, const struct pl_phone_prefix *p, size_t np,
                        const char *cc, char *out, size_t outlen)
{
    const char *atp = addr ? strrchr(addr, '@') : NULL;
    size_t end, len, at;
    if (atp == NULL || np == 0)
        return 0;
    len = strlen(addr);
    at = (size_t)(atp - addr);
    /* the local part ends with the number */
    for (size_t i = 0; i < at; i++) {
        if (!starts_number(addr, at, i) || !start_ok(addr, i))
            continue;
        for (size_t k = 0; k < np; k++)
            if (try_prefix(addr, at, i, &p[k], cc, SEP_LOCAL, out, outlen, &end) && end == at)
                return 1;
    }
    /* the domain starts with it, as a whole label */
    if (at + 1 < len && starts_number(addr, len, at + 1))
        for (size_t k = 0; k < np; k++)
            if (try_prefix(addr, len, at + 1, &p[k], cc, SEP_DOMAIN, out, outlen, &end) &&
                (end == len || addr[end] == '.'))
                return 1;
    return 0;
}
