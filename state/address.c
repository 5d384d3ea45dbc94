/* address.c -- implementation of address.h.  Deliberately strict: postlink
 * keys state by these addresses, so it accepts the dot-atom form that
 * registrations and SASL logins use, not every RFC 5322 oddity. */
#include "config.h"

#include <ctype.h>
#include <string.h>

#include "address.h"

const char *pl_addr_check(const char *addr)
{
    const char *at = strrchr(addr, '@'), *p;
    size_t len = strlen(addr);

    if (len == 0)
        return "empty address";
    if (len > 254)
        return "address longer than 254 characters";
    if (at == NULL || at == addr || at[1] == '\0')
        return "not of the form local-part@domain";
    if (at - addr > 64)
        return "local part longer than 64 characters";
    for (p = addr; p < at; p++)
        if (!(isalnum((unsigned char)*p) || strchr("!#$%&'*+-/=?^_`{|}~.", *p)))
            return "local part has a character other than letters, digits and !#$%&'*+-/=?^_`{|}~.";
    if (addr[0] == '.' || at[-1] == '.' || strstr(addr, "..") != NULL)
        return "local part has a misplaced dot";
    for (p = at + 1; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.'))
            return "domain has a character other than letters, digits, '-' and '.'";
    if (at[1] == '.' || addr[len - 1] == '.' || strstr(at, "..") != NULL)
        return "domain has a misplaced dot";
    return NULL;
}

int pl_addr_canon(const char *addr, char *out, size_t outlen)
{
    size_t n = strlen(addr);

    if (outlen == 0)
        return -1;
    if (n >= outlen) {
        out[0] = '\0';
        return -1;
    }
    for (size_t i = 0; i <= n; i++)          /* the NUL too; addr may be out */
        out[i] = (char)tolower((unsigned char)addr[i]);
    return 0;
}

const char *pl_addr_domain(const char *addr)
{
    const char *at = strrchr(addr, '@');
    return at ? at + 1 : "";
}

int pl_addr_from_smtp(const char *arg, char *out, size_t outlen)
{
    size_t n;

    if (outlen == 0)
        return -1;
    out[0] = '\0';
    while (*arg == ' ')
        arg++;
    if (*arg == '<')
        arg++;
    n = strcspn(arg, ">");
    while (n > 0 && arg[n - 1] == '.')       /* Postfix drops trailing dots */
        n--;
    if (n > PL_ADDR_MAX || n >= outlen)
        return -1;
    memcpy(out, arg, n);
    out[n] = '\0';
    return pl_addr_canon(out, out, outlen);
}
