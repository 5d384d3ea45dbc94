/* push_intake.c -- receipts of mail taken in (push_intake.h): a repeated
 * delivery from Postfix is stored once. */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "address.h"
#include "push.h"
#include "push_intake.h"

#define KEY_MAX (PL_ADDR_SIZE + PL_PIN_DIGEST_LEN + 2)

int pl_pin_digest(const char *user, const char *sender, const void *bytes, size_t len,
                  char *digest)
{
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n = 0;
    int ok = c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(c, user, strlen(user) + 1) == 1 &&
             EVP_DigestUpdate(c, sender ? sender : "", strlen(sender ? sender : "") + 1) == 1 &&
             EVP_DigestUpdate(c, bytes, len) == 1 && EVP_DigestFinal_ex(c, md, &n) == 1 &&
             n == 32;
    EVP_MD_CTX_free(c);
    if (!ok)
        return -1;
    for (unsigned i = 0; i < n; i++)
        snprintf(digest + 2 * i, 3, "%02x", md[i]);
    return 0;
}

static size_t pin_key(const char *user, const char *digest, char *key)
{
    char u[PL_ADDR_SIZE];
    if (pl_addr_canon(user, u, sizeof(u)) != 0 || strlen(digest) != PL_PIN_DIGEST_LEN)
        return 0;
    return (size_t)snprintf(key, KEY_MAX, "%s\n%s", u, digest);
}

int pl_pin_get(pl_txn *t, const char *user, const char *digest, int64_t since, char *id,
               size_t idlen)
{
    char key[KEY_MAX], *v = NULL, mid[PL_PID_LEN + 1];
    long long when = 0;
    size_t klen = pin_key(user, digest, key);
    int rc;
    if (klen == 0)
        return PL_NOTFOUND;
    if ((rc = pl_store_get(t, PL_T_PIN, key, klen, (void **)&v, NULL, 0)) != PL_OK)
        return rc;
    rc = sscanf(v, "%32s %lld", mid, &when) == 2 && strlen(mid) == PL_PID_LEN && when >= since
             ? PL_OK : PL_NOTFOUND;
    free(v);
    if (rc == PL_OK)
        snprintf(id, idlen, "%s", mid);
    return rc;
}

int pl_pin_put(pl_txn *t, const char *user, const char *digest, const char *id, int64_t now)
{
    char key[KEY_MAX], val[PL_PID_LEN + 24];
    size_t klen = pin_key(user, digest, key);
    if (klen == 0 || strlen(id) != PL_PID_LEN)
        return PL_ERR;
    snprintf(val, sizeof(val), "%s %" PRId64, id, now);
    return pl_store_put(t, PL_T_PIN, key, klen, val, strlen(val));
}

struct purge { pl_txn *t; int64_t before; unsigned n; };

static int purge_visit(void *ctx, const void *k, size_t kl, const void *v, size_t vl)
{
    struct purge *p = ctx;
    const char *sp = memchr(v, ' ', vl);
    char num[24];
    size_t nl = sp ? vl - (size_t)(sp + 1 - (const char *)v) : 0;
    if (sp == NULL || nl == 0 || nl >= sizeof(num))
        return 0;
    memcpy(num, sp + 1, nl);
    num[nl] = '\0';
    if (strtoll(num, NULL, 10) >= p->before)
        return 0;
    p->n++;
    return pl_store_del(p->t, PL_T_PIN, k, kl) == PL_OK ? 0 : PL_ERR;
}

int pl_pin_purge(pl_txn *t, int64_t before, unsigned *n)
{
    struct purge p = {t, before, 0};
    int rc = pl_store_scan(t, PL_T_PIN, "", 0, purge_visit, &p);
    if (n)
        *n = p.n;
    return rc < 0 ? rc : PL_OK;
}
