/* Unit tests for lib/playbook.c and lib/playbook-actions.c: the renderer
 * (shipped playbooks for sample hosts, exact JSON and exact errors),
 * parameters (defaults, types, unknown names, `when`), derived variables,
 * type checks after substitution; the action and check tables (the check
 * names and reason codes must equal the agent's, agents/checks.c).  The
 * loader's messages are tested by tests/golden/golden-playbooks. */
#include <config.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>

#include "checks.h"
#include "error.h"
#include "playbook.h"
#include "util.h"

static const struct playbook_vars dual_stack_host = {
    .host = "hv01",
    .segment = "health-dmz",
    .interface = "br-health",
    .ipv4_prefix = "198.51.100.0/24",
    .ipv4_gateway = "198.51.100.1",
    .ipv6_prefix = "2001:db8:10::/64",
    .ipv6_gateway = "2001:db8:10::1",
    .plan_ipv4_address = "198.51.100.21",
    .plan_ipv6_address = "2001:db8:10::21",
};

/* A segment that is v4-only for now: no IPv6 prefix, gateway or plan. */
static const struct playbook_vars v4_only_host = {
    .host = "hv02",
    .segment = "police-internal",
    .interface = "br-police",
    .ipv4_prefix = "203.0.113.0/24",
    .ipv4_gateway = "203.0.113.1",
    .plan_ipv4_address = "203.0.113.22",
};

static struct playbook *load_text(const char *text)
{
    struct playbook *pb = NULL;
    struct yg_error *e = NULL;
    if (playbook_parse(text, strlen(text), "t.yaml", &pb, &e) != 0) {
        _cleanup_free_ char *msg = yg_error_format(e, "t.yaml");
        yg_error_free(e);
        fail_msg("playbook refused: %s", msg);
    }
    return pb;
}

static struct playbook *load_shipped(const char *name)
{
    const char *top = getenv("top_srcdir");
    _cleanup_free_ char *path = xasprintf("%s/playbooks/%s.yaml", top ? top : ".", name);
    _cleanup_free_ char *text = NULL;
    size_t len;
    struct playbook *pb = NULL;
    struct yg_error *e = NULL;
    int r = read_file_limited(path, PLAYBOOK_MAX_BYTES, &text, &len);
    if (r < 0)
        fail_msg("cannot read %s: %s", path, strerror(-r));
    if (playbook_parse(text, len, path, &pb, &e) != 0) {
        _cleanup_free_ char *msg = yg_error_format(e, path);
        yg_error_free(e);
        fail_msg("%s refused: %s", path, msg);
    }
    return pb;
}

static void assert_json_text(json_t *got, const char *expected_text)
{
    json_error_t jerr;
    json_t *expected = json_loads(expected_text, 0, &jerr);
    if (!expected)
        fail_msg("bad expected JSON: %s", jerr.text);
    if (!json_equal(got, expected)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_PRESERVE_ORDER);
        char *x = json_dumps(expected, JSON_COMPACT | JSON_PRESERVE_ORDER);
        print_error("got:      %s\nexpected: %s\n", g, x);
        free(g);
        free(x);
        json_decref(expected);
        fail();
    }
    json_decref(expected);
}

static json_t *render_ok(const struct playbook *pb, const struct playbook_vars *vars)
{
    json_t *steps = NULL;
    struct yg_error *e = NULL;
    if (playbook_render(pb, vars, &steps, &e) != 0) {
        _cleanup_free_ char *msg = yg_error_format(e, "t.yaml");
        yg_error_free(e);
        fail_msg("render failed: %s", msg);
    }
    return steps;
}

/* The formatted render error ("t.yaml:L:C: path: message" lines). */
static char *render_error(const struct playbook *pb, const struct playbook_vars *vars)
{
    json_t *steps = NULL;
    struct yg_error *e = NULL;
    assert_int_equal(playbook_render(pb, vars, &steps, &e), -EINVAL);
    assert_null(steps);
    assert_non_null(e);
    assert_int_equal(e->http_status, 422);
    assert_string_equal(e->code, "render_failed");
    char *msg = yg_error_format(e, "t.yaml");
    char *all = xasprintf("%s\n%s", e->message, msg);
    free(msg);
    yg_error_free(e);
    return all;
}

/* ---- tables -------------------------------------------------------- */

static void test_action_names_round_trip(void **state)
{
    (void) state;
    for (int a = 0; a < _PLAYBOOK_ACTION_MAX; a++) {
        const char *s = playbook_action_to_string((enum playbook_action) a);
        assert_non_null(s);
        assert_int_equal(playbook_action_from_string(s), a);
    }
    assert_null(playbook_action_to_string(_PLAYBOOK_ACTION_MAX));
    assert_int_equal(playbook_action_from_string("reboot"), -1);
    assert_int_equal(playbook_action_from_string(NULL), -1);
}

/* The playbook's check names and reason codes are the agent's. */
static void test_checks_match_agent(void **state)
{
    (void) state;
    assert_int_equal(PLAYBOOK_N_CHECKS, CHECK_MAX);
    for (int c = 0; c < CHECK_MAX; c++)
        assert_true(playbook_check_known(checks_check_to_string((enum checks_check) c)));
    size_t n = 0;
    while (playbook_reason_at(n))
        n++;
    assert_int_equal(n, REASON_MAX);
    for (int r = 0; r < REASON_MAX; r++) {
        const char *reason = checks_reason_to_string((enum checks_reason) r);
        const char *owner = playbook_reason_check(reason);
        assert_non_null(owner);
        enum checks_check c = checks_reason_check((enum checks_reason) r);
        assert_string_equal(owner, c == CHECK_MAX ? "" : checks_check_to_string(c));
    }
    assert_null(playbook_reason_check("NOT_A_REASON"));
    assert_false(playbook_check_known("ipv6-route"));
}

static void test_sysctl_keys(void **state)
{
    (void) state;
    static const char *const allowed[] = {
        "net/ipv6/conf/br-health/disable_ipv6", "net/ipv6/conf/all/forwarding",
        "net/ipv4/conf/default/rp_filter", "net/ipv6/conf/eth0.100/accept_ra",
        "net/ipv6/conf/abcdefghijklmno/mtu",
    };
    static const char *const refused[] = {
        "kernel/panic", "net/core/somaxconn", "net/ipv6/conf/../x", "net/ipv6/conf/./x",
        "net/ipv6/conf/all/", "net/ipv6/conf/all", "net/ipv6/route/flush",
        "net/ipv6/conf/abcdefghijklmnop/mtu", "net/ipv6/conf/all/a/b", "net/ipv6/conf//x",
        "net/ipv6/conf/all/Forwarding", "net/ipv6/conf/a:b/x", "/net/ipv6/conf/all/x", "",
    };
    for (size_t i = 0; i < YG_ARRAY_SIZE(allowed); i++)
        if (!playbook_sysctl_key_allowed(allowed[i]))
            fail_msg("'%s' should be allowed", allowed[i]);
    for (size_t i = 0; i < YG_ARRAY_SIZE(refused); i++)
        if (playbook_sysctl_key_allowed(refused[i]))
            fail_msg("'%s' should be refused", refused[i]);
    assert_false(playbook_sysctl_key_allowed(NULL));
}

/* ---- shipped playbooks --------------------------------------------- */

static void test_enable_dual_stack_sample_host(void **state)
{
    (void) state;
    _cleanup_(playbook_freep) struct playbook *pb = load_shipped("enable-dual-stack");
    assert_string_equal(playbook_name(pb), "enable-dual-stack");
    assert_int_equal(playbook_n_steps(pb), 6);
    json_t *steps = render_ok(pb, &dual_stack_host);
    assert_json_text(steps,
        "[{\"index\": 0, \"name\": \"enable ipv6\", \"action\": \"sysctl.set\","
        "  \"args\": {\"key\": \"net/ipv6/conf/br-health/disable_ipv6\", \"value\": \"0\"}},"
        " {\"index\": 1, \"name\": \"planned address\", \"action\": \"address.add\","
        "  \"args\": {\"address\": \"2001:db8:10::21/64\", \"interface\": \"br-health\","
        "            \"nodad\": false}},"
        " {\"index\": 2, \"name\": \"duplicate address detection\", \"action\": \"wait.for\","
        "  \"args\": {\"condition\": \"address-usable\", \"address\": \"2001:db8:10::21\","
        "            \"interface\": \"br-health\", \"timeout_ms\": 10000}},"
        " {\"index\": 3, \"name\": \"default route\", \"action\": \"route.add\","
        "  \"args\": {\"dst\": \"::/0\", \"via\": \"2001:db8:10::1\", \"interface\": \"br-health\","
        "            \"metric\": 1024}},"
        " {\"index\": 4, \"name\": \"gateway answers\", \"action\": \"wait.for\","
        "  \"args\": {\"condition\": \"neighbour-reachable\", \"address\": \"2001:db8:10::1\","
        "            \"interface\": \"br-health\", \"timeout_ms\": 10000}},"
        " {\"index\": 5, \"name\": \"dual-stack ready\", \"action\": \"check.run\","
        "  \"args\": {\"expect\": \"dual-stack-ready\", \"timeout_ms\": 30000}}]");
    /* Integers and booleans are JSON integers and booleans, not text. */
    assert_true(json_is_integer(json_object_get(json_object_get(json_array_get(steps, 3), "args"),
                                                "metric")));
    assert_true(json_is_false(json_object_get(json_object_get(json_array_get(steps, 1), "args"),
                                              "nodad")));
    json_decref(steps);
}

static void test_enable_dual_stack_v4_only_host(void **state)
{
    (void) state;
    _cleanup_(playbook_freep) struct playbook *pb = load_shipped("enable-dual-stack");
    _cleanup_free_ char *err = render_error(pb, &v4_only_host);
    assert_string_equal(err,
        "playbook 'enable-dual-stack' cannot be rendered for host 'hv02': 4 problems\n"
        "t.yaml:19:21: steps[1].args.address: {{plan.ipv6_cidr}} has no value for host 'hv02': "
        "the host has no planned IPv6 address in segment 'police-internal' (plan one in the "
        "segment list)\n"
        "t.yaml:24:16: steps[2].args.address: {{plan.ipv6_address}} has no value for host "
        "'hv02': the host has no planned IPv6 address in segment 'police-internal' (plan one in "
        "the segment list)\n"
        "t.yaml:28:30: steps[3].args.via: {{segment.ipv6_gateway}} has no value for host "
        "'hv02': segment 'police-internal' has no IPv6 gateway yet (add one to the segment "
        "list)\n"
        "t.yaml:34:16: steps[4].args.address: {{segment.ipv6_gateway}} has no value for host "
        "'hv02': segment 'police-internal' has no IPv6 gateway yet (add one to the segment "
        "list)");
}

/* The way back renders for the same host and undoes what enable added. */
static void test_disable_ipv6_sample_host(void **state)
{
    (void) state;
    _cleanup_(playbook_freep) struct playbook *pb = load_shipped("disable-ipv6");
    json_t *steps = render_ok(pb, &dual_stack_host);
    assert_json_text(steps,
        "[{\"index\": 0, \"name\": \"default route\", \"action\": \"route.remove\","
        "  \"args\": {\"dst\": \"::/0\", \"via\": \"2001:db8:10::1\", \"interface\": \"br-health\"}},"
        " {\"index\": 1, \"name\": \"planned address\", \"action\": \"address.remove\","
        "  \"args\": {\"address\": \"2001:db8:10::21/64\", \"interface\": \"br-health\"}},"
        " {\"index\": 2, \"name\": \"disable ipv6\", \"action\": \"sysctl.set\","
        "  \"args\": {\"key\": \"net/ipv6/conf/br-health/disable_ipv6\", \"value\": \"1\"}},"
        " {\"index\": 3, \"name\": \"ipv6 is off\", \"action\": \"check.run\","
        "  \"args\": {\"expect\": \"fail\", \"check\": \"ipv6-enabled\","
        "            \"reason\": \"IPV6_DISABLED\", \"timeout_ms\": 5000}}]");
    json_decref(steps);
}

/* accept-ra: the host condition passes through to the agent; the
 * parameter condition leaves the second step out unless asked for. */
static void test_accept_ra_when(void **state)
{
    (void) state;
    _cleanup_(playbook_freep) struct playbook *pb = load_shipped("accept-ra-with-forwarding");
    json_t *steps = render_ok(pb, &dual_stack_host);
    assert_json_text(steps,
        "[{\"index\": 0, \"name\": \"accept router advertisements\", \"action\": \"sysctl.set\","
        "  \"args\": {\"key\": \"net/ipv6/conf/br-health/accept_ra\", \"value\": \"2\"},"
        "  \"when\": {\"check\": \"accept-ra\", \"reason\": \"RA_IGNORED_FORWARDING\"},"
        "  \"verify\": {\"check\": \"accept-ra\", \"expect\": \"pass\", \"timeout_ms\": 5000}}]");
    json_decref(steps);

    const char *names[] = { "also_default" }, *values[] = { "true" };
    struct playbook_vars v = dual_stack_host;
    v.param_names = names;
    v.param_values = values;
    v.n_params = 1;
    steps = render_ok(pb, &v);
    assert_int_equal(json_array_size(steps), 2);
    json_t *second = json_array_get(steps, 1);
    assert_int_equal(json_integer_value(json_object_get(second, "index")), 1);
    assert_null(json_object_get(second, "when"));       /* a parameter `when` is not sent */
    assert_string_equal(json_string_value(json_object_get(json_object_get(second, "args"), "key")),
                        "net/ipv6/conf/default/accept_ra");
    json_decref(steps);
}

/* ---- parameters ---------------------------------------------------- */

static const char params_playbook[] =
    "apiVersion: yunguan/v1\n"
    "kind: Playbook\n"
    "metadata: {name: params-test, description: parameters}\n"
    "params:\n"
    "  metric: {type: int, default: \"1024\", description: route metric}\n"
    "  mtu: int\n"
    "  knob: {type: string, default: accept_ra}\n"
    "  fast: {type: bool, default: \"false\"}\n"
    "  level: {type: int, default: \"1\"}\n"
    "steps:\n"
    "  - name: route\n"
    "    action: route.add\n"
    "    args: {dst: \"::/0\", metric: \"{{params.metric}}\"}\n"
    "  - name: mtu\n"
    "    action: link.set-mtu\n"
    "    args: {mtu: \"{{params.mtu}}\"}\n"
    "  - name: knob\n"
    "    action: sysctl.set\n"
    "    args: {key: \"net/ipv6/conf/{{iface}}/{{params.knob}}\", value: \"2\"}\n"
    "  - name: fast only\n"
    "    action: check.run\n"
    "    args: {expect: pass, check: link-local, timeout_ms: 0}\n"
    "    when: {param: fast, equals: true}\n"
    "  - name: level ten\n"
    "    action: check.run\n"
    "    args: {expect: dual-stack-ready}\n"
    "    when: {param: level, equals: 10}\n";

static json_t *render_params(const struct playbook *pb, size_t n, const char **names,
                             const char **values)
{
    struct playbook_vars v = dual_stack_host;
    v.param_names = names;
    v.param_values = values;
    v.n_params = n;
    return render_ok(pb, &v);
}

static char *render_params_error(const struct playbook *pb, size_t n, const char **names,
                                 const char **values)
{
    struct playbook_vars v = dual_stack_host;
    v.param_names = names;
    v.param_values = values;
    v.n_params = n;
    return render_error(pb, &v);
}

static void test_param_accessors(void **state)
{
    (void) state;
    _cleanup_(playbook_freep) struct playbook *pb = load_text(params_playbook);
    assert_string_equal(playbook_name(pb), "params-test");
    assert_string_equal(playbook_description(pb), "parameters");
    assert_int_equal(playbook_n_params(pb), 5);
    assert_string_equal(playbook_param_name(pb, 0), "metric");
    assert_string_equal(playbook_param_type(pb, 0), "int");
    assert_string_equal(playbook_param_default(pb, 0), "1024");
    assert_string_equal(playbook_param_name(pb, 1), "mtu");
    assert_null(playbook_param_default(pb, 1));           /* required */
    assert_string_equal(playbook_param_type(pb, 3), "bool");
    assert_null(playbook_param_name(pb, 5));
    json_t *j = playbook_to_json(pb);
    assert_json_text(json_object_get(j, "params"),
        "[{\"name\": \"metric\", \"type\": \"int\", \"default\": \"1024\", \"required\": false,"
        "  \"description\": \"route metric\"},"
        " {\"name\": \"mtu\", \"type\": \"int\", \"default\": null, \"required\": true},"
        " {\"name\": \"knob\", \"type\": \"string\", \"default\": \"accept_ra\", \"required\": false},"
        " {\"name\": \"fast\", \"type\": \"bool\", \"default\": \"false\", \"required\": false},"
        " {\"name\": \"level\", \"type\": \"int\", \"default\": \"1\", \"required\": false}]");
    json_decref(j);
}

static void test_param_defaults_and_when(void **state)
{
    (void) state;
    _cleanup_(playbook_freep) struct playbook *pb = load_text(params_playbook);
    const char *names[] = { "mtu" }, *values[] = { "9000" };
    json_t *steps = render_params(pb, 1, names, values);
    assert_json_text(steps,
        "[{\"index\": 0, \"name\": \"route\", \"action\": \"route.add\","
        "  \"args\": {\"dst\": \"::/0\", \"interface\": \"br-health\", \"metric\": 1024}},"
        " {\"index\": 1, \"name\": \"mtu\", \"action\": \"link.set-mtu\","
        "  \"args\": {\"interface\": \"br-health\", \"mtu\": 9000}},"
        " {\"index\": 2, \"name\": \"knob\", \"action\": \"sysctl.set\","
        "  \"args\": {\"key\": \"net/ipv6/conf/br-health/accept_ra\", \"value\": \"2\"}}]");
    json_decref(steps);

    /* Given values win over defaults; `when` compares typed values. */
    const char *names2[] = { "mtu", "metric", "fast", "level" };
    const char *values2[] = { "1500", "0", "true", "10" };
    steps = render_params(pb, 4, names2, values2);
    assert_int_equal(json_array_size(steps), 5);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(
                         json_array_get(steps, 0), "args"), "metric")), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 3), "name")),
                        "fast only");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(steps, 4), "index")), 4);
    json_decref(steps);

    const char *values3[] = { "1500", "0", "false", "11" };
    steps = render_params(pb, 4, names2, values3);
    assert_int_equal(json_array_size(steps), 3);
    json_decref(steps);
}

static void test_param_errors(void **state)
{
    (void) state;
    _cleanup_(playbook_freep) struct playbook *pb = load_text(params_playbook);

    /* The required one missing. */
    _cleanup_free_ char *e1 = render_params_error(pb, 0, NULL, NULL);
    assert_string_equal(e1,
        "playbook 'params-test' cannot be rendered for host 'hv01': 1 problem\n"
        "t.yaml: params.mtu: required parameter 'mtu' (int) was not given");

    /* Wrong types, an unknown name (with a hint), a name given twice. */
    const char *names[] = { "mtu", "metrc", "fast", "mtu", "level" };
    const char *values[] = { "big", "1", "yes", "1500", "1.5" };
    _cleanup_free_ char *e2 = render_params_error(pb, 5, names, values);
    assert_string_equal(e2,
        "playbook 'params-test' cannot be rendered for host 'hv01': 5 problems\n"
        "t.yaml: params.mtu: parameter 'mtu' is of type int: integer expected, got 'big'\n"
        "t.yaml: params.metrc: unknown parameter 'metrc'; did you mean 'metric'?\n"
        "t.yaml: params.fast: parameter 'fast' is of type bool: true or false expected, got 'yes'\n"
        "t.yaml: params.mtu: parameter 'mtu' is given twice\n"
        "t.yaml: params.level: parameter 'level' is of type int: integer expected, got '1.5'");

    /* A value of the parameter's type, wrong for the argument it lands in:
     * checked after substitution, naming the step, the argument and the host. */
    const char *names3[] = { "mtu", "knob" }, *values3[] = { "40", "../../kernel" };
    _cleanup_free_ char *e3 = render_params_error(pb, 2, names3, values3);
    assert_string_equal(e3,
        "playbook 'params-test' cannot be rendered for host 'hv01': 2 problems\n"
        "t.yaml:16:17: steps[1].args.mtu: must be between 68 and 65535, got 40 (from "
        "'{{params.mtu}}' for host 'hv01')\n"
        "t.yaml:19:17: steps[2].args.key: 'net/ipv6/conf/br-health/../../kernel' is not a key "
        "a playbook may write: only net/ipv6/conf/INTERFACE/NAME and "
        "net/ipv4/conf/INTERFACE/NAME (INTERFACE an interface name, 'all' or 'default') (from "
        "'net/ipv6/conf/{{iface}}/{{params.knob}}' for host 'hv01')");
}

static void test_no_params_playbook(void **state)
{
    (void) state;
    _cleanup_(playbook_freep) struct playbook *pb = load_shipped("disable-ipv6");
    const char *names[] = { "metric" }, *values[] = { "1" };
    _cleanup_free_ char *e = render_params_error(pb, 1, names, values);
    assert_string_equal(e,
        "playbook 'disable-ipv6' cannot be rendered for host 'hv01': 1 problem\n"
        "t.yaml: params.metric: unknown parameter 'metric'; playbook 'disable-ipv6' takes no "
        "parameters");
}

/* ---- derived variables --------------------------------------------- */

static void test_derived_vars(void **state)
{
    (void) state;
    _cleanup_(playbook_freep) struct playbook *pb = load_text(
        "apiVersion: yunguan/v1\n"
        "kind: Playbook\n"
        "metadata: {name: derived}\n"
        "steps:\n"
        "  - {name: a, action: address.add, args: {address: \"{{plan.ipv6_cidr}}\"}}\n"
        "  - {name: b, action: address.add, args: {address: \"{{plan.ipv4_cidr}}\"}}\n"
        "  - {name: c, action: sysctl.set, args: {key: \"net/ipv6/conf/{{segment.interface}}/x\","
        "      value: \"{{segment.ipv6_prefix_length}}-{{segment.ipv4_prefix_length}}\"}}\n"
        "  - {name: d, action: sysctl.set, args: {key: net/ipv4/conf/all/x,"
        "      value: \"{{host.name}}@{{segment.name}}\"}}\n"
        "  - {name: e, action: route.add, args: {dst: \"{{segment.ipv6_prefix}}\","
        "      via: \"{{segment.ipv6_gateway}}\", interface: \"{{iface}}\"}}\n"
        "  - {name: f, action: route.add, args: {dst: \"{{segment.ipv4_prefix}}\","
        "      via: \"{{segment.ipv4_gateway}}\"}}\n"
        "  - {name: g, action: wait.for, args: {condition: address-usable,"
        "      address: \"{{plan.ipv4_address}}\"}}\n");
    struct playbook_vars v = dual_stack_host;
    v.ipv6_prefix = "2001:DB8:10:0::/56";       /* not RFC 5952: rendered normalised */
    v.plan_ipv6_address = "2001:db8:10:0:0:0:0:21";
    v.ipv4_prefix = "198.51.100.0/25";
    json_t *steps = render_ok(pb, &v);
    assert_json_text(steps,
        "[{\"index\": 0, \"name\": \"a\", \"action\": \"address.add\", \"args\":"
        "   {\"address\": \"2001:db8:10::21/56\", \"interface\": \"br-health\", \"nodad\": false}},"
        " {\"index\": 1, \"name\": \"b\", \"action\": \"address.add\", \"args\":"
        "   {\"address\": \"198.51.100.21/25\", \"interface\": \"br-health\", \"nodad\": false}},"
        " {\"index\": 2, \"name\": \"c\", \"action\": \"sysctl.set\", \"args\":"
        "   {\"key\": \"net/ipv6/conf/br-health/x\", \"value\": \"56-25\"}},"
        " {\"index\": 3, \"name\": \"d\", \"action\": \"sysctl.set\", \"args\":"
        "   {\"key\": \"net/ipv4/conf/all/x\", \"value\": \"hv01@health-dmz\"}},"
        " {\"index\": 4, \"name\": \"e\", \"action\": \"route.add\", \"args\":"
        "   {\"dst\": \"2001:db8:10::/56\", \"via\": \"2001:db8:10::1\", \"interface\": \"br-health\"}},"
        " {\"index\": 5, \"name\": \"f\", \"action\": \"route.add\", \"args\":"
        "   {\"dst\": \"198.51.100.0/25\", \"via\": \"198.51.100.1\", \"interface\": \"br-health\"}},"
        " {\"index\": 6, \"name\": \"g\", \"action\": \"wait.for\", \"args\":"
        "   {\"condition\": \"address-usable\", \"address\": \"198.51.100.21\","
        "    \"interface\": \"br-health\", \"timeout_ms\": 10000}}]");
    json_decref(steps);

    /* No interface from the segment: every step that takes one says so. */
    v = dual_stack_host;
    v.interface = NULL;
    _cleanup_free_ char *e = render_error(pb, &v);
    assert_non_null(strstr(e, "t.yaml:5:5: steps[0].args.interface: step 'a' needs an "
                              "interface and segment 'health-dmz' gives none for host 'hv01'"));
    assert_non_null(strstr(e, "steps[2].args.key: {{segment.interface}} has no value for host "
                              "'hv01': segment 'health-dmz' gives no interface"));
}

/* A route whose destination and next hop come out of different families. */
static void test_family_checked_after_substitution(void **state)
{
    (void) state;
    _cleanup_(playbook_freep) struct playbook *pb = load_text(
        "apiVersion: yunguan/v1\n"
        "kind: Playbook\n"
        "metadata: {name: family}\n"
        "params: {gw: {type: ipv4-address, default: 198.51.100.1}}\n"
        "steps:\n"
        "  - {name: a, action: route.add, args: {dst: \"::/0\", via: \"{{params.gw}}\"}}\n");
    _cleanup_free_ char *e = render_error(pb, &dual_stack_host);
    assert_string_equal(e,
        "playbook 'family' cannot be rendered for host 'hv01': 1 problem\n"
        "t.yaml:6:59: steps[0].args.via: via 198.51.100.1 is an IPv4 address but dst ::/0 is an "
        "IPv6 prefix; a route's next hop is of its destination's family");
}

/* ---- limits -------------------------------------------------------- */

static void test_too_large(void **state)
{
    (void) state;
    size_t n = PLAYBOOK_MAX_BYTES + 1;
    _cleanup_free_ char *text = xmalloc(n);
    memset(text, '#', n);
    struct playbook *pb = NULL;
    struct yg_error *e = NULL;
    assert_int_equal(playbook_parse(text, n, "big.yaml", &pb, &e), -EFBIG);
    assert_null(pb);
    assert_int_equal(e->http_status, 413);
    yg_error_free(e);
}

static void test_invalid_error_shape(void **state)
{
    (void) state;
    const char *text = "apiVersion: yunguan/v1\nkind: Playbook\nmetadata: {name: x}\n"
                       "steps: [{name: a, action: sysctl.sett, args: {}}]\n";
    struct playbook *pb = NULL;
    struct yg_error *e = NULL;
    assert_int_equal(playbook_parse(text, strlen(text), "x.yaml", &pb, &e), -EINVAL);
    assert_null(pb);
    assert_int_equal(e->http_status, 422);
    assert_string_equal(e->code, "invalid_playbook");
    assert_int_equal(e->n_details, 1);
    assert_int_equal(e->details[0].line, 4);
    assert_int_equal(e->details[0].column, 27);
    assert_string_equal(e->details[0].path, "steps[0].action");
    assert_string_equal(e->details[0].message,
                        "unknown action 'sysctl.sett'; did you mean 'sysctl.set'?");
    yg_error_free(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_action_names_round_trip),
        cmocka_unit_test(test_checks_match_agent),
        cmocka_unit_test(test_sysctl_keys),
        cmocka_unit_test(test_enable_dual_stack_sample_host),
        cmocka_unit_test(test_enable_dual_stack_v4_only_host),
        cmocka_unit_test(test_disable_ipv6_sample_host),
        cmocka_unit_test(test_accept_ra_when),
        cmocka_unit_test(test_param_accessors),
        cmocka_unit_test(test_param_defaults_and_when),
        cmocka_unit_test(test_param_errors),
        cmocka_unit_test(test_no_params_playbook),
        cmocka_unit_test(test_derived_vars),
        cmocka_unit_test(test_family_checked_after_substitution),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_invalid_error_shape),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
