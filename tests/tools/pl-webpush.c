/* pl-webpush.c -- test tool for lib/webpush.h and lib/webpush_send.h: sends
 * one Web Push message the way postlink-pushd does, and makes or shows a
 * VAPID key.  Used by tests/integration/t_webpush.sh against a mock push
 * service.
 *
 *   pl-webpush genkey PEM          new P-256 key (mode 0600); prints its public key
 *   pl-webpush pubkey PEM          prints the key's public key (base64url)
 *   pl-webpush send --vapid-key PEM --subject mailto:... [--endpoint URL
 *       --p256dh X --auth Y | --subscription FILE] [--payload TEXT]
 *       [--ttl N] [--topic T] [--urgency U] [--timeout-ms N] [--ca-file F]
 *   pl-webpush header --vapid-key PEM --subject URI --endpoint URL [--now T]
 *       [--exp SECS]               prints the Authorization header's value
 *   pl-webpush encrypt --p256dh X --auth Y [--payload TEXT]
 *                                  writes the aes128gcm body to stdout
 *
 * --subscription reads PushSubscription JSON (state/push_sub.h's parser).
 * send prints "<http status> <result>" (sent, gone, later, refused) and
 * exits 0 sent, 2 gone, 3 refused, 75 no answer / try later, 64 bad
 * arguments (nothing sent); what went wrong goes to stderr. */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "push_sub.h"
#include "webpush.h"
#include "webpush_send.h"

#define EX_USAGE 64
#define EX_TEMPFAIL 75

static int usage(void)
{
    fprintf(stderr, "usage: pl-webpush genkey PEM | pubkey PEM |\n"
                    "       send --vapid-key PEM --subject URI (--endpoint URL --p256dh KEY "
                    "--auth SECRET | --subscription FILE)\n"
                    "            [--payload TEXT] [--ttl N] [--topic T] [--urgency U] "
                    "[--timeout-ms N] [--ca-file F]\n"
                    "       header --vapid-key PEM --subject URI --endpoint URL [--now T] [--exp S]\n"
                    "       encrypt --p256dh KEY --auth SECRET [--payload TEXT]\n");
    return EX_USAGE;
}

static int key_cmd(int genkey, const char *pem)
{
    char err[512];
    pl_vapid_key *k;
    if (genkey && pl_vapid_generate(pem, err, sizeof(err)) != 0) {
        fprintf(stderr, "pl-webpush: %s\n", err);
        return 1;
    }
    if ((k = pl_vapid_load(pem, err, sizeof(err))) == NULL) {
        fprintf(stderr, "pl-webpush: %s\n", err);
        return 1;
    }
    printf("%s\n", pl_vapid_public(k));
    pl_vapid_free(k);
    return 0;
}

/* the subscription JSON in path into sub: 0 or -1 */
static int read_sub(const char *path, struct pl_webpush_sub *sub)
{
    char buf[PL_PSUB_JSON_MAX + 2], err[512];
    size_t n;
    FILE *fp = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
    if (fp == NULL) {
        perror(path);
        return -1;
    }
    n = fread(buf, 1, sizeof(buf), fp);
    if (fp != stdin)
        fclose(fp);
    if (pl_psub_parse_json(buf, n, sub, err, sizeof(err)) != 0) {
        fprintf(stderr, "pl-webpush: %s: %s\n", path, err);
        return -1;
    }
    return 0;
}

static int copy(char *dst, size_t size, const char *src, const char *what)
{
    if (strlen(src) >= size) {
        fprintf(stderr, "pl-webpush: %s too long\n", what);
        return -1;
    }
    memcpy(dst, src, strlen(src) + 1);
    return 0;
}

struct args {
    struct pl_webpush_sub sub;
    const char *pem, *subject, *payload, *topic, *urgency, *ca;
    unsigned long ttl, timeout_ms, exp;
    long long now;
    int have_sub;
};

/* the options of send, header, encrypt: 0, or EX_USAGE */
static int parse_args(int argc, char **argv, struct args *a)
{
    static const struct option opts[] = {
        {"endpoint", required_argument, NULL, 'e'},   {"p256dh", required_argument, NULL, 'p'},
        {"auth", required_argument, NULL, 'a'},       {"subscription", required_argument, NULL, 's'},
        {"vapid-key", required_argument, NULL, 'k'},  {"subject", required_argument, NULL, 'j'},
        {"payload", required_argument, NULL, 'd'},    {"ttl", required_argument, NULL, 't'},
        {"topic", required_argument, NULL, 'o'},      {"urgency", required_argument, NULL, 'u'},
        {"timeout-ms", required_argument, NULL, 'm'}, {"ca-file", required_argument, NULL, 'c'},
        {"now", required_argument, NULL, 'n'},        {"exp", required_argument, NULL, 'x'},
        {NULL, 0, NULL, 0},
    };
    char *end;
    int c, bad = 0;

    memset(a, 0, sizeof(*a));
    a->payload = "";
    a->ttl = 60;
    a->timeout_ms = 10000;
    a->now = (long long)time(NULL);
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'e': bad |= copy(a->sub.endpoint, sizeof(a->sub.endpoint), optarg, "--endpoint"); break;
        case 'p': bad |= copy(a->sub.p256dh, sizeof(a->sub.p256dh), optarg, "--p256dh"); break;
        case 'a': bad |= copy(a->sub.auth, sizeof(a->sub.auth), optarg, "--auth"); break;
        case 's': bad |= read_sub(optarg, &a->sub); a->have_sub = 1; break;
        case 'k': a->pem = optarg; break;
        case 'j': a->subject = optarg; break;
        case 'd': a->payload = optarg; break;
        case 'o': a->topic = optarg; break;
        case 'u': a->urgency = optarg; break;
        case 'c': a->ca = optarg; break;
        case 'n':
            a->now = strtoll(optarg, &end, 10);
            bad |= *optarg == '\0' || *end != '\0';
            break;
        case 't':
        case 'm':
        case 'x':
            *(c == 't' ? &a->ttl : c == 'm' ? &a->timeout_ms : &a->exp) = strtoul(optarg, &end, 10);
            bad |= *optarg == '\0' || *end != '\0' || strchr(optarg, '-') != NULL;
            break;
        default: return usage();
        }
    }
    if (bad)
        return EX_USAGE;
    return optind == argc ? 0 : usage();
}

static pl_vapid_key *load(const char *pem)
{
    char err[512];
    pl_vapid_key *k = pl_vapid_load(pem, err, sizeof(err));
    if (k == NULL)
        fprintf(stderr, "pl-webpush: %s\n", err);
    return k;
}

static int send_cmd(int argc, char **argv)
{
    static const char *const words[] = {"sent", "gone", "later", "refused"};
    struct args a;
    char err[1024];
    pl_vapid_key *k;
    long status = 0;
    enum pl_wp_result r;

    if (parse_args(argc, argv, &a) != 0)
        return EX_USAGE;
    if (a.pem == NULL || a.subject == NULL ||
        (!a.have_sub && (!a.sub.endpoint[0] || !a.sub.p256dh[0] || !a.sub.auth[0])))
        return usage();
    if ((k = load(a.pem)) == NULL)
        return EX_USAGE;
    r = pl_webpush_send(&a.sub, k, a.subject, a.payload, strlen(a.payload), (unsigned)a.ttl,
                        a.topic, a.urgency, (unsigned)a.timeout_ms, a.ca, &status, err,
                        sizeof(err));
    pl_vapid_free(k);
    if (r == PL_WP_BADARG) {
        fprintf(stderr, "pl-webpush: %s\n", err);
        return EX_USAGE;
    }
    printf("%ld %s\n", status, words[r]);
    if (r != PL_WP_SENT)
        fprintf(stderr, "pl-webpush: %s\n", err);
    return r == PL_WP_SENT ? 0 : r == PL_WP_GONE ? 2 : r == PL_WP_REFUSED ? 3 : EX_TEMPFAIL;
}

static int header_cmd(int argc, char **argv)
{
    struct args a;
    char out[4096], err[1024];
    pl_vapid_key *k;
    int rc;

    if (parse_args(argc, argv, &a) != 0)
        return EX_USAGE;
    if (a.pem == NULL || a.subject == NULL || !a.sub.endpoint[0])
        return usage();
    if ((k = load(a.pem)) == NULL)
        return EX_USAGE;
    rc = pl_vapid_header(k, a.sub.endpoint, a.subject, (int64_t)a.now, (long)a.exp, out,
                         sizeof(out), err, sizeof(err));
    pl_vapid_free(k);
    if (rc != 0) {
        fprintf(stderr, "pl-webpush: %s\n", err);
        return EX_USAGE;
    }
    printf("%s\n", out);
    return 0;
}

static int encrypt_cmd(int argc, char **argv)
{
    struct args a;
    unsigned char body[PL_WP_BODY_MAX];
    char err[1024];
    size_t n;

    if (parse_args(argc, argv, &a) != 0)
        return EX_USAGE;
    if (!a.sub.p256dh[0] || !a.sub.auth[0])
        return usage();
    if (pl_webpush_encrypt(a.sub.p256dh, a.sub.auth, a.payload, strlen(a.payload), 0, body,
                           sizeof(body), &n, err, sizeof(err)) != 0) {
        fprintf(stderr, "pl-webpush: %s\n", err);
        return EX_USAGE;
    }
    return fwrite(body, 1, n, stdout) == n && fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "genkey") == 0)
        return key_cmd(1, argv[2]);
    if (argc == 3 && strcmp(argv[1], "pubkey") == 0)
        return key_cmd(0, argv[2]);
    if (argc >= 2 && strcmp(argv[1], "send") == 0)
        return send_cmd(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "header") == 0)
        return header_cmd(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "encrypt") == 0)
        return encrypt_cmd(argc - 1, argv + 1);
    return usage();
}
