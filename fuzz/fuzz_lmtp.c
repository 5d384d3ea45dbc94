/* fuzz_lmtp.c -- libFuzzer target: the LMTP server (lib/lmtp_server.c) as
 * postlink-syncd runs it.  The input is what a client sends; it reaches
 * pl_lmtp_serve through a real socketpair, a peer thread swallows the
 * replies, and the deliver callback accepts every message after checking
 * the envelope it is handed.  Odd-sized inputs run with the DSN option. */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "lmtp_server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_MSG 16384
#define MAX_RCPTS 8

static volatile unsigned sum;                 /* keeps the reads below */

static void deliver(void *ctx, const struct pl_lmtp_envelope *env,
                    char (*replies)[PL_LMTP_REPLY_MAX])
{
    (void)ctx;
    if (env->nrcpts == 0 || env->nrcpts > MAX_RCPTS || env->msglen > MAX_MSG)
        abort();
    sum += (unsigned)strlen(env->sender);
    for (size_t i = 0; i < env->msglen; i++)      /* every byte must be readable */
        sum += (unsigned char)env->msg[i];
    for (size_t i = 0; i < env->nrcpts; i++) {
        if (env->rcpts[i][0] == '\0')
            abort();                              /* refused by the server */
        sum += (unsigned)strlen(env->rcpts[i]);
        if (env->notify[i] != NULL)               /* the DSN option: checked values */
            sum += (unsigned)strlen(env->notify[i]);
        if (env->orcpt[i] != NULL && strchr(env->orcpt[i], ';') == NULL)
            abort();
        /* one odd reply now and then: the server must replace it */
        snprintf(replies[i], PL_LMTP_REPLY_MAX, "%s",
                 env->msglen % 7 == 3 ? "2500 junk\r\n" : "250 2.0.0 delivered");
    }
}

static const char *check_rcpt(void *ctx, const char *rcpt)
{
    (void)ctx;
    if (strncmp(rcpt, "refuse", 6) == 0)
        return "550 5.1.1 not a postlink sync address";
    if (strncmp(rcpt, "bogus", 5) == 0)
        return "250 accepted, wrongly";           /* must become a 550 */
    return NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pl_lmtp_server_opts o = {
        .hostname = "fuzz.postlink.invalid", .max_msg_bytes = MAX_MSG,
        .max_rcpts = MAX_RCPTS, .idle_timeout_s = 5,
        .deliver = deliver, .check_rcpt = check_rcpt,
        .dsn = size % 2, .smtputf8 = size % 2,    /* both with and without DSN */
    };
    struct fuzz_peer p;
    int fd = fuzz_peer_start(&p, data, size);

    pl_lmtp_serve(fd, &o);                        /* closes fd */
    fuzz_peer_finish(&p);
    return 0;
}
