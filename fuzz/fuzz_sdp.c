/* fuzz_sdp.c -- libFuzzer target: an SDP body as postlink-sipd gets it in an
 * INVITE or a 200 OK (lib/sdp_tcp.c: pl_sdp_parse on the exact, unterminated
 * bytes), what the parser promises of a result, a rebuild of it that must
 * parse back the same, the RFC 4145 role rules on its a=setup, and the input
 * as the POSTLINK token line a passive side reads. */
#include "config.h"

#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "sdp_tcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TOK "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

static void check_result(const struct pl_sdp_tcp *m)
{
    unsigned char bin[16];

    if ((m->family != AF_INET && m->family != AF_INET6) ||
        memchr(m->addr, '\0', sizeof(m->addr)) == NULL ||
        inet_pton(m->family, m->addr, bin) != 1 || m->port < 1 || m->port > 65535 ||
        m->setup < PL_SETUP_NONE || m->setup > PL_SETUP_HOLDCONN ||
        (m->connection_new != 0 && m->connection_new != 1) ||
        (m->token[0] && !pl_sdp_token_ok(m->token)) || strcasecmp(m->fmt, "smtp") != 0)
        abort();
}

/* Built from a parsed result, the SDP parses back to the same. */
static void check_rebuild(const struct pl_sdp_tcp *m)
{
    struct pl_sdp_tcp b = *m, r;
    char out[1024], err[128];
    int n;

    if (m->setup == PL_SETUP_NONE || !m->token[0])
        return;
    n = pl_sdp_build(out, sizeof(out), 1, 2, &b);
    if (n <= 0 || pl_sdp_parse(out, (size_t)n, &r, err, sizeof(err)) != 0 ||
        strcmp(r.addr, m->addr) != 0 || r.family != m->family || r.port != m->port ||
        r.setup != m->setup || r.connection_new != 1 || strcmp(r.token, m->token) != 0)
        abort();
}

static void check_roles(enum pl_sdp_setup s)
{
    enum pl_sdp_setup ans, mine;

    for (int pref = PL_SETUP_NONE; pref <= PL_SETUP_PASSIVE; pref++)
        if (pl_sdp_answer_setup(s, (enum pl_sdp_setup)pref, &ans) == 0 &&
            (pl_sdp_offer_setup(ans, &mine) != 0 ||
             pl_sdp_i_connect(ans) + pl_sdp_i_connect(mine) != 1))
            abort();                           /* exactly one side connects */
}

static void check_token_line(const uint8_t *data, size_t size)
{
    static const char line[] = "POSTLINK " TOK "\r\n";
    const size_t n = sizeof(line) - 1;
    int want = (size == n && memcmp(data, line, n) == 0) ||
               (size == n - 1 && memcmp(data, line, n - 2) == 0 && data[n - 2] == '\n');

    if (pl_sdp_token_line_check((const char *)data, size, TOK) != want)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct pl_sdp_tcp m;
    char err[256], small[8];

    if (pl_sdp_parse((const char *)data, size, &m, err, sizeof(err)) == 0) {
        check_result(&m);
        check_rebuild(&m);
        check_roles(m.setup);
    } else if (err[0] == '\0' || m.port != 0 || m.token[0] != '\0') {
        abort();                               /* an error names its reason, *m is zeroed */
    }
    (void)pl_sdp_parse((const char *)data, size, &m, small, sizeof(small));
    check_token_line(data, size);
    return 0;
}
