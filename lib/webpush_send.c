/* webpush_send.c -- lib/webpush_send.h: the POST of RFC 8030 5 with the
 * body of RFC 8291 and the Authorization of RFC 8292, and what the answer
 * means (201 sent, 404/410 gone, 429/5xx later, the rest refused). */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "curl_easy.h"
#include "webpush_send.h"

#define ANSWER_MAX 200              /* of the service's body, for err */
#define DEFAULT_TIMEOUT_MS 30000

struct answer { char text[ANSWER_MAX + 1]; size_t len; };

static size_t answer_cb(char *data, size_t size, size_t n, void *ctx)
{
    struct answer *a = ctx;
    size_t bytes = size * n;
    for (size_t i = 0; i < bytes && a->len < ANSWER_MAX; i++) {
        unsigned char c = (unsigned char)data[i];
        a->text[a->len++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
    }
    a->text[a->len] = '\0';
    return bytes;
}

enum pl_wp_result pl_webpush_status_result(long status)
{
    if (status >= 200 && status < 300)
        return PL_WP_SENT;
    if (status == 404 || status == 410)
        return PL_WP_GONE;
    if (status == 0 || status == 429 || status >= 500)
        return PL_WP_TEMP;
    return PL_WP_REFUSED;
}

static int add_header(struct curl_slist **h, const char *line)
{
    struct curl_slist *n = curl_slist_append(*h, line);
    if (n == NULL)
        return -1;
    *h = n;
    return 0;
}

static const char *args_check(const struct pl_webpush_sub *sub, const char *topic,
                              const char *urgency)
{
    const char *why;
    if ((why = pl_webpush_endpoint_check(sub->endpoint)) != NULL)
        return why;
    if (topic && !pl_webpush_topic_ok(topic))
        return "the topic has 1 to 32 characters of A-Z a-z 0-9 - _";
    if (urgency && !pl_webpush_urgency_ok(urgency))
        return "the urgency is very-low, low, normal or high";
    return NULL;
}

enum pl_wp_result pl_webpush_send(const struct pl_webpush_sub *sub, const pl_vapid_key *key,
                                  const char *subject, const void *payload, size_t len,
                                  unsigned ttl, const char *topic, const char *urgency,
                                  unsigned timeout_ms, const char *ca_file, long *http_status,
                                  char *err, size_t errlen)
{
    unsigned char body[PL_WP_BODY_MAX];
    char auth[PL_WP_ENDPOINT_MAX + 1024] = "Authorization: ";
    char ttl_line[32], topic_line[PL_WP_TOPIC_MAX + 8], urg_line[32];
    struct pl_curl_xfer x;
    struct curl_slist *h = NULL;
    struct answer a = {"", 0};
    size_t blen;
    long status = 0;
    CURL *c;
    CURLcode cc;
    const char *why;
    enum pl_wp_result r;

    if (http_status)
        *http_status = 0;
    if ((why = args_check(sub, topic, urgency)) != NULL) {
        snprintf(err, errlen, "%s", why);
        return PL_WP_BADARG;
    }
    if (pl_vapid_header(key, sub->endpoint, subject, (int64_t)time(NULL), 0, auth + 15,
                        sizeof(auth) - 15, err, errlen) != 0 ||
        pl_webpush_encrypt(sub->p256dh, sub->auth, payload, len, 0, body, sizeof(body), &blen,
                           err, errlen) != 0)
        return PL_WP_BADARG;
    if ((c = pl_curl_new(&x, "http,https", 0, err, errlen)) == NULL)
        return PL_WP_TEMP;
#if LIBCURL_VERSION_NUM < 0x075500
    curl_easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    curl_easy_setopt(c, CURLOPT_VERBOSE, 0L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)(timeout_ms ? timeout_ms : DEFAULT_TIMEOUT_MS));
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    snprintf(ttl_line, sizeof(ttl_line), "TTL: %u", ttl);
    snprintf(topic_line, sizeof(topic_line), "Topic: %s", topic ? topic : "");
    snprintf(urg_line, sizeof(urg_line), "Urgency: %s", urgency ? urgency : "");
    if (add_header(&h, ttl_line) || add_header(&h, "Content-Encoding: aes128gcm") ||
        add_header(&h, "Content-Type: application/octet-stream") ||
        add_header(&h, auth) || add_header(&h, "Expect:") ||
        (topic && add_header(&h, topic_line)) || (urgency && add_header(&h, urg_line))) {
        snprintf(err, errlen, "out of memory");
        r = PL_WP_TEMP;
        goto out;
    }
    curl_easy_setopt(c, CURLOPT_URL, sub->endpoint);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)blen);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, answer_cb);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &a);
    if (ca_file)
        curl_easy_setopt(c, CURLOPT_CAINFO, ca_file);
    if ((cc = curl_easy_perform(c)) != CURLE_OK) {
        snprintf(err, errlen, "%s: %s", sub->endpoint, x.errbuf[0] ? x.errbuf : curl_easy_strerror(cc));
        r = PL_WP_TEMP;
        goto out;
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (http_status)
        *http_status = status;
    if ((r = pl_webpush_status_result(status)) != PL_WP_SENT)
        snprintf(err, errlen, "push service answered %ld%s%s", status, a.len ? ": " : "",
                 a.text);
out:
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return r;
}
