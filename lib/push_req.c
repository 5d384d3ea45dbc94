/* push_req.c -- the device API's request parser (push_req.h): checks every
 * argument of the few requests postlink-pushd serves and refuses the rest
 * with a status and a reason a device's author can act on. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "push_req.h"

#define NUM_MAX 1000000000000000LL      /* 10^15: bytes or messages, plenty */

static int hex_ok(const char *s, size_t n)
{
    return strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

static int id_arg(const char *v, char *out, int first_ok)
{
    if (first_ok && strcmp(v, "first") == 0) {
        out[0] = '\0';
        return 0;
    }
    if (!hex_ok(v, PL_PREQ_ID_LEN))
        return -1;
    memcpy(out, v, PL_PREQ_ID_LEN + 1);
    return 0;
}

/* a decimal number 0..NUM_MAX */
static int num_arg(const char *v, long long *out)
{
    long long n = 0;
    if (*v == '\0' || strlen(v) > 16 || strspn(v, "0123456789") != strlen(v))
        return -1;
    for (; *v; v++)
        n = n * 10 + (*v - '0');
    if (n > NUM_MAX)
        return -1;
    *out = n;
    return 0;
}

static int token_of(const char *authz, char *out)
{
    const char *t;
    size_t n;
    if (authz == NULL || strncasecmp(authz, "Bearer ", 7) != 0)
        return -1;
    for (t = authz + 7; *t == ' '; t++)
        ;
    n = strlen(t);
    while (n > 0 && t[n - 1] == ' ')
        n--;
    if (n != PL_PREQ_TOKEN_LEN || t[16] != '.' || strspn(t, "0123456789abcdef") != 16 ||
        strspn(t + 17, "0123456789abcdef") != 64)
        return -1;
    memcpy(out, t, n);
    out[n] = '\0';
    return 0;
}

static int fetch_args(const struct pl_preq_arg *a, size_t n, struct pl_preq *r, const char **why)
{
    int has_disp = 0;
    for (size_t i = 0; i < n; i++) {
        const char *k = a[i].name, *v = a[i].value ? a[i].value : "";
        if (strcmp(k, "get") == 0) {
            if (r->has_get++)
                return *why = "get= given twice", 400;
            if (id_arg(v, r->get, 1) != 0)
                return *why = "get= must be \"first\" or a message id (32 hex digits)", 400;
        } else if (strcmp(k, "ack") == 0) {
            if (r->has_ack++)
                return *why = "ack= given twice (acknowledge one message per request)", 400;
            if (id_arg(v, r->ack, 0) != 0)
                return *why = "ack= must be a message id (32 hex digits)", 400;
        } else if (strcmp(k, "disp") == 0) {
            if (has_disp++)
                return *why = "disp= given twice", 400;
            if (strcmp(v, "delete") == 0)
                r->move = 0;
            else if (strcmp(v, "move") == 0)
                r->move = 1;
            else
                return *why = "disp= must be delete or move", 400;
        } else if (strcmp(k, "room") == 0) {
            if (r->room >= 0 || num_arg(v, &r->room) != 0)
                return *why = "room= must be given once, as a number of bytes", 400;
        } else if (strcmp(k, "slots") == 0) {
            if (r->slots >= 0 || num_arg(v, &r->slots) != 0)
                return *why = "slots= must be given once, as a number of messages", 400;
        } else {
            return *why = "unknown argument (fetch takes get, ack, disp, room, slots)", 400;
        }
    }
    if (!r->has_get && !r->has_ack)
        return *why = "a fetch needs get= or ack=", 400;
    if (has_disp && !r->has_ack)
        return *why = "disp= without ack=", 400;
    return 0;
}

static int wait_args(const struct pl_preq_arg *a, size_t n, struct pl_preq *r, const char **why)
{
    for (size_t i = 0; i < n; i++) {
        const char *v = a[i].value ? a[i].value : "";
        if (strcmp(a[i].name, "timeout") != 0)
            return *why = "unknown argument (wait takes timeout)", 400;
        if (r->timeout >= 0 || num_arg(v, &r->timeout) != 0 || r->timeout > 86400)
            return *why = "timeout= must be given once, as seconds (at most 86400)", 400;
    }
    return 0;
}

int pl_preq_parse(const char *method, const char *path, const struct pl_preq_arg *args,
                  size_t nargs, const char *authorization, struct pl_preq *r, const char **why)
{
    int get, post, del;
    memset(r, 0, sizeof(*r));
    r->room = r->slots = r->timeout = -1;
    *why = "";
    if (method == NULL || path == NULL || (nargs > 0 && args == NULL))
        return *why = "malformed request", 400;
    get = strcmp(method, "GET") == 0;
    post = strcmp(method, "POST") == 0;
    del = strcmp(method, "DELETE") == 0;
    if (strcmp(path, "/v1/fetch") == 0) {
        if (!get)
            return *why = "fetch is GET", 405;
        r->kind = PL_PREQ_FETCH;
    } else if (strcmp(path, "/v1/wait") == 0) {
        if (!get)
            return *why = "wait is GET", 405;
        r->kind = PL_PREQ_WAIT;
    } else if (strcmp(path, "/v1/subscription") == 0) {
        if (!post && !del)
            return *why = "subscription is POST or DELETE", 405;
        r->kind = post ? PL_PREQ_SUBSCRIBE : PL_PREQ_UNSUBSCRIBE;
    } else if (strcmp(path, "/v1/sync") == 0) {
        if (!post)
            return *why = "sync is POST", 405;
        r->kind = PL_PREQ_SYNC;
    } else {
        return *why = "no such resource (see postlink-pushd(8))", 404;
    }
    if (nargs > PL_PREQ_MAX_ARGS)
        return *why = "too many arguments", 400;
    for (size_t i = 0; i < nargs; i++)
        if (args[i].name == NULL)
            return *why = "malformed argument", 400;
    if (token_of(authorization, r->token) != 0)
        return *why = "a device token is needed: Authorization: Bearer <token>", 401;
    switch (r->kind) {
    case PL_PREQ_FETCH:
        return fetch_args(args, nargs, r, why);
    case PL_PREQ_WAIT:
        return wait_args(args, nargs, r, why);
    default:
        if (nargs > 0)
            return *why = "this request takes no arguments", 400;
        return 0;
    }
}
