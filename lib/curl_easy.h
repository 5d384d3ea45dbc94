/* curl_easy.h -- the libcurl easy handle as postlink sets it up (used by
 * lib/mailout.c for SMTP and IMAP, and by postlink-mirrord's IMAP primary):
 * curl_global_init once, an error buffer, no signals, a time limit, the
 * allowed protocols, and the server's last reply line (and its last
 * refusal) kept for error messages -- only lines the server sent, never
 * what postlink sent (a login). */
#ifndef PL_CURL_EASY_H
#define PL_CURL_EASY_H

#include <stddef.h>
#include <curl/curl.h>

struct pl_curl_xfer {
    char errbuf[CURL_ERROR_SIZE];
    char last[256];            /* the server's last reply line */
    char bad[256];             /* its last 4xx/5xx or NO/BAD reply line */
};

/* A new handle for protocols ("smtp,smtps" or "imap,imaps"), timeout_s for
 * each transfer (0 = 30 s); NULL with err set. */
CURL *pl_curl_new(struct pl_curl_xfer *x, const char *protocols, unsigned timeout_s,
                  char *err, size_t errlen);
/* "curl's error (reply code CODE; server said: TEXT)" into err; TEXT is
 * the last refusal, else the last reply line. */
void pl_curl_err(char *err, size_t errlen, CURLcode rc, long code, const struct pl_curl_xfer *x);

#endif
