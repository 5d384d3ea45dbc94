/* address.h -- mail addresses as postlink keys them: syntax check and the
 * canonical (lower-case) form used for users and devices. */
#ifndef PL_ADDRESS_H
#define PL_ADDRESS_H

#include <stddef.h>

/* NULL if addr is a usable local@domain address, else why not. */
const char *pl_addr_check(const char *addr);
/* Lower-case copy of addr into out (outlen >= strlen(addr) + 1). */
void pl_addr_canon(const char *addr, char *out, size_t outlen);
/* The domain part (after the last '@'), or "" if none. */
const char *pl_addr_domain(const char *addr);

#endif
