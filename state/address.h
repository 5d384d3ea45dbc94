/* address.h -- mail addresses as postlink keys them: syntax check and the
 * canonical (lower-case) form used for users and devices. */
#ifndef PL_ADDRESS_H
#define PL_ADDRESS_H

#include <stddef.h>

/* NULL if addr is a usable local@domain address, else why not. */
const char *pl_addr_check(const char *addr);
/* Lower-case copy of addr into out (outlen >= strlen(addr) + 1). */
void pl_addr_canon(const char *addr, char *out, size_t outlen);
/* The address of a MAIL FROM / RCPT TO argument as postlink keys it:
 * without spaces and <>, without the trailing dots Postfix drops, lower
 * case. */
void pl_addr_from_smtp(const char *arg, char *out, size_t outlen);
/* The domain part (after the last '@'), or "" if none. */
const char *pl_addr_domain(const char *addr);

#endif
