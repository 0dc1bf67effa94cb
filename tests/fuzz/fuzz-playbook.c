/* libFuzzer target for the playbook loader and renderer: playbook_parse()
 * on arbitrary bytes; for a playbook that loads, playbook_to_json() and
 * playbook_render() for three hosts (dual-stack, v4-only, no interface),
 * with the parameters' defaults and then with odd values for every
 * parameter.  Besides memory errors (ASan) and undefined behaviour
 * (UBSan) it checks the promises: exactly one of result/error; the
 * loader's error shape (loader-checks.h); a render error is a 422
 * "render_failed" with 1..PLAYBOOK_MAX_ERRORS details, each with a path;
 * and every rendered step is one the agent accepts (agents/steps.c
 * step_from_json), with an index of the playbook's and in order — what the
 * controller sends can never be refused by the agent's own checks. */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "loader-checks.h"
#include "playbook.h"
#include "steps.h"
#include "util.h"
#include "yamldoc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const struct playbook_vars hosts[] = {
    {
        .host = "hv01", .segment = "health-dmz", .interface = "br-health",
        .ipv4_prefix = "198.51.100.0/24", .ipv4_gateway = "198.51.100.1",
        .ipv6_prefix = "2001:db8:10::/64", .ipv6_gateway = "2001:db8:10::1",
        .plan_ipv4_address = "198.51.100.21", .plan_ipv6_address = "2001:db8:10::21",
    },
    {
        .host = "hv02", .segment = "police-internal", .interface = "br-police",
        .ipv4_prefix = "203.0.113.0/24", .ipv4_gateway = "203.0.113.1",
        .plan_ipv4_address = "203.0.113.22",
    },
    { .host = "hv03", .segment = "no-interface" },
};

/* Odd parameter values: each is tried for every parameter at once. */
static const char *const odd_values[] = {
    "1", "true", "2001:db8:10::/64", "../../kernel/x", "65536", "-1", "",
    "br-health/x", "2001:db8::1", "{{iface}}", "255",
};

static void check_render(const struct playbook *pb, const struct playbook_vars *vars)
{
    json_t *steps = NULL;
    struct yg_error *e = NULL;
    int r = playbook_render(pb, vars, &steps, &e);
    if (r == 0) {
        if (!steps || e || !json_is_array(steps) || json_array_size(steps) > playbook_n_steps(pb))
            abort();
        json_int_t last = -1;
        size_t i;
        json_t *js;
        json_array_foreach(steps, i, js) {
            json_int_t index = json_integer_value(json_object_get(js, "index"));
            if (index <= last || (size_t) index >= playbook_n_steps(pb))
                abort();
            last = index;
            struct step s;
            char *why = NULL;
            if (step_from_json(js, "step", &s, &why) != 0) {
                fprintf(stderr, "the agent refuses a rendered step: %s\n", why);
                abort();
            }
            step_clear(&s);
        }
        json_decref(steps);
        return;
    }
    if (r != -EINVAL || steps || !e || e->http_status != 422 || strcmp(e->code, "render_failed") ||
        e->n_details < 1 || e->n_details > PLAYBOOK_MAX_ERRORS)
        abort();
    for (size_t i = 0; i < e->n_details; i++) {
        json_t *m = json_string(e->details[i].message);
        if (!m || !e->details[i].path)
            abort();
        json_decref(m);
    }
    char *text = yg_error_format(e, "fuzz.yaml");
    free(text);
    yg_error_free(e);
}

static void check_playbook(const struct playbook *pb)
{
    if (!yamldoc_name_is_valid(playbook_name(pb)) || playbook_n_steps(pb) < 1 ||
        playbook_n_steps(pb) > PLAYBOOK_MAX_STEPS || playbook_n_params(pb) > PLAYBOOK_MAX_PARAMS)
        abort();
    json_t *j = playbook_to_json(pb);
    char *s = json_dumps(j, JSON_COMPACT);
    if (!s || json_array_size(json_object_get(j, "steps")) != playbook_n_steps(pb))
        abort();
    free(s);
    json_decref(j);

    size_t n = playbook_n_params(pb);
    const char **names = xcalloc(n + 1, sizeof *names);
    const char **values = xcalloc(n + 1, sizeof *values);
    for (size_t i = 0; i < n; i++)
        names[i] = playbook_param_name(pb, i);
    /* The defaults, with "1" for a required parameter. */
    for (size_t i = 0; i < n; i++)
        values[i] = playbook_param_default(pb, i) ? playbook_param_default(pb, i) : "1";
    for (size_t h = 0; h < YG_ARRAY_SIZE(hosts); h++) {
        struct playbook_vars v = hosts[h];
        v.param_names = names;
        v.param_values = values;
        v.n_params = n;
        check_render(pb, &v);
    }
    for (size_t k = 0; k < YG_ARRAY_SIZE(odd_values); k++) {
        for (size_t i = 0; i < n; i++)
            values[i] = odd_values[k];
        struct playbook_vars v = hosts[0];
        v.param_names = names;
        v.param_values = values;
        v.n_params = n;
        check_render(pb, &v);
    }
    free(names);
    free(values);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct playbook *pb = NULL;
    struct yg_error *e = NULL;
    int rc = playbook_parse((const char *) data, size, "fuzz.yaml", &pb, &e);
    if (rc == 0) {
        if (!pb || e)
            abort();
        check_playbook(pb);
    } else {
        if (pb || !e)
            abort();
        if (e->http_status == 422 && strcmp(e->code, "invalid_playbook"))
            abort();
        fuzz_check_loader_error(e, PLAYBOOK_MAX_ERRORS);
    }
    playbook_free(pb);
    yg_error_free(e);
    return 0;
}
