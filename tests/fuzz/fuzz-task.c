/* libFuzzer target for the agent's side of playbook tasks (doc/AGENT.md
 * "Playbook tasks"): a task object as the agent loads it from the
 * controller's answer or a --run-task file (json_loadb with
 * JSON_REJECT_DUPLICATES), then task_from_json() and the step parser of
 * agents/steps.c.  Nothing is run: the target checks the parser.
 *
 * Besides memory errors (ASan) and undefined behaviour (UBSan) it checks
 * the promises: a refused task gives -EINVAL and one message starting with
 * the JSON path ("task…"); an accepted task has 1 to 64 steps with
 * increasing indexes, only allowed sysctl keys, interface names that are
 * valid, addresses of one family, waits within 120 s and MTUs within
 * 68..65535; its results (and a refusal's) serialize with texts cut to
 * STEPS_MAX_TEXT bytes. */
#include <config.h>

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "steps.h"
#include "tasks.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define PROMISE(cond) do { if (!(cond)) { fprintf(stderr, "broken promise: %s\n", #cond); abort(); } } while (0)

static void check_step(const struct step *s)
{
    PROMISE(s->name && *s->name && strlen(s->name) <= STEPS_MAX_NAME);
    PROMISE(s->action < _PLAYBOOK_ACTION_MAX);
    PROMISE(!s->interface[0] || desired_interface_name_valid(s->interface));
    switch (s->action) {
    case PLAYBOOK_SYSCTL_SET:
        PROMISE(playbook_sysctl_key_allowed(s->key));
        PROMISE(*s->value && strlen(s->value) <= STEPS_MAX_SYSCTL_VALUE);
        break;
    case PLAYBOOK_ADDRESS_ADD:
    case PLAYBOOK_ADDRESS_REMOVE:
        PROMISE(s->address.addr.family == AF_INET || s->address.addr.family == AF_INET6);
        PROMISE(s->address.len <= ip_family_bits(s->address.addr.family));
        PROMISE(s->interface[0]);
        PROMISE(!s->nodad || s->address.addr.family == AF_INET6);
        break;
    case PLAYBOOK_ROUTE_ADD:
    case PLAYBOOK_ROUTE_REMOVE:
        PROMISE(s->dst.addr.family == AF_INET || s->dst.addr.family == AF_INET6);
        PROMISE(!ip_prefix_has_host_bits(&s->dst));
        PROMISE(s->via.family == 0 || s->via.family == s->dst.addr.family);
        PROMISE(s->action == PLAYBOOK_ROUTE_REMOVE || s->via.family || s->interface[0]);
        PROMISE(s->table != 0 && s->table != 255);
        break;
    case PLAYBOOK_LINK_SET_MTU:
        PROMISE(s->mtu >= 68 && s->mtu <= 65535 && s->interface[0]);
        break;
    case PLAYBOOK_CHECK_RUN:
        PROMISE(s->check.present && s->check.timeout_ms <= PLAYBOOK_MAX_WAIT_MS);
        PROMISE(s->check.check < CHECK_MAX && s->check.reason < REASON_MAX);
        break;
    case PLAYBOOK_WAIT_FOR:
        PROMISE(s->timeout_ms <= PLAYBOOK_MAX_WAIT_MS && s->interface[0]);
        PROMISE(s->address.addr.family == AF_INET || s->address.addr.family == AF_INET6);
        break;
    case _PLAYBOOK_ACTION_MAX:
        abort();
    }
    PROMISE(!s->verify.present || s->verify.timeout_ms <= PLAYBOOK_MAX_WAIT_MS);
    PROMISE(!s->when.present || s->when.check < CHECK_MAX);
}

static void check_texts(json_t *o)
{
    static const char *const keys[] = { "before", "after", "message", NULL };
    for (const char *const *k = keys; *k; k++) {
        json_t *v = json_object_get(o, *k);
        PROMISE(!v || json_is_null(v) || strlen(json_string_value(v)) <= STEPS_MAX_TEXT + 3);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > TASKS_MAX_BYTES)
        return 0;
    json_t *js = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES, NULL);
    if (!js)
        return 0;
    struct task *t = NULL;
    char *err = NULL;
    int64_t id = 0;
    int mode = size > 0 && (data[0] & 1) ? STEP_MODE_CHECK : -1;
    int r = task_from_json(js, mode, &t, &id, &err);
    json_decref(js);
    if (r < 0) {
        PROMISE(r == -EINVAL && err && strncmp(err, "task", 4) == 0 && !t);
        json_t *refused = task_result_refused(err);
        check_texts(refused);
        char *text = json_dumps(refused, JSON_COMPACT);
        PROMISE(text);
        free(text);
        json_decref(refused);
        free(err);
        return 0;
    }
    PROMISE(t && !err && t->id >= 1 && t->n_steps >= 1 && t->n_steps <= PLAYBOOK_MAX_STEPS);
    PROMISE(t->mode < STEP_MODE_MAX && (mode < 0 || (int) t->mode == mode));
    PROMISE(t->segment.name && desired_interface_name_valid(t->segment.interface));
    for (size_t i = 0; i < t->n_steps; i++) {
        check_step(&t->steps[i]);
        PROMISE(i == 0 || t->steps[i].index > t->steps[i - 1].index);
        /* A result with a message longer than a result may carry. */
        struct step_result res = { .status = (enum step_status) (i % STEP_STATUS_MAX) };
        res.message = xmalloc(STEPS_MAX_TEXT + 100);
        memset(res.message, 'x', STEPS_MAX_TEXT + 99);
        res.message[STEPS_MAX_TEXT + 99] = '\0';
        res.before = xstrdup(t->steps[i].name);
        json_t *o = step_result_to_json(&t->steps[i], &res);
        check_texts(o);
        json_decref(o);
        step_result_clear(&res);
    }
    task_free(t);
    return 0;
}
