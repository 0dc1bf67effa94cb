/* IPv6 migration playbooks (doc/PLAYBOOKS.md): the YAML loader with
 * line:column errors, and the renderer that turns a playbook plus one
 * host's variables into the concrete steps an agent runs (doc/AGENT.md,
 * "Playbook tasks").
 *
 * Templates ("{{segment.ipv6_gateway}}") are resolved by the controller,
 * never by the agent: an agent only ever sees concrete, typed values, and
 * checks them again itself (the wire is not trusted). */
#ifndef YG_PLAYBOOK_H
#define YG_PLAYBOOK_H 1

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

#include "error.h"

#define PLAYBOOK_MAX_BYTES (64 * 1024)
#define PLAYBOOK_MAX_STEPS 64
#define PLAYBOOK_MAX_WAIT_MS 120000     /* wait.for / check.run / verify bound */
#define PLAYBOOK_MAX_PARAMS 32
#define PLAYBOOK_MAX_ERRORS 20          /* details kept in one error */

enum playbook_action {
    PLAYBOOK_SYSCTL_SET,
    PLAYBOOK_ADDRESS_ADD,
    PLAYBOOK_ADDRESS_REMOVE,
    PLAYBOOK_ROUTE_ADD,
    PLAYBOOK_ROUTE_REMOVE,
    PLAYBOOK_LINK_SET_MTU,
    PLAYBOOK_CHECK_RUN,
    PLAYBOOK_WAIT_FOR,
    _PLAYBOOK_ACTION_MAX,
};

/* "sysctl.set" ...; NULL / -1 when unknown. */
const char *playbook_action_to_string(enum playbook_action a);
int playbook_action_from_string(const char *s);

/* Whether KEY ("net/ipv6/conf/br-health/disable_ipv6") is one a playbook
 * may write: net/ipv6/conf/<dev>/<name> or net/ipv4/conf/<dev>/<name>,
 * where <dev> is an interface name (1-15 characters, no '/', not "." or
 * "..") or "all" / "default", and <name> is [a-z0-9_]+.  Used by the loader
 * (literal keys), the renderer (templated keys, after substitution) and
 * the agent (before it opens /proc/sys/KEY). */
bool playbook_sysctl_key_allowed(const char *key);

/* The check names and reason codes a playbook may name in `when`, `verify`
 * and check.run (doc/AGENT.md, "Checks and reason codes").  The agent's
 * agents/checks.c is the authority; tests/unit/test-playbook.c keeps the
 * two lists equal. */
#define PLAYBOOK_N_CHECKS 8
extern const char *const playbook_check_names[PLAYBOOK_N_CHECKS];
bool playbook_check_known(const char *name);
/* The check REASON belongs to; "" for OK (every check has it); NULL when
 * REASON is no reason code. */
const char *playbook_reason_check(const char *reason);
/* The I-th reason code, for listing and hints; NULL past the last. */
const char *playbook_reason_at(size_t i);

struct playbook;

/* Parse and validate one playbook document.  0 with *ret; -EINVAL / -EFBIG
 * / -ENOMEM with *ret_error (422 "invalid_playbook" with one detail per
 * problem, each with line, column and path such as "steps[2].args.key":
 * unknown action (closest known as a hint), unknown or missing arg, arg of
 * the wrong type, sysctl key outside the allowed trees, template of an
 * unknown variable, bad `when` / `verify`).  FILENAME labels messages. */
int playbook_parse(const char *text, size_t len, const char *filename,
                   struct playbook **ret, struct yg_error **ret_error);
void playbook_free(struct playbook *pb);
static inline void playbook_freep(struct playbook **pb) { playbook_free(*pb); }

const char *playbook_name(const struct playbook *pb);
const char *playbook_description(const struct playbook *pb);   /* may be NULL */
size_t playbook_n_steps(const struct playbook *pb);

/* Declared parameters, for the CLI and the API's listing. */
size_t playbook_n_params(const struct playbook *pb);
const char *playbook_param_name(const struct playbook *pb, size_t i);
const char *playbook_param_type(const struct playbook *pb, size_t i);   /* "string", "int", ... */
const char *playbook_param_default(const struct playbook *pb, size_t i);  /* NULL: required */

/* The playbook as JSON for the API: {name, description, params:[{name,
 * type, default, required}], steps:[{name, action, args (as written),
 * when, verify}]}. */
json_t *playbook_to_json(const struct playbook *pb);

/* What the renderer substitutes for one host.  Strings are NULL when the
 * value does not exist (a v4-only segment has no ipv6_prefix); a template
 * that uses a NULL value fails to render, naming the step and the value. */
struct playbook_vars {
    const char *host;                   /* {{host.name}} */
    const char *segment;                /* {{segment.name}} */
    const char *interface;              /* {{iface}}, {{segment.interface}} */
    const char *ipv4_prefix;            /* {{segment.ipv4_prefix}}  "198.51.100.0/24" */
    const char *ipv4_gateway;           /* {{segment.ipv4_gateway}} */
    const char *ipv6_prefix;            /* {{segment.ipv6_prefix}}  "2001:db8:10::/64" */
    const char *ipv6_gateway;           /* {{segment.ipv6_gateway}} */
    const char *plan_ipv4_address;      /* {{plan.ipv4_address}}    "198.51.100.21" */
    const char *plan_ipv6_address;      /* {{plan.ipv6_address}}    "2001:db8:10::21" */
    /* also derived: {{segment.ipv4_prefix_length}}, {{segment.ipv6_prefix_length}},
     * {{plan.ipv4_cidr}} ("198.51.100.21/24"), {{plan.ipv6_cidr}} ("2001:db8:10::21/64") */
    const char *const *param_names;     /* {{params.NAME}}, values as given by the user */
    const char *const *param_values;
    size_t n_params;
};

/* Render every step for one host: 0 with *ret_steps, a JSON array of
 * concrete step objects exactly as doc/AGENT.md describes (args typed,
 * "interface" filled in from the segment where the action takes one and
 * the playbook did not say).  Steps whose parameter `when` is false are
 * left out.  -EINVAL with *ret_error (422 "render_failed", detail path
 * "steps[N].args.NAME") when a value is missing or the substituted value
 * has the wrong type.  Also checks the parameters: unknown name, missing
 * required one, value of the wrong type. */
int playbook_render(const struct playbook *pb, const struct playbook_vars *vars,
                    json_t **ret_steps, struct yg_error **ret_error);

#endif
