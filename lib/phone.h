/* phone.h -- IP phone numbers for capability 3 (postlink-route): how an
 * administrator writes them in tables, how they are found in a recipient
 * address and in text, and the one canonical form they are compared and
 * dialled in.
 *
 * Canonical form: the digits only, national with the trunk "0" when the
 * number was written internationally with the configured country code
 * ("+81 50 1234 5678" = "050-1234-5678" = "05012345678" with country code
 * 81), otherwise "+" and all digits ("+1 555 0100" -> "+15550100").
 * Between digit groups a number may have one or two separator characters
 * out of "-. ()" (so "(050) 1234-5678" is fine); anything else ends it.
 *
 * A prefix row ("050-", 8 more digits) says which numbers are IP phone
 * numbers: canonical digits that start with the prefix and have exactly
 * that many digits after it.  Pure functions, no allocation. */
#ifndef PL_PHONE_H
#define PL_PHONE_H

#include <stddef.h>

#define PL_PHONE_MAX 20          /* canonical number: '+' and at most 15 digits, NUL */
#define PL_PHONE_MIN_DIGITS 3
#define PL_PHONE_MAX_DIGITS 15   /* E.164 */

struct pl_phone_prefix {
    char digits[PL_PHONE_MAX];   /* canonical, e.g. "050" */
    unsigned after;              /* digits that follow it, e.g. 8 */
};

/* Normalise a whole string written by a person into out (PL_PHONE_MAX
 * bytes).  cc is the country code's digits ("81") or "" / NULL.  Returns 0,
 * or -1 with *why set to a reason fit for an error message. */
int pl_phone_norm(const char *in, const char *cc, char *out, size_t outlen, const char **why);

/* Parse a prefix as written ("050-", "+81 50", "080") with the number of
 * digits after it (0 = the default, 8); 0 or -1 with *why. */
int pl_phone_prefix_parse(const char *in, unsigned after, const char *cc,
                          struct pl_phone_prefix *p, const char **why);

/* The number next to the '@' of addr (the local part ends with it, or the
 * domain starts with it: "050-0000-9999@gw.example",
 * "sales.050-1234-5678@x", "bob@05012345678.gw.example") that one of the
 * prefixes accepts.  1 with the canonical number in out, else 0. */
int pl_phone_in_address(const char *addr, const struct pl_phone_prefix *p, size_t np,
                        const char *cc, char *out, size_t outlen);

/* The first number in text[0..len) that one of the prefixes accepts and
 * that stands on its own (no letter or digit glued to either end).  1 with
 * the canonical number in out and its offset in *at, else 0.  Linear in
 * len times the number of prefixes. */
int pl_phone_in_text(const char *text, size_t len, const struct pl_phone_prefix *p, size_t np,
                     const char *cc, char *out, size_t outlen, size_t *at);

#endif
