/* curl_easy.c -- lib/curl_easy.h: the easy handle postlink uses for SMTP
 * and IMAP (moved here from lib/mailout.c so that postlink-mirrord's IMAP
 * primary makes its connection the same way). */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "curl_easy.h"

#define DEFAULT_TIMEOUT_S 30

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* A reply line that says no: SMTP 4xx/5xx, IMAP "tag NO|BAD ..." (not the
 * 221 or "* BYE" of the QUIT/LOGOUT curl sends after an error). */
static int reply_is_bad(const char *l)
{
    const char *sp;

    if ((l[0] == '4' || l[0] == '5') && l[1] >= '0' && l[1] <= '9' && l[2] >= '0' && l[2] <= '9')
        return 1;
    if (l[0] == '*' || (sp = strchr(l, ' ')) == NULL)
        return 0;
    return strncasecmp(sp, " NO ", 4) == 0 || strncasecmp(sp, " BAD ", 5) == 0;
}

/* Keep the last line the server sent (CURLINFO_HEADER_IN is the reply
 * text for SMTP and IMAP), made printable, for error messages. */
static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *ctx)
{
    struct pl_curl_xfer *x = ctx;
    size_t start, end, n = 0;

    (void)h;
    if (type != CURLINFO_HEADER_IN)
        return 0;
    end = size;
    while (end > 0 && (data[end - 1] == '\r' || data[end - 1] == '\n'))
        end--;
    if (end == 0)
        return 0;
    for (start = end; start > 0 && data[start - 1] != '\n'; start--)
        ;
    for (size_t i = start; i < end && n < sizeof(x->last) - 1; i++) {
        unsigned char c = (unsigned char)data[i];
        x->last[n++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
    }
    x->last[n] = '\0';
    if (reply_is_bad(x->last))
        memcpy(x->bad, x->last, sizeof(x->bad));
    return 0;
}

CURL *pl_curl_new(struct pl_curl_xfer *x, const char *protocols, unsigned timeout_s,
                  char *err, size_t errlen)
{
    CURL *h;

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        snprintf(err, errlen, "curl_global_init: %s", curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    if ((h = curl_easy_init()) == NULL) {
        snprintf(err, errlen, "curl_easy_init failed");
        return NULL;
    }
    memset(x, 0, sizeof(*x));
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, (long)(timeout_s ? timeout_s : DEFAULT_TIMEOUT_S));
#if LIBCURL_VERSION_NUM >= 0x075500   /* 7.85.0 */
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, protocols);
#else
    curl_easy_setopt(h, CURLOPT_PROTOCOLS, strncmp(protocols, "smtp", 4) == 0
                     ? (long)(CURLPROTO_SMTP | CURLPROTO_SMTPS)
                     : (long)(CURLPROTO_IMAP | CURLPROTO_IMAPS));
#endif
    curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb);
    curl_easy_setopt(h, CURLOPT_DEBUGDATA, x);
    curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);   /* only feeds debug_cb */
    return h;
}

void pl_curl_err(char *err, size_t errlen, CURLcode rc, long code, const struct pl_curl_xfer *x)
{
    const char *what = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
    const char *said = x->bad[0] ? x->bad : x->last;

    if (code > 0 && said[0])
        snprintf(err, errlen, "%s (reply code %ld; server said: %s)", what, code, said);
    else if (said[0])
        snprintf(err, errlen, "%s (server said: %s)", what, said);
    else
        snprintf(err, errlen, "%s", what);
}
