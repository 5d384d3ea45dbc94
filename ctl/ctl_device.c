/* ctl_device.c -- "postlinkctl device add|del|list": the registry of each
 * user's devices for message-state sync (see state/device.h). */
#include "config.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "address.h"
#include "ctl.h"
#include "device.h"
#include "strutil.h"

static int usage(void)
{
    fprintf(stderr, "usage: postlinkctl device add USER ADDRESS [--name NAME]\n"
                    "       postlinkctl device del USER ADDRESS\n"
                    "       postlinkctl device list [USER] [--json]\n");
    return CTL_USAGE;
}

static int check_addr(const char *what, const char *addr)
{
    const char *why = pl_addr_check(addr);
    if (why != NULL) {
        fprintf(stderr, "postlinkctl: %s \"%s\": %s\n", what, addr, why);
        return -1;
    }
    return 0;
}

struct out { int json, n; struct pl_strbuf buf; };

static int print_device(void *ctx, const struct pl_device *d)
{
    struct out *o = ctx;
    if (o->json) {
        pl_strbuf_adds(&o->buf, o->n ? ",{\"user\":" : "{\"user\":");
        pl_strbuf_json(&o->buf, d->user);
        pl_strbuf_adds(&o->buf, ",\"address\":");
        pl_strbuf_json(&o->buf, d->address);
        pl_strbuf_adds(&o->buf, ",\"name\":");
        pl_strbuf_json(&o->buf, d->name);
        pl_strbuf_addf(&o->buf, ",\"created\":%lld}", (long long)d->created);
    } else {
        char when[32];
        time_t t = (time_t)d->created;
        struct tm tm;
        strftime(when, sizeof(when), "%Y-%m-%d %H:%M", localtime_r(&t, &tm));
        printf("%-32s %-32s %s  %s\n", d->user, d->address, when, d->name);
    }
    o->n++;
    return 0;
}

int ctl_device(struct ctl *ctl, int argc, char **argv)
{
    const char *sub = argc > 1 ? argv[1] : "", *args[2] = {NULL, NULL}, *name = "";
    int nargs = 0, rc;
    pl_store *s;

    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            ctl->json = 1;
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (nargs < 2)
            args[nargs++] = argv[i];
        else
            return usage();
    }
    if ((strcmp(sub, "add") == 0 || strcmp(sub, "del") == 0) && nargs == 2) {
        if (check_addr("USER", args[0]) < 0 || check_addr("device address", args[1]) < 0)
            return CTL_USAGE;
        if (strcmp(sub, "add") == 0 && strcasecmp(args[0], args[1]) == 0) {
            fprintf(stderr, "postlinkctl: a device needs an address of its own, not USER's\n");
            return CTL_USAGE;
        }
        if (!pl_conf_domain_enabled(ctl->conf, pl_addr_domain(args[0]))) {
            fprintf(stderr, "postlinkctl: the domain of %s is not in enabled_domains (%s)\n",
                    args[0], ctl->conf_path);
            return CTL_FAIL;
        }
        if (strlen(name) > 200 || strpbrk(name, "\r\n") != NULL) {
            fprintf(stderr, "postlinkctl: --name: one line of at most 200 characters\n");
            return CTL_USAGE;
        }
    } else if (!(strcmp(sub, "list") == 0 && nargs <= 1)) {
        return usage();
    }
    if ((rc = ctl_open_store(ctl, &s)) != CTL_OK)
        return rc;
    if (strcmp(sub, "add") == 0) {
        rc = pl_device_add(s, args[0], args[1], name);
        if (rc == PL_DEVICE_EXISTS)
            printf("%s: %s was already registered\n", args[0], args[1]);
        else if (rc == PL_OK)
            printf("%s: registered device %s\n", args[0], args[1]);
    } else if (strcmp(sub, "del") == 0) {
        rc = pl_device_del(s, args[0], args[1]);
        if (rc == PL_NOTFOUND)
            fprintf(stderr, "postlinkctl: %s has no device %s\n", args[0], args[1]);
        else if (rc == PL_OK)
            printf("%s: removed device %s\n", args[0], args[1]);
    } else {
        struct out o = {ctl->json, 0, {0}};
        if (args[0] != NULL && check_addr("USER", args[0]) < 0) {
            pl_store_close(s);
            return CTL_USAGE;
        }
        rc = pl_device_list(s, args[0], print_device, &o);
        if (rc == PL_OK && o.json)
            printf("[%s]\n", o.buf.s ? o.buf.s : "");
        pl_strbuf_free(&o.buf);
    }
    pl_store_close(s);
    if (rc == PL_DEVICE_EXISTS)
        return CTL_OK;
    return rc == PL_OK ? CTL_OK : rc == PL_TEMP ? CTL_TEMP : CTL_FAIL;
}
