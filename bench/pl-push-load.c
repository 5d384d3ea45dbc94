/* pl-push-load.c -- the load client of bench/run push: one thread per
 * device (one token file each), all released at once, each draining its
 * queue with the piggy-backed ack of postlink-pushd's API
 * (GET /v1/fetch?get=first, then get=<next>&ack=<id>, then ack=<last>
 * alone) on its own keep-alive connection (libcurl).  Bodies are counted,
 * not stored.  A 503 (store busy) or 429 is retried after 1 s (Retry-After
 * is in whole seconds) and counted; a 409 on an ack (refused) starts that
 * device again from get=first, as pl-push-client does, and is counted (the
 * message offered again counts as redelivered); any other status ends that
 * device and is counted as an error.  Prints one line of key=value:
 *   devices requests messages bytes redelivered busy refused errors seconds
 *   msgs_per_s p50_us p99_us max_us dev_min dev_max [refused_error]
 *   [first_error]
 * (latencies per request, from sending it to having its last byte).
 * usage: pl-push-load --url URL TOKEN-FILE... */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

struct dev {
    pthread_t th;
    char token[128];
    unsigned long requests, messages, bytes, redelivered, busy, refused, errors;
    long *lat;                              /* microseconds per request */
    size_t nlat, cap;
    char first_error[160], refused_why[64];
    char (*seen)[64];                       /* ids received, to tell redeliveries */
    size_t nseen, seencap;
};

struct resp { long status; char id[64], next[64], error[64]; size_t len; };

static const char *base_url;
static pthread_barrier_t start;

static long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000L + ts.tv_nsec / 1000;
}

static size_t on_body(char *p, size_t sz, size_t n, void *ud)
{
    (void)p;
    ((struct resp *)ud)->len += sz * n;
    return sz * n;
}

static void hdr(const char *line, size_t n, const char *name, char *out, size_t olen)
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
    hdr(p, sz * n, "Postlink-Id", r->id, sizeof(r->id));
    hdr(p, sz * n, "Postlink-Next", r->next, sizeof(r->next));
    hdr(p, sz * n, "Postlink-Error", r->error, sizeof(r->error));
    return sz * n;
}

static void lat_add(struct dev *d, long us)
{
    if (d->nlat == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        long *l = realloc(d->lat, cap * sizeof(*l));
        if (l == NULL)
            return;
        d->lat = l;
        d->cap = cap;
    }
    d->lat[d->nlat++] = us;
}

/* 1 if the device had ID already, else remembers it */
static int seen_before(struct dev *d, const char *id)
{
    size_t i;
    for (i = 0; i < d->nseen; i++)
        if (strcmp(d->seen[i], id) == 0)
            return 1;
    if (d->nseen == d->seencap) {
        size_t cap = d->seencap ? d->seencap * 2 : 32;
        char (*s)[64] = realloc(d->seen, cap * sizeof(*s));
        if (s == NULL)
            return 0;
        d->seen = s;
        d->seencap = cap;
    }
    snprintf(d->seen[d->nseen++], sizeof(d->seen[0]), "%s", id);
    return 0;
}

static void *drain(void *arg)
{
    struct dev *d = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char auth[200], url[1024], get[64] = "first", ack[64] = "";
    struct resp r;
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", d->token);
    h = curl_slist_append(h, auth);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 120L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    pthread_barrier_wait(&start);
    for (;;) {
        CURLcode rc;
        long t0;
        size_t n = (size_t)snprintf(url, sizeof(url), "%s/v1/fetch?", base_url);
        if (get[0])
            n += (size_t)snprintf(url + n, sizeof(url) - n, "get=%s", get);
        if (ack[0])
            snprintf(url + n, sizeof(url) - n, "%sack=%s", get[0] ? "&" : "", ack);
        memset(&r, 0, sizeof(r));
        curl_easy_setopt(c, CURLOPT_URL, url);
        d->requests++;
        t0 = now_us();
        rc = curl_easy_perform(c);
        lat_add(d, now_us() - t0);
        if (rc != CURLE_OK) {
            d->errors++;
            snprintf(d->first_error, sizeof(d->first_error), "curl:%s", curl_easy_strerror(rc));
            break;
        }
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
        if (r.status == 503 || r.status == 429) {
            d->busy++;
            usleep(1000000);                /* Retry-After is whole seconds: 1 s at most */
            continue;
        }
        if (r.status == 409 && ack[0] && d->refused < 100) {
            /* the ack was refused (e.g. the server could not record the
             * sending): start again from the first, as pl-push-client does */
            d->refused++;
            snprintf(d->refused_why, sizeof(d->refused_why), "%s", r.error[0] ? r.error : "-");
            ack[0] = '\0';
            snprintf(get, sizeof(get), "first");
            continue;
        }
        if (r.status == 200) {
            if (seen_before(d, r.id))
                d->redelivered++;
            else
                d->messages++;
            d->bytes += r.len;
            snprintf(ack, sizeof(ack), "%s", r.id);
            snprintf(get, sizeof(get), "%s", strcmp(r.next, "none") == 0 ? "" : r.next);
            continue;
        }
        if (r.status == 204)
            break;                          /* the ack-only request (or nothing waiting) */
        d->errors++;
        snprintf(d->first_error, sizeof(d->first_error), "status=%ld/%s(get=%s,ack=%s)",
                 r.status, r.error[0] ? r.error : "-", get[0] ? get : "-", ack[0] ? ack : "-");
        break;
    }
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return NULL;
}

static int cmp_long(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    struct dev *devs;
    int i, n = 0;
    long t0, t1, *all;
    size_t nall = 0, k;
    unsigned long req = 0, msgs = 0, bytes = 0, redel = 0, busy = 0, refused = 0, errs = 0;
    unsigned long dmin = (unsigned long)-1, dmax = 0;
    const char *first_error = NULL, *refused_why = NULL;

    if (argc < 4 || strcmp(argv[1], "--url") != 0) {
        fprintf(stderr, "usage: pl-push-load --url URL TOKEN-FILE...\n");
        return 2;
    }
    base_url = argv[2];
    devs = calloc((size_t)(argc - 3), sizeof(*devs));
    if (devs == NULL)
        return 1;
    for (i = 3; i < argc; i++, n++) {
        FILE *fp = fopen(argv[i], "r");
        if (fp == NULL || fgets(devs[n].token, sizeof(devs[n].token), fp) == NULL) {
            fprintf(stderr, "pl-push-load: %s: cannot read\n", argv[i]);
            return 2;
        }
        fclose(fp);
        devs[n].token[strcspn(devs[n].token, "\r\n")] = '\0';
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    pthread_barrier_init(&start, NULL, (unsigned)n + 1);
    for (i = 0; i < n; i++)
        if (pthread_create(&devs[i].th, NULL, drain, &devs[i]) != 0) {
            fprintf(stderr, "pl-push-load: cannot start thread %d\n", i);
            return 1;
        }
    pthread_barrier_wait(&start);
    t0 = now_us();
    for (i = 0; i < n; i++)
        pthread_join(devs[i].th, NULL);
    t1 = now_us();
    for (i = 0; i < n; i++)
        nall += devs[i].nlat;
    all = malloc((nall ? nall : 1) * sizeof(*all));
    if (all == NULL)
        return 1;
    nall = 0;
    for (i = 0; i < n; i++) {
        struct dev *d = &devs[i];
        req += d->requests, msgs += d->messages, bytes += d->bytes;
        redel += d->redelivered, busy += d->busy, refused += d->refused, errs += d->errors;
        if (d->refused && refused_why == NULL)
            refused_why = d->refused_why;
        if (d->messages < dmin)
            dmin = d->messages;
        if (d->messages > dmax)
            dmax = d->messages;
        if (d->errors && first_error == NULL)
            first_error = d->first_error;
        for (k = 0; k < d->nlat; k++)
            all[nall++] = d->lat[k];
    }
    qsort(all, nall, sizeof(*all), cmp_long);
#define PCT(p) (nall ? all[(size_t)((double)(nall - 1) * (p))] : 0)
    printf("devices=%d requests=%lu messages=%lu bytes=%lu redelivered=%lu busy=%lu refused=%lu "
           "errors=%lu seconds=%.3f msgs_per_s=%.1f p50_us=%ld p99_us=%ld max_us=%ld dev_min=%lu "
           "dev_max=%lu",
           n, req, msgs, bytes, redel, busy, refused, errs, (double)(t1 - t0) / 1e6,
           t1 > t0 ? (double)msgs * 1e6 / (double)(t1 - t0) : 0.0, PCT(0.50), PCT(0.99),
           nall ? all[nall - 1] : 0, n ? dmin : 0, dmax);
#undef PCT
    if (refused_why)
        printf(" refused_error=%s", refused_why);
    if (first_error)
        printf(" first_error=%s", first_error);
    printf("\n");
    curl_global_cleanup();
    return errs ? 1 : 0;
}
