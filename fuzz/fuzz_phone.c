/* fuzz_phone.c -- libFuzzer target: IP phone numbers as postlink-route and
 * postlinkctl read them (lib/phone.c): a whole number as an administrator
 * writes it, a prefix, the number next to a recipient's '@', and the first
 * number in a header or body.  Checks that what comes out is canonical
 * (digits, '+' only in front, normalising it again changes nothing) and
 * accepted by the prefix it was found with. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "phone.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void canonical(const char *n)
{
    char again[PL_PHONE_MAX];
    const char *why;
    size_t len = strlen(n), i = n[0] == '+';
    if (len == 0 || len >= PL_PHONE_MAX || strspn(n + i, "0123456789") != len - i)
        abort();
    if (pl_phone_norm(n, "81", again, sizeof(again), &why) != 0 && n[0] != '+')
        abort();
}

static int accepted(const char *n, const struct pl_phone_prefix *p, size_t np)
{
    for (size_t k = 0; k < np; k++)
        if (strncmp(n, p[k].digits, strlen(p[k].digits)) == 0 &&
            strlen(n) - (n[0] == '+') == strlen(p[k].digits) - (p[k].digits[0] == '+') + p[k].after)
            return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = fuzz_strndup(data, size), out[PL_PHONE_MAX], again[PL_PHONE_MAX];
    const char *why = NULL;
    struct pl_phone_prefix p[3];
    size_t np = 0, at = 0;

    if (pl_phone_norm(s, "81", out, sizeof(out), &why) == 0) {
        canonical(out);
        if (pl_phone_norm(out, "81", again, sizeof(again), &why) != 0 || strcmp(out, again) != 0)
            abort();                          /* normalising is idempotent */
    } else if (why == NULL)
        abort();
    if (pl_phone_prefix_parse(s, (unsigned)(size % 16), "81", &p[np], &why) == 0)
        np++;
    if (pl_phone_prefix_parse("050-", 8, "81", &p[np], &why) == 0)
        np++;
    if (pl_phone_prefix_parse("+1 555", 7, "81", &p[np], &why) == 0)
        np++;
    if (pl_phone_in_address(s, p, np, "81", out, sizeof(out))) {
        canonical(out);
        if (!accepted(out, p, np))
            abort();
    }
    if (pl_phone_in_text(s, size, p, np, "81", out, sizeof(out), &at)) {
        canonical(out);
        if (!accepted(out, p, np) || at >= size)
            abort();
    }
    /* a short buffer is refused, never overrun */
    char tiny[4];
    (void)pl_phone_in_text(s, size, p, np, "81", tiny, sizeof(tiny), &at);
    free(s);
    return 0;
}
