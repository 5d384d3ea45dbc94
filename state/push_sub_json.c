/* push_sub_json.c -- pl_psub_parse_json (state/push_sub.h): a device's
 * registration, PushSubscription.toJSON()'s object, read with jansson;
 * outside input, so every type and size is checked before it is used. */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "push_sub.h"

/* the string member name of o into out (outlen bytes): NULL or why not */
static const char *member(json_t *o, const char *name, char *out, size_t outlen)
{
    json_t *v = json_object_get(o, name);
    size_t n;

    if (v == NULL)
        return "missing";
    if (!json_is_string(v))
        return "not a string";
    n = json_string_length(v);
    if (n == 0 || n >= outlen)
        return "empty or too long";
    memcpy(out, json_string_value(v), n + 1);
    return NULL;
}

int pl_psub_parse_json(const char *buf, size_t len, struct pl_webpush_sub *out, char *err,
                       size_t errlen)
{
    json_error_t je;
    json_t *root = NULL, *keys, *exp;
    char p256dh[PL_WP_B64_POINT_LEN + 4], auth[PL_WP_B64_AUTH_LEN + 4];
    const char *why;
    int rc = -1;

    memset(out, 0, sizeof(*out));
    if (len > PL_PSUB_JSON_MAX) {
        snprintf(err, errlen, "subscription of %zu bytes: at most %d", len, PL_PSUB_JSON_MAX);
        return -1;
    }
    /* no NUL in strings (jansson's default), no duplicate names */
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        snprintf(err, errlen, "not JSON: %s (line %d, column %d)", je.text, je.line, je.column);
        return -1;
    }
    if (!json_is_object(root)) {
        snprintf(err, errlen, "the subscription is not a JSON object");
        goto out;
    }
    if ((why = member(root, "endpoint", out->endpoint, sizeof(out->endpoint))) != NULL) {
        snprintf(err, errlen, "endpoint: %s", why);
        goto out;
    }
    exp = json_object_get(root, "expirationTime");
    if (exp && !json_is_null(exp) && !(json_is_number(exp) && json_number_value(exp) >= 0)) {
        snprintf(err, errlen, "expirationTime: neither null nor a time");
        goto out;
    }
    keys = json_object_get(root, "keys");
    if (!json_is_object(keys)) {
        snprintf(err, errlen, "keys: %s", keys ? "not an object" : "missing");
        goto out;
    }
    /* room for padding: the keys are kept in their unpadded form */
    if ((why = member(keys, "p256dh", p256dh, sizeof(p256dh))) != NULL) {
        snprintf(err, errlen, "keys.p256dh: %s", why);
        goto out;
    }
    if ((why = member(keys, "auth", auth, sizeof(auth))) != NULL) {
        snprintf(err, errlen, "keys.auth: %s", why);
        goto out;
    }
    if ((why = pl_webpush_endpoint_check(out->endpoint)) != NULL ||
        (why = pl_webpush_p256dh_check(p256dh)) != NULL ||
        (why = pl_webpush_auth_check(auth)) != NULL) {
        snprintf(err, errlen, "%s", why);
        goto out;
    }
    if (pl_b64url_canon(p256dh, out->p256dh, sizeof(out->p256dh)) != PL_WP_B64_POINT_LEN ||
        pl_b64url_canon(auth, out->auth, sizeof(out->auth)) != PL_WP_B64_AUTH_LEN) {
        snprintf(err, errlen, "keys: not base64url");
        goto out;
    }
    rc = 0;
out:
    json_decref(root);
    if (rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}
