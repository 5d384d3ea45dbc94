/* test_conf.c -- unit tests of the postlink.conf parser: good files, bad
 * files with file:line errors, continuation lines, $name expansion. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "conf.h"
#include "conf_params.h"

static pl_conf *parse(const char *text, int expect_errors)
{
    pl_conf *c = pl_conf_new(pl_conf_params);
    int n = pl_conf_load_text(c, "t.cf", text);
    if (n != expect_errors)
        for (size_t i = 0; i < pl_conf_nerrors(c); i++)
            fprintf(stderr, "# %s\n", pl_conf_error(c, i));
    assert_int_equal(n, expect_errors);
    return c;
}

static void has_error(pl_conf *c, const char *needle)
{
    for (size_t i = 0; i < pl_conf_nerrors(c); i++)
        if (strstr(pl_conf_error(c, i), needle) != NULL)
            return;
    fail_msg("no error contains \"%s\"", needle);
}

static void test_defaults(void **state)
{
    (void)state;
    pl_conf *c = parse("", 0);
    assert_string_equal(pl_conf_str(c, "db_home"), PL_DEFAULT_DB_HOME);
    assert_null(pl_conf_list(c, "enabled_domains")[0]);
    assert_int_equal(pl_conf_int(c, "db_checkpoint_interval"), 60);
    assert_int_equal(pl_conf_int(c, "db_cache_size"), 8 * 1024 * 1024);
    assert_false(pl_conf_is_set(c, "db_home"));
    assert_null(pl_conf_origin(c, "db_home"));
    pl_conf_free(c);
}

static void test_good_file(void **state)
{
    (void)state;
    pl_conf *c = parse(
        "# postlink.conf\n"
        "\n"
        "db_home = /srv/postlink   \n"
        "  # an indented comment does not continue anything\n"
        "enabled_domains = example.com,\n"
        "    example.net  Example.ORG\n"
        "db_checkpoint_interval = 2m\n"
        "db_cache_size = 16m\n"
        "syslog_name = ${postlink_user}-x\n"
        "postlink_user = pl\n", 0);
    const char *const *d = pl_conf_list(c, "enabled_domains");
    assert_string_equal(pl_conf_str(c, "db_home"), "/srv/postlink");
    assert_string_equal(d[0], "example.com");
    assert_string_equal(d[1], "example.net");
    assert_string_equal(d[2], "Example.ORG");
    assert_null(d[3]);
    assert_int_equal(pl_conf_int(c, "db_checkpoint_interval"), 120);
    assert_int_equal(pl_conf_int(c, "db_cache_size"), 16 * 1024 * 1024);
    assert_string_equal(pl_conf_str(c, "syslog_name"), "pl-x");
    assert_string_equal(pl_conf_origin(c, "enabled_domains"), "t.cf:5");
    assert_true(pl_conf_domain_enabled(c, "example.org"));
    assert_false(pl_conf_domain_enabled(c, "example.co"));
    pl_conf_free(c);
}

static void test_missing_equals(void **state)
{
    (void)state;
    pl_conf *c = parse("db_home = /x\n\ndb_cache_size 8m\n", 1);
    has_error(c, "t.cf:3: missing '='");
    pl_conf_free(c);
}

static void test_unknown_parameter(void **state)
{
    (void)state;
    pl_conf *c = parse("enabled_domain = example.com\n", 1);
    has_error(c, "t.cf:1: unknown parameter \"enabled_domain\"");
    pl_conf_free(c);
}

static void test_bad_values(void **state)
{
    (void)state;
    pl_conf *c = parse("db_checkpoint_interval = 10 minutes\n"
                       "db_cache_size = 1k\n"
                       "db_home = relative/path\n"
                       "enabled_domains = good.example, bad_domain!\n"
                       "syslog_facility = kernel\n", 5);
    has_error(c, "t.cf:1: parameter db_checkpoint_interval: \"10 minutes\" is not a time");
    has_error(c, "t.cf:2: parameter db_cache_size: 1k is out of range");
    has_error(c, "t.cf:3: parameter db_home: must be an absolute path");
    has_error(c, "t.cf:4: parameter enabled_domains: contains something that is not a domain");
    has_error(c, "t.cf:5: parameter syslog_facility: unknown syslog facility");
    /* A bad value falls back to the default for typed access. */
    assert_int_equal(pl_conf_int(c, "db_checkpoint_interval"), 60);
    pl_conf_free(c);
}

static void test_continuation_without_parameter(void **state)
{
    (void)state;
    pl_conf *c = parse("  db_home = /x\n", 1);
    has_error(c, "t.cf:1: indented line continues nothing");
    pl_conf_free(c);
}

static void test_expansion_errors(void **state)
{
    (void)state;
    pl_conf *c = parse("syslog_name = $no_such_thing\n", 1);
    has_error(c, "t.cf:1: parameter syslog_name: $no_such_thing is not a postlink.conf parameter");
    pl_conf_free(c);
    c = parse("syslog_name = $postlink_user\npostlink_user = $syslog_name\n", 2);
    has_error(c, "recursive $name expansion");
    pl_conf_free(c);
}

/* Found while writing fuzz/fuzz_conf: ten lines of four references each expanded
 * 4^10 times; with more references per line the load never ended.  The
 * expansion of one parameter is now bounded. */
static void test_expansion_bomb(void **state)
{
    static const char *const names[] = {"syslog_name", "sync_hostname", "imap_login",
        "xmpp_jid", "xmpp_server", "xmpp_muc_service", "reinject_url", "imap_password_file",
        "xmpp_password_file", "tag_keys_file", "xmpp_tls"};
    char text[2048];
    size_t off = 0;
    (void)state;
    for (size_t i = 0; i + 1 < sizeof(names) / sizeof(names[0]); i++) {
        off += (size_t)snprintf(text + off, sizeof(text) - off, "%s = x", names[i]);
        for (int r = 0; r < 4; r++)
            off += (size_t)snprintf(text + off, sizeof(text) - off, "$%s", names[i + 1]);
        off += (size_t)snprintf(text + off, sizeof(text) - off, "\n");
    }
    pl_conf *c = pl_conf_new(pl_conf_params);
    assert_true(pl_conf_load_text(c, "t.cf", text) > 0);
    has_error(c, "t.cf:1: parameter syslog_name: $name expansion too large");
    pl_conf_free(c);
    /* many references that stay within the bounds still work */
    c = parse("syslog_name = $postlink_user$postlink_user${postlink_user}\n", 0);
    assert_string_equal(pl_conf_str(c, "syslog_name"), "postlinkpostlinkpostlink");
    pl_conf_free(c);
}

static void test_duplicate_is_warning(void **state)
{
    (void)state;
    pl_conf *c = parse("db_home = /a\ndb_home = /b\n", 0);
    assert_string_equal(pl_conf_str(c, "db_home"), "/b");
    assert_int_equal(pl_conf_nwarnings(c), 1);
    assert_non_null(strstr(pl_conf_warning(c, 0), "t.cf:2: parameter db_home overrides the setting at t.cf:1"));
    pl_conf_free(c);
}

static void test_set_override_rechecks(void **state)
{
    (void)state;
    pl_conf *c = parse("db_lock_timeout = 5s\n", 0);
    assert_int_equal(pl_conf_set(c, "db_lock_timeout", "forever"), 1);
    has_error(c, "(command line): parameter db_lock_timeout");
    assert_int_equal(pl_conf_set(c, "db_lock_timeout", "3s"), 0);
    assert_int_equal(pl_conf_int(c, "db_lock_timeout"), 3);
    pl_conf_free(c);
}

static void test_missing_file(void **state)
{
    (void)state;
    pl_conf *c = pl_conf_new(pl_conf_params);
    assert_int_equal(pl_conf_load(c, "/nonexistent/postlink.conf", 0), 1);
    has_error(c, "/nonexistent/postlink.conf: cannot open");
    pl_conf_free(c);
    c = pl_conf_new(pl_conf_params);
    assert_int_equal(pl_conf_load(c, "/nonexistent/postlink.conf", 1), 0);
    pl_conf_free(c);
}

static void test_numbers(void **state)
{
    long long v;
    (void)state;
    assert_int_equal(pl_conf_parse_number(PL_CONF_TIME, "7d", &v), 0);
    assert_int_equal(v, 7 * 86400);
    assert_int_equal(pl_conf_parse_number(PL_CONF_TIME, "1w", &v), 0);
    assert_int_equal(v, 7 * 86400);
    assert_int_equal(pl_conf_parse_number(PL_CONF_SIZE, "2g", &v), 0);
    assert_int_equal(v, 2LL << 30);
    assert_int_equal(pl_conf_parse_number(PL_CONF_TIME, "5k", &v), -1);
    assert_int_equal(pl_conf_parse_number(PL_CONF_INT, "-3", &v), -1);
    assert_int_equal(pl_conf_parse_number(PL_CONF_INT, "99999999999999999999", &v), -1);
    assert_int_equal(pl_conf_parse_number(PL_CONF_TIME, "10ss", &v), -1);
}

/* The typed view: every parameter bound to its field, lists split. */
static void test_typed_view(void **state)
{
    pl_conf *c = parse("pending_ttl = 3h\nenabled_domains = Example.ORG, b.example\n"
                       "imap_url = example.org=imap://127.0.0.1:1143\nsync_hostname = mx1\n", 0);
    const struct pl_cfg *cfg = pl_conf_cfg(c);
    (void)state;
    assert_int_equal(cfg->pending_ttl, 3 * 3600);
    assert_string_equal(cfg->sync_hostname, "mx1");
    assert_int_equal(cfg->control_max_targets, 50);          /* a default */
    assert_true(pl_cfg_list_has(cfg->enabled_domains_list, "example.org"));
    assert_true(pl_cfg_list_has(cfg->enabled_domains_list, "B.Example"));
    assert_false(pl_cfg_list_has(cfg->enabled_domains_list, "c.example"));
    assert_string_equal(pl_cfg_list_map(cfg->imap_url_list, "EXAMPLE.org"), "imap://127.0.0.1:1143");
    assert_null(pl_cfg_list_map(cfg->imap_url_list, "b.example"));
    assert_null(pl_cfg_list_map(cfg->sync_peers_list, "x"));  /* empty list */
    pl_conf_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_good_file),
        cmocka_unit_test(test_missing_equals),
        cmocka_unit_test(test_unknown_parameter),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_continuation_without_parameter),
        cmocka_unit_test(test_expansion_errors),
        cmocka_unit_test(test_expansion_bomb),
        cmocka_unit_test(test_duplicate_is_warning),
        cmocka_unit_test(test_set_override_rechecks),
        cmocka_unit_test(test_missing_file),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_typed_view),
    };
    return cmocka_run_group_tests_name("conf", tests, NULL, NULL);
}
