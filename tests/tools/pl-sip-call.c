/* pl-sip-call.c -- test front end to postlink-sipd's SIP user agent
 * (agents/sip/sip_ua.h): a callee that registers and answers, or a caller
 * that places calls through the SIP server.
 *
 *   pl-sip-call answer --proxy URI --bind URI --number N [--domain D]
 *               [--status 200|488|...] [--sdp FILE] [--auth USER:PASS]
 *               [--offer-dir DIR] [--hangup-after MS] [--max-incoming N] [-v]
 *       registers N; prints "registered" (or "register-failed STATUS" and
 *       exits 2); for each INVITE that reaches on_invite prints
 *       "invite CALLID from FROM src ADDR transport T user U", the offer
 *       between "offer-begin"/"offer-end" (and writes it to DIR/CALLID.sdp),
 *       then "answer STATUS"; "call-end CALLID by-peer|by-us" at the end.
 *       Runs until SIGTERM/SIGINT, then unregisters and prints "stopped".
 *   pl-sip-call call --proxy URI --bind URI --number N --sdp FILE [--domain D]
 *               [--timeout-ms T] [--auth USER:PASS] [--answer-out FILE]
 *               [--count C] [--parallel P] [--hold-ms MS] [-v]
 *       places C calls (default 1) from each of P threads (default 1), one
 *       after the other: for each prints "status S REASON", "call-id",
 *       "ringing 0|1", "ms-180", "ms-200", the answer between
 *       "answer-begin"/"answer-end" (and into FILE), then (after MS ms)
 *       hangs up and prints "bye STATUS ms MS" (STATUS -1: the callee hung
 *       up first; "call-end CALLID by-peer" then).  With C*P > 1 a summary
 *       line "summary calls N ok K median-200-ms M median-bye-ms B
 *       median-call-us U median-hangup-us H" (the API calls' wall time).
 *       --hangup-after MS (callee): it sends BYE itself MS ms after a 200
 *       and prints "hangup CALLID bye STATUS".
 *       Exit 0 when every call was answered 200 and its BYE 200, 2 if not.
 * Exit 1 for usage errors or when the user agent cannot start. */
#include "config.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "sip_ua.h"

static struct {
    const char *mode, *proxy, *bind, *number, *domain, *sdp_file, *auth, *offer_dir,
        *answer_out;
    int status, verbose;
    unsigned timeout_ms, count, parallel, hangup_after_ms, max_incoming, hold_ms;
} opt = { .status = 200, .domain = "127.0.0.1", .count = 1, .parallel = 1 };

static char *sdp;                   /* contents of --sdp */
static struct pl_sip_ua *ua;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static int usage(void)
{
    fprintf(stderr, "usage: pl-sip-call answer|call --proxy URI --bind URI --number N [options]\n"
                    "  (see the comment at the top of tests/tools/pl-sip-call.c)\n");
    return 1;
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    size_t r;
    while (b && (r = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n < 2) {
            char *nb = realloc(b, cap *= 2);
            if (!nb) {
                free(b);
                b = NULL;
            }
            b = nb;
        }
    }
    fclose(f);
    if (b)
        b[n] = '\0';
    return b;
}

static void write_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "wb");
    if (!f || fputs(s, f) < 0 || fclose(f) != 0)
        fprintf(stderr, "pl-sip-call: cannot write %s\n", path);
}

/* ---- callee ---------------------------------------------------------------- */

struct later_hangup { char call_id[256]; };

static void *hangup_thread(void *arg)
{
    struct later_hangup *h = arg;
    usleep(opt.hangup_after_ms * 1000);
    int st = pl_sip_hangup_incoming(ua, h->call_id);
    pthread_mutex_lock(&out_mu);
    printf("hangup %s bye %d\n", h->call_id, st);
    pthread_mutex_unlock(&out_mu);
    free(h);
    return NULL;
}

static int on_invite(void *ctx, const struct pl_sip_incoming *in, char *answer, size_t len)
{
    (void)ctx;
    pthread_mutex_lock(&out_mu);
    printf("invite %s from %s src %s transport %s user %s\n", in->call_id, in->from, in->src,
           in->transport, in->ruri_user);
    printf("offer-begin\n%s%soffer-end\n", in->offer_sdp,
           *in->offer_sdp && in->offer_sdp[strlen(in->offer_sdp) - 1] != '\n' ? "\n" : "");
    if (opt.offer_dir) {
        char path[1024];
        snprintf(path, sizeof path, "%s/%s.sdp", opt.offer_dir, in->call_id);
        write_file(path, in->offer_sdp);
    }
    int st = opt.status;
    if (st == 200) {
        if (strlen(sdp) >= len)
            st = 500;
        else
            memcpy(answer, sdp, strlen(sdp) + 1);
    }
    printf("answer %d\n", st);
    pthread_mutex_unlock(&out_mu);
    if (st == 200 && opt.hangup_after_ms) {
        struct later_hangup *h = calloc(1, sizeof *h);
        pthread_t t;
        if (h) {
            snprintf(h->call_id, sizeof h->call_id, "%s", in->call_id);
            if (pthread_create(&t, NULL, hangup_thread, h) == 0)
                pthread_detach(t);
            else
                free(h);
        }
    }
    return st;
}

static void on_call_end(void *ctx, const char *call_id, int by_peer)
{
    (void)ctx;
    pthread_mutex_lock(&out_mu);
    printf("call-end %s %s\n", call_id, by_peer ? "by-peer" : "by-us");
    pthread_mutex_unlock(&out_mu);
}

static int run_answer(void)
{
    int st = 0;
    if (pl_sip_ua_wait_registered(ua, 10000, &st) < 0) {
        printf("register-failed %d\n", st);
        pl_sip_ua_stop(ua);
        return 2;
    }
    printf("registered\n");
    sigset_t set;
    int sig;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigwait(&set, &sig);
    pl_sip_ua_stop(ua);
    printf("stopped\n");
    return 0;
}

/* ---- caller ---------------------------------------------------------------- */

struct caller {
    pthread_t t;
    long *ms_200, *ms_bye, *us_call, *us_hangup;
    unsigned ok;
};

static long us_since(const struct timespec *t0)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long)(now.tv_sec - t0->tv_sec) * 1000000 + (now.tv_nsec - t0->tv_nsec) / 1000;
}

static void *caller_thread(void *arg)
{
    struct caller *c = arg;
    for (unsigned i = 0; i < opt.count; i++) {
        struct pl_sip_call call;
        struct timespec t0;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pl_sip_call(ua, opt.number, sdp, &call);
        long us = us_since(&t0);
        pthread_mutex_lock(&out_mu);
        printf("status %d %s\ncall-id %s\nringing %d\nms-180 %ld\nms-200 %ld\n", call.status,
               call.reason, call.call_id, call.ringing, call.ms_180, call.ms_final);
        if (call.answer_sdp) {
            size_t n = strlen(call.answer_sdp);
            printf("answer-begin\n%s%sanswer-end\n", call.answer_sdp,
                   n && call.answer_sdp[n - 1] != '\n' ? "\n" : "");
            if (opt.answer_out)
                write_file(opt.answer_out, call.answer_sdp);
        }
        fflush(stdout);
        pthread_mutex_unlock(&out_mu);
        int up = call.status == 200;
        if (up) {
            c->ms_200[i] = call.ms_final;
            c->us_call[i] = us;
            if (opt.hold_ms)
                usleep(opt.hold_ms * 1000);
        }
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pl_sip_hangup(ua, &call);
        us = us_since(&t0);
        if (up) {
            pthread_mutex_lock(&out_mu);
            printf("bye %d ms %ld\n", call.bye_status, call.ms_bye);
            pthread_mutex_unlock(&out_mu);
            c->ms_bye[i] = call.ms_bye;
            c->us_hangup[i] = us;
            if (call.bye_status == 200)
                c->ok++;
        }
    }
    return NULL;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

static long median(long *v, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] >= 0)
            v[k++] = v[i];
    if (!k)
        return -1;
    qsort(v, k, sizeof *v, cmp_long);
    return v[k / 2];
}

static int run_call(void)
{
    size_t total = (size_t)opt.count * opt.parallel;
    long *ms200 = malloc(total * sizeof(long)), *msbye = malloc(total * sizeof(long));
    long *uscall = malloc(total * sizeof(long)), *ushang = malloc(total * sizeof(long));
    struct caller *cs = calloc(opt.parallel, sizeof *cs);
    if (!ms200 || !msbye || !uscall || !ushang || !cs)
        return 1;
    for (size_t i = 0; i < total; i++)
        ms200[i] = msbye[i] = uscall[i] = ushang[i] = -1;
    for (unsigned p = 0; p < opt.parallel; p++) {
        cs[p].ms_200 = ms200 + (size_t)p * opt.count;
        cs[p].ms_bye = msbye + (size_t)p * opt.count;
        cs[p].us_call = uscall + (size_t)p * opt.count;
        cs[p].us_hangup = ushang + (size_t)p * opt.count;
        if (pthread_create(&cs[p].t, NULL, caller_thread, &cs[p]) != 0)
            return 1;
    }
    unsigned ok = 0;
    for (unsigned p = 0; p < opt.parallel; p++) {
        pthread_join(cs[p].t, NULL);
        ok += cs[p].ok;
    }
    if (total > 1)
        printf("summary calls %zu ok %u median-200-ms %ld median-bye-ms %ld "
               "median-call-us %ld median-hangup-us %ld\n", total, ok, median(ms200, total),
               median(msbye, total), median(uscall, total), median(ushang, total));
    pl_sip_ua_stop(ua);
    free(ms200);
    free(msbye);
    free(uscall);
    free(ushang);
    free(cs);
    return ok == total ? 0 : 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    opt.mode = argv[1];
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-v")) {
            opt.verbose++;
            continue;
        }
        if (!v)
            return usage();
        i++;
        if (!strcmp(a, "--proxy")) opt.proxy = v;
        else if (!strcmp(a, "--bind")) opt.bind = v;
        else if (!strcmp(a, "--number")) opt.number = v;
        else if (!strcmp(a, "--domain")) opt.domain = v;
        else if (!strcmp(a, "--status")) opt.status = atoi(v);
        else if (!strcmp(a, "--sdp")) opt.sdp_file = v;
        else if (!strcmp(a, "--auth")) opt.auth = v;
        else if (!strcmp(a, "--offer-dir")) opt.offer_dir = v;
        else if (!strcmp(a, "--answer-out")) opt.answer_out = v;
        else if (!strcmp(a, "--timeout-ms")) opt.timeout_ms = (unsigned)atoi(v);
        else if (!strcmp(a, "--count")) opt.count = (unsigned)atoi(v);
        else if (!strcmp(a, "--parallel")) opt.parallel = (unsigned)atoi(v);
        else if (!strcmp(a, "--hangup-after")) opt.hangup_after_ms = (unsigned)atoi(v);
        else if (!strcmp(a, "--max-incoming")) opt.max_incoming = (unsigned)atoi(v);
        else if (!strcmp(a, "--hold-ms")) opt.hold_ms = (unsigned)atoi(v);
        else return usage();
    }
    int answer = !strcmp(opt.mode, "answer");
    if ((!answer && strcmp(opt.mode, "call")) || !opt.proxy || !opt.bind || !opt.number ||
        opt.count < 1 || opt.parallel < 1 || (!answer && !opt.sdp_file))
        return usage();
    sdp = opt.sdp_file ? read_file(opt.sdp_file) : strdup("");
    if (!sdp) {
        fprintf(stderr, "pl-sip-call: cannot read %s\n", opt.sdp_file);
        return 1;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    pl_log_open("pl-sip-call", PL_LOG_STDERR, 0);
    pl_log_verbose(opt.verbose);

    char user[256] = "", *pass = NULL;
    if (opt.auth) {
        snprintf(user, sizeof user, "%s", opt.auth);
        pass = strchr(user, ':');
        if (!pass)
            return usage();
        *pass++ = '\0';
    }
    struct pl_sip_ua_conf conf = {
        .proxy = opt.proxy, .bind = opt.bind, .domain = opt.domain,
        .number = answer ? opt.number : NULL,
        .auth_user = opt.auth ? user : NULL, .auth_password = pass,
        .register_expires_s = 300, .invite_timeout_ms = opt.timeout_ms,
        .max_incoming = opt.max_incoming, .verbose = opt.verbose > 1 ? 9 : 0,
    };
    struct pl_sip_ua_callbacks cb = { .on_invite = on_invite, .on_call_end = on_call_end };
    /* SIGTERM/SIGINT are blocked in every thread; run_answer sigwaits */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    char err[256];
    ua = pl_sip_ua_start(&conf, &cb, NULL, err, sizeof err);
    if (!ua) {
        fprintf(stderr, "pl-sip-call: %s\n", err);
        return 1;
    }
    int rc = answer ? run_answer() : run_call();
    free(sdp);
    return rc;
}
