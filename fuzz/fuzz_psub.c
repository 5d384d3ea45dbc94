/* fuzz_psub.c -- libFuzzer target: pl_psub_parse_json (state/push_sub.h),
 * as postlink-pushd meets the PushSubscription JSON a device POSTs to
 * register.  The input is the request body.  A refusal leaves an error
 * message and a cleared result; what is taken must be what pl_psub_set
 * stores (the lib/webpush.h checks hold, the keys in their unpadded
 * form, the endpoint has an origin), and the subscription written back
 * as compact JSON must parse to the same result. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "push_sub.h"
#include "webpush.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void accepted(const struct pl_webpush_sub *s, size_t size)
{
    struct pl_webpush_sub again;
    char origin[PL_WP_ENDPOINT_MAX + 1], err[256], *txt;
    json_t *o;

    if (size > PL_PSUB_JSON_MAX || pl_webpush_endpoint_check(s->endpoint) != NULL ||
        pl_webpush_p256dh_check(s->p256dh) != NULL || pl_webpush_auth_check(s->auth) != NULL ||
        strlen(s->p256dh) != PL_WP_B64_POINT_LEN || strlen(s->auth) != PL_WP_B64_AUTH_LEN ||
        pl_webpush_origin(s->endpoint, origin, sizeof(origin)) != 0)
        abort();
    o = json_pack("{s:s, s:n, s:{s:s, s:s}}", "endpoint", s->endpoint, "expirationTime", "keys",
                  "p256dh", s->p256dh, "auth", s->auth);
    if (o == NULL || (txt = json_dumps(o, JSON_COMPACT)) == NULL)
        abort();
    if (pl_psub_parse_json(txt, strlen(txt), &again, err, sizeof(err)) != 0 ||
        memcmp(s, &again, sizeof(again)) != 0)
        abort();
    free(txt);
    json_decref(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct pl_webpush_sub zero;
    struct pl_webpush_sub s;
    char err[256];
    int rc;

    memset(err, 'x', sizeof(err));
    memset(&s, 'x', sizeof(s));
    rc = pl_psub_parse_json((const char *)data, size, &s, err, sizeof(err));
    if (rc == 0)
        accepted(&s, size);
    else if (rc != -1 || memchr(err, '\0', sizeof(err)) == NULL || err[0] == '\0' ||
             memcmp(&s, &zero, sizeof(s)) != 0)
        abort();
    return 0;
}
