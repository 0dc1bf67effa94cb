/* Golden tests for the playbook loader and renderer:
 * tests/golden/playbooks/NAME.yaml → NAME.err (the exact line:column
 * messages) or NAME.json: the playbook's JSON form (playbook_to_json) and
 * its steps rendered for one sample dual-stack host (or the render error).
 * Then every shipped playbook (every playbooks/NAME.yaml) must load, be named after
 * its file, and give tests/golden/playbooks/shipped/NAME.json.  The runner is
 * tests/golden/golden.c (golden.h explains it).
 *
 * Usage: golden-playbooks [CASE-DIR [SAMPLES]]. */
#include <config.h>

#include <stdio.h>

#include "error.h"
#include "golden.h"
#include "playbook.h"
#include "util.h"

/* The sample host every valid case is rendered for. */
static const struct playbook_vars sample_host = {
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

static char *run_playbook(const char *text, size_t len, const char *label, bool *ret_valid)
{
    struct playbook *pb = NULL;
    struct yg_error *err = NULL;
    if (playbook_parse(text, len, label, &pb, &err) != 0) {
        _cleanup_free_ char *msg = yg_error_format(err, label);
        yg_error_free(err);
        *ret_valid = false;
        return xasprintf("%s\n", msg);
    }
    json_t *rendered = NULL;
    json_t *out = json_pack("{s:o}", "playbook", playbook_to_json(pb));
    if (playbook_render(pb, &sample_host, &rendered, &err) == 0) {
        json_object_set_new(out, "rendered", rendered);
    } else {
        char *msg = yg_error_format(err, label);
        json_object_set_new(out, "render_error", json_string(msg));
        free(msg);
        yg_error_free(err);
    }
    /* The file is NAME.yaml (doc/PLAYBOOKS.md): the controller finds it so. */
    size_t n = strlen(label);
    if (n > 5 && streq(label + n - 5, ".yaml") && strncmp(label, playbook_name(pb), n - 5) == 0 &&
        strlen(playbook_name(pb)) == n - 5)
        json_object_set_new(out, "named_after_file", json_true());
    char *dump = json_dumps(out, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    char *s = xasprintf("%s\n", dump);
    free(dump);
    json_decref(out);
    playbook_free(pb);
    *ret_valid = true;
    return s;
}

int main(int argc, char **argv)
{
    static const struct golden_suite suite = {
        .program = "golden-playbooks",
        .what = "playbook",
        .case_dir = "tests/golden/playbooks",
        .samples = "playbooks",
        .samples_expected = "tests/golden/playbooks/shipped",
        .run = run_playbook,
    };
    return golden_main(&suite, argc, argv);
}
