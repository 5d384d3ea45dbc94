/* fuzz_push_req.c -- libFuzzer target: the device API's request parser
 * (lib/push_req.c) on what libmicrohttpd hands it from a stranger's
 * request.  The input's first three lines are the method, the path and
 * the Authorization field; the rest is a query string, split into
 * arguments at '&' and '=' as the HTTP library does.  Checks that an
 * accepted request holds only well-formed ids, a well-formed token and
 * sane numbers, and that a refusal has a status and a reason. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "push_req.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *line(char **p)
{
    char *s = *p, *nl;
    if (s == NULL)
        return NULL;
    if ((nl = strchr(s, '\n')) != NULL) {
        *nl = '\0';
        *p = nl + 1;
    } else {
        *p = NULL;
    }
    return s;
}

static int hex_id(const char *s)
{
    return strlen(s) == PL_PREQ_ID_LEN && strspn(s, "0123456789abcdef") == PL_PREQ_ID_LEN;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = fuzz_strndup(data, size), *p = buf, *method, *path, *authz, *q, *tok;
    struct pl_preq_arg args[PL_PREQ_MAX_ARGS + 2];
    struct pl_preq r;
    const char *why = NULL;
    size_t n = 0;
    int status;

    method = line(&p);
    path = line(&p);
    authz = line(&p);
    q = p;
    for (tok = q ? strtok(q, "&") : NULL; tok && n < PL_PREQ_MAX_ARGS + 2;
         tok = strtok(NULL, "&")) {
        char *eq = strchr(tok, '=');
        if (eq)
            *eq = '\0';
        args[n].name = tok;
        args[n].value = eq ? eq + 1 : NULL;
        n++;
    }
    status = pl_preq_parse(method, path, args, n, authz, &r, &why);
    if (why == NULL)
        abort();
    if (status != 0) {
        if (status < 400 || status > 499 || why[0] == '\0')
            abort();
    } else {
        if (strlen(r.token) != PL_PREQ_TOKEN_LEN || r.token[16] != '.')
            abort();
        if (r.kind == PL_PREQ_FETCH) {
            if (!r.has_get && !r.has_ack)
                abort();
            if (r.has_get && r.get[0] && !hex_id(r.get))
                abort();
            if (r.has_ack && !hex_id(r.ack))
                abort();
        }
        if (r.room < -1 || r.slots < -1 || r.timeout < -1 || r.timeout > 86400)
            abort();
    }
    free(buf);
    return 0;
}
