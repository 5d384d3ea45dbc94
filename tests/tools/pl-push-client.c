/* pl-push-client.c -- a device client of postlink-pushd's API, on libcurl,
 * written from postlink-pushd(8) alone: what a third party's device would
 * do.  Used by the tests, the demo and the benchmark.
 *
 *   pl-push-client --url URL --token-file F [--cacert F] [--resolve NAME:PORT:ADDR] CMD
 *     get ID|first [--ack ID] [--disp delete|move] [--room N] [--slots N] [--out FILE]
 *     ack ID [--disp delete|move] [--room N] [--slots N]
 *     wait [--timeout S]
 *     drain --dir DIR [--disp delete|move] [--room N] [--max N] [--retry-for S]
 *           [--follow S] [--slow-ms N]
 *   --timing: each request's line ends with its us=MICROSECONDS
 *
 * One request prints one line: "status=200 id=.. next=.. size=.. error=.. req=PATH?QUERY".
 * drain is the piggy-backed loop of seed Figs. 5-7: each message is stored
 * in DIR/<id>.eml (written and fsync'd) before its ack rides on the request
 * for the next; the id still to acknowledge is kept in DIR/.pending, so a
 * killed client (or a killed server) goes on without losing or doubling
 * anything.  A message offered again is recognised by its Postlink-Id and
 * counted as redelivered.  It ends with "requests=N messages=M
 * redelivered=R".  --timing adds "us=T" to each request's
 * line: microseconds from sending it to having the whole response
 * (bench/run push). */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

struct resp {
    long status;
    char id[64], next[64], error[64], size[32], retry[16];
    char *body;
    size_t len, cap;
};

static const char *base_url, *cacert, *resolve;
static char last_req[600];                 /* the last request, for the output line */
static char token[128];
static CURL *curl;
static unsigned long nrequests;
static int timing;
static long last_us;

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t k = sz * n;
    if (r->len + k + 1 > r->cap) {
        size_t cap = (r->len + k + 1) * 2;
        char *b = realloc(r->body, cap);
        if (b == NULL)
            return 0;
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, p, k);
    r->len += k;
    r->body[r->len] = '\0';
    return k;
}

static void hdr_value(const char *line, size_t n, const char *name, char *out, size_t olen)
{
    size_t nl = strlen(name);
    if (n <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    line += nl + 1, n -= nl + 1;
    while (n && (*line == ' ' || *line == '\t'))
        line++, n--;
    while (n && (line[n - 1] == '\r' || line[n - 1] == '\n' || line[n - 1] == ' '))
        n--;
    snprintf(out, olen, "%.*s", (int)n, line);
}

static size_t on_header(char *p, size_t sz, size_t n, void *ud)
{
    struct resp *r = ud;
    size_t k = sz * n;
    hdr_value(p, k, "Postlink-Id", r->id, sizeof(r->id));
    hdr_value(p, k, "Postlink-Next", r->next, sizeof(r->next));
    hdr_value(p, k, "Postlink-Error", r->error, sizeof(r->error));
    hdr_value(p, k, "Postlink-Size", r->size, sizeof(r->size));
    hdr_value(p, k, "Retry-After", r->retry, sizeof(r->retry));
    return k;
}

/* One request; -1 when it did not get an HTTP answer at all. */
static int request(const char *method, const char *path, const char *query, struct resp *r)
{
    char url[2048], auth[200];
    struct curl_slist *h = NULL;
    struct timespec t0, t1;
    CURLcode rc;
    free(r->body);
    memset(r, 0, sizeof(*r));
    snprintf(url, sizeof(url), "%s%s%s%s", base_url, path, query[0] ? "?" : "", query);
    snprintf(last_req, sizeof(last_req), "%s%s%s", path, query[0] ? "?" : "", query);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
    h = curl_slist_append(h, auth);
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 120L);
    if (cacert)
        curl_easy_setopt(curl, CURLOPT_CAINFO, cacert);
    if (resolve) {                                  /* "name:port:127.0.0.1" */
        static struct curl_slist *rl;
        if (rl == NULL)
            rl = curl_slist_append(NULL, resolve);
        curl_easy_setopt(curl, CURLOPT_RESOLVE, rl);
    }
    nrequests++;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = curl_easy_perform(curl);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    last_us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    curl_slist_free_all(h);
    if (rc != CURLE_OK) {
        fprintf(stderr, "pl-push-client: %s %s: %s\n", method, path, curl_easy_strerror(rc));
        return -1;
    }
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    return 0;
}

static void print_resp(const struct resp *r)
{
    printf("status=%ld id=%s next=%s size=%s error=%s", r->status, r->id[0] ? r->id : "-",
           r->next[0] ? r->next : "-", r->size[0] ? r->size : "-",
           r->error[0] ? r->error : "-");
    if (timing)
        printf(" us=%ld", last_us);
    printf(" req=%s\n", last_req);
    fflush(stdout);
}

static int write_file(const char *path, const char *data, size_t len)
{
    char tmp[4096];
    int fd;
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0)
        return -1;
    if ((len && write(fd, data, len) != (ssize_t)len) || fsync(fd) != 0) {
        close(fd);
        return -1;
    }
    close(fd);
    return rename(tmp, path);
}

static void query_of(char *q, size_t qlen, const char *get, const char *ack, const char *disp,
                     long long room, long long slots)
{
    size_t n = 0;
    q[0] = '\0';
#define ADD(...) n += (size_t)snprintf(q + n, qlen - n, __VA_ARGS__)
    if (get)
        ADD("get=%s", get);
    if (ack)
        ADD("%sack=%s", n ? "&" : "", ack);
    if (ack && disp)
        ADD("&disp=%s", disp);
    if (room >= 0)
        ADD("%sroom=%lld", n ? "&" : "", room);
    if (slots >= 0)
        ADD("%sslots=%lld", n ? "&" : "", slots);
#undef ADD
}

struct drain {
    const char *dir, *disp;
    long long room, max;
    int retry_for, follow, slow_ms;
    unsigned long messages, redelivered;
};

static void pending_path(const struct drain *d, char *out, size_t len)
{
    snprintf(out, len, "%s/.pending", d->dir);
}

static void pending_set(const struct drain *d, const char *id)
{
    char p[4096];
    pending_path(d, p, sizeof(p));
    if (id == NULL)
        unlink(p);
    else if (write_file(p, id, strlen(id)) != 0)
        fprintf(stderr, "pl-push-client: %s: %s\n", p, strerror(errno));
}

static void pending_get(const struct drain *d, char *id, size_t len)
{
    char p[4096];
    FILE *fp;
    id[0] = '\0';
    pending_path(d, p, sizeof(p));
    if ((fp = fopen(p, "r")) != NULL) {
        if (fgets(id, (int)len, fp) == NULL)
            id[0] = '\0';
        fclose(fp);
    }
}

/* the message's bytes into DIR/<id>.eml; 1 if it was there already */
static int store_msg(struct drain *d, const struct resp *r)
{
    char p[4096];
    struct stat st;
    snprintf(p, sizeof(p), "%s/%s.eml", d->dir, r->id);
    if (stat(p, &st) == 0)
        return 1;
    if (write_file(p, r->body ? r->body : "", r->len) != 0) {
        fprintf(stderr, "pl-push-client: %s: %s\n", p, strerror(errno));
        exit(1);
    }
    return 0;
}

static int drain(struct drain *d)
{
    struct resp r = {0};
    char get[64] = "first", ack[64], q[512];
    time_t give_up = 0;
    unsigned busy = 0;
    pending_get(d, ack, sizeof(ack));
    for (;;) {
        if (d->max >= 0 && (long long)d->messages >= d->max && ack[0] == '\0')
            break;
        if (d->max >= 0 && (long long)d->messages >= d->max)
            get[0] = '\0';                          /* only the ack is left */
        query_of(q, sizeof(q), get[0] ? get : NULL, ack[0] ? ack : NULL, d->disp, d->room, -1);
        if (request("GET", "/v1/fetch", q, &r) != 0) {
            if (give_up == 0)
                give_up = time(NULL) + d->retry_for;
            if (time(NULL) >= give_up)
                return 1;
            usleep(200 * 1000);
            continue;
        }
        give_up = 0;
        print_resp(&r);
        if (r.status == 429 || r.status == 503) {
            if (++busy > 100)
                return 1;
            sleep(r.retry[0] ? (unsigned)atoi(r.retry) : 1);
            continue;
        }
        busy = 0;
        if (r.status == 409) {                      /* the ack was refused: start again */
            ack[0] = '\0';
            pending_set(d, NULL);
            snprintf(get, sizeof(get), "first");
            continue;
        }
        if (r.status == 200) {
            if (store_msg(d, &r))
                d->redelivered++;
            else
                d->messages++;
            snprintf(ack, sizeof(ack), "%s", r.id);
            pending_set(d, ack);
            snprintf(get, sizeof(get), "%s", strcmp(r.next, "none") == 0 ? "" : r.next);
            if (d->slow_ms)
                usleep((unsigned)d->slow_ms * 1000);
            continue;
        }
        if (r.status == 204 || r.status == 404) {   /* the ack (if any) was applied */
            ack[0] = '\0';
            pending_set(d, NULL);
            if (r.status == 404 && r.next[0] && strcmp(r.next, "none") != 0) {
                snprintf(get, sizeof(get), "%s", r.next);
                continue;
            }
            /* the ack-only request (or nothing waiting) ends a sequence;
             * new mail is announced to a held wait */
            if (d->follow > 0) {
                char wq[64];
                snprintf(wq, sizeof(wq), "timeout=%d", d->follow);
                if (request("GET", "/v1/wait", wq, &r) != 0)
                    return 1;
                print_resp(&r);
                if (r.status == 200) {
                    snprintf(get, sizeof(get), "first");
                    continue;
                }
            }
            break;
        }
        if (r.status == 507) {
            fprintf(stderr, "pl-push-client: storage full at %s\n", r.id);
            if (ack[0]) {                           /* the ack went with it */
                ack[0] = '\0';
                pending_set(d, NULL);
            }
            break;
        }
        fprintf(stderr, "pl-push-client: unexpected status %ld\n", r.status);
        free(r.body);
        return 1;
    }
    free(r.body);
    printf("requests=%lu messages=%lu redelivered=%lu\n", nrequests, d->messages,
           d->redelivered);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: pl-push-client --url URL --token-file F [--cacert F] "
                    "get|ack|wait|drain ...\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *cmd = NULL, *arg = NULL, *ack = NULL, *disp = NULL, *out = NULL;
    struct drain d = {.room = -1, .max = -1, .retry_for = 0};
    long long slots = -1;
    int timeout = -1, i, rc = 0;
    struct resp r = {0};
    char q[512];

    for (i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define OPT(name) (strcmp(o, name) == 0 && v && (i++, 1))
        if (OPT("--url")) base_url = v;
        else if (OPT("--token")) snprintf(token, sizeof(token), "%s", v);
        else if (OPT("--token-file")) {
            FILE *fp = fopen(v, "r");
            if (fp == NULL || fgets(token, sizeof(token), fp) == NULL) {
                fprintf(stderr, "pl-push-client: %s: cannot read\n", v);
                return 2;
            }
            fclose(fp);
            token[strcspn(token, "\r\n")] = '\0';
        } else if (OPT("--cacert")) cacert = v;
        else if (OPT("--resolve")) resolve = v;
        else if (OPT("--ack")) ack = v;
        else if (OPT("--disp")) disp = v;
        else if (OPT("--room")) d.room = atoll(v);
        else if (OPT("--slots")) slots = atoll(v);
        else if (OPT("--out")) out = v;
        else if (OPT("--timeout")) timeout = atoi(v);
        else if (OPT("--dir")) d.dir = v;
        else if (OPT("--max")) d.max = atoll(v);
        else if (OPT("--retry-for")) d.retry_for = atoi(v);
        else if (OPT("--follow")) d.follow = atoi(v);
        else if (OPT("--slow-ms")) d.slow_ms = atoi(v);
        else if (strcmp(o, "--timing") == 0) timing = 1;
        else if (o[0] == '-') usage();
        else if (cmd == NULL) cmd = o;
        else if (arg == NULL) arg = o;
        else usage();
#undef OPT
    }
    if (base_url == NULL || cmd == NULL)
        usage();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    curl = curl_easy_init();
    d.disp = disp;
    if (strcmp(cmd, "get") == 0 && arg) {
        query_of(q, sizeof(q), arg, ack, disp, d.room, slots);
        if (request("GET", "/v1/fetch", q, &r) != 0)
            return 1;
        print_resp(&r);
        if (out && r.status == 200 && write_file(out, r.body ? r.body : "", r.len) != 0)
            rc = 1;
    } else if (strcmp(cmd, "ack") == 0 && arg) {
        query_of(q, sizeof(q), NULL, arg, disp, d.room, slots);
        if (request("GET", "/v1/fetch", q, &r) != 0)
            return 1;
        print_resp(&r);
    } else if (strcmp(cmd, "wait") == 0) {
        if (timeout >= 0)
            snprintf(q, sizeof(q), "timeout=%d", timeout);
        else
            q[0] = '\0';
        if (request("GET", "/v1/wait", q, &r) != 0)
            return 1;
        print_resp(&r);
    } else if (strcmp(cmd, "raw") == 0 && arg) {    /* raw METHOD PATH?QUERY (tests) */
        const char *path = ack ? ack : "/v1/fetch";
        const char *qs = strchr(path, '?');
        char p[512];
        snprintf(p, sizeof(p), "%.*s", (int)(qs ? (size_t)(qs - path) : strlen(path)), path);
        if (request(arg, p, qs ? qs + 1 : "", &r) != 0)
            return 1;
        print_resp(&r);
    } else if (strcmp(cmd, "drain") == 0 && d.dir) {
        rc = drain(&d);
    } else {
        usage();
    }
    free(r.body);
    curl_easy_cleanup(curl);
    curl_global_cleanup();
    return rc;
}
