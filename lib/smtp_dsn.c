/* smtp_dsn.c -- syntax of the DSN (RFC 3461) and BODY parameters shared by
 * lib/lmtp_server.c (which validates what Postfix sends) and
 * lib/smtp_client.c (which validates what it is asked to send); see
 * smtp_dsn.h. */
#include "config.h"

#include <string.h>
#include <strings.h>

#include "smtp_dsn.h"

static int is_uhex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F');
}

int pl_dsn_xtext_ok(const char *s, size_t len, size_t max)
{
    if (len == 0 || len > max)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '+') {
            if (i + 2 >= len || !is_uhex(s[i + 1]) || !is_uhex(s[i + 2]))
                return 0;
            i += 2;
        } else if (c < '!' || c > '~' || c == '=') {
            return 0;
        }
    }
    return 1;
}

int pl_dsn_notify_ok(const char *s, size_t len)
{
    static const char *const kw[] = {"SUCCESS", "FAILURE", "DELAY"};
    unsigned seen = 0;
    size_t i = 0;

    if (len == 5 && strncasecmp(s, "NEVER", 5) == 0)
        return 1;
    while (i <= len) {
        const char *comma = memchr(s + i, ',', len - i);
        size_t n = comma ? (size_t)(comma - (s + i)) : len - i;
        unsigned k;
        for (k = 0; k < 3; k++)
            if (n == strlen(kw[k]) && strncasecmp(s + i, kw[k], n) == 0)
                break;
        if (k == 3 || (seen & (1u << k)))
            return 0;                      /* unknown, empty or repeated */
        seen |= 1u << k;
        i += n + 1;
        if (comma == NULL)
            break;
    }
    return seen != 0;
}

static int is_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
           || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

int pl_dsn_orcpt_ok(const char *s, size_t len)
{
    const char *semi = memchr(s, ';', len);
    size_t tlen;

    if (len > PL_DSN_ORCPT_MAX || semi == NULL || semi == s)
        return 0;
    tlen = (size_t)(semi - s);
    for (size_t i = 0; i < tlen; i++)
        if (!is_atext((unsigned char)s[i]))
            return 0;
    return pl_dsn_xtext_ok(semi + 1, len - tlen - 1, PL_DSN_ORCPT_MAX);
}

int pl_dsn_ret_ok(const char *s, size_t len)
{
    return len == 4 && (strncasecmp(s, "FULL", 4) == 0 || strncasecmp(s, "HDRS", 4) == 0);
}

size_t pl_xtext_encode(const char *s, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    if (outlen == 0)
        return (size_t)-1;
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= '!' && c <= '~' && c != '+' && c != '=') {
            if (o + 1 >= outlen)
                goto full;
            out[o++] = (char)c;
        } else {
            if (o + 3 >= outlen)
                goto full;
            out[o++] = '+';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        }
    }
    out[o] = '\0';
    return o;
full:
    out[o] = '\0';
    return (size_t)-1;
}
