/* The fixed action set of playbooks and the sysctl keys they may write:
 * shared by the loader, the renderer (lib/playbook.c) and the agent
 * (agents/steps.c), so all three agree on what is allowed. */
#include <config.h>

#include <string.h>

#include "playbook.h"
#include "util.h"

static const char *const action_names[_PLAYBOOK_ACTION_MAX] = {
    [PLAYBOOK_SYSCTL_SET] = "sysctl.set",
    [PLAYBOOK_ADDRESS_ADD] = "address.add",
    [PLAYBOOK_ADDRESS_REMOVE] = "address.remove",
    [PLAYBOOK_ROUTE_ADD] = "route.add",
    [PLAYBOOK_ROUTE_REMOVE] = "route.remove",
    [PLAYBOOK_LINK_SET_MTU] = "link.set-mtu",
    [PLAYBOOK_CHECK_RUN] = "check.run",
    [PLAYBOOK_WAIT_FOR] = "wait.for",
};

const char *playbook_action_to_string(enum playbook_action a)
{
    if ((unsigned) a >= _PLAYBOOK_ACTION_MAX)
        return NULL;
    return action_names[a];
}

int playbook_action_from_string(const char *s)
{
    if (!s)
        return -1;
    for (int a = 0; a < _PLAYBOOK_ACTION_MAX; a++)
        if (streq(action_names[a], s))
            return a;
    return -1;
}

/* An interface name as the kernel accepts it (dev_valid_name()): 1-15
 * bytes, no '/', no whitespace, not "." or "..". */
static bool ifname_valid(const char *s, size_t len)
{
    if (len == 0 || len > 15)
        return false;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char) s[i];
        if (c == '/' || c == ':' || c <= ' ' || c >= 0x7f)
            return false;
    }
    return true;
}

bool playbook_sysctl_key_allowed(const char *key)
{
    const char *rest;

    if (!key)
        return false;
    if (strncmp(key, "net/ipv6/conf/", 14) == 0 || strncmp(key, "net/ipv4/conf/", 14) == 0)
        rest = key + 14;
    else
        return false;

    const char *slash = strchr(rest, '/');
    if (!slash || !ifname_valid(rest, (size_t) (slash - rest)))
        return false;

    const char *name = slash + 1;
    if (*name == '\0' || strlen(name) > 64)
        return false;
    for (const char *p = name; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            return false;
    return true;
}

const char *const playbook_check_names[PLAYBOOK_N_CHECKS] = {
    "ipv6-enabled", "link-local", "ipv6-global-address", "ipv4-address",
    "ipv6-default-route", "gateway-neighbour", "accept-ra", "ipv4-only-listeners",
};

static const struct {
    const char *reason, *check;
} reason_checks[] = {
    { "OK", "" },
    { "IPV6_DISABLED", "ipv6-enabled" },
    { "MTU_TOO_SMALL", "ipv6-enabled" },
    { "INTERFACE_MISSING", "ipv6-enabled" },
    { "INTERFACE_DOWN", "ipv6-enabled" },
    { "NO_LINK_LOCAL", "link-local" },
    { "DAD_FAILED", "link-local" },
    { "NO_GLOBAL_IPV6", "ipv6-global-address" },
    { "IPV6_TENTATIVE", "ipv6-global-address" },
    { "IPV6_DEPRECATED", "ipv6-global-address" },
    { "IPV6_DAD_FAILED", "ipv6-global-address" },
    { "IPV6_OUTSIDE_PREFIX", "ipv6-global-address" },
    { "NO_IPV4_IN_PREFIX", "ipv4-address" },
    { "NO_IPV6_DEFAULT_ROUTE", "ipv6-default-route" },
    { "GATEWAY_NEIGH_FAILED", "gateway-neighbour" },
    { "GATEWAY_NEIGH_INCOMPLETE", "gateway-neighbour" },
    { "GATEWAY_NOT_ROUTER", "gateway-neighbour" },
    { "RA_IGNORED_FORWARDING", "accept-ra" },
    { "RA_DISABLED", "accept-ra" },
    { "IPV4_ONLY_LISTENER", "ipv4-only-listeners" },
};

bool playbook_check_known(const char *name)
{
    for (size_t i = 0; name && i < PLAYBOOK_N_CHECKS; i++)
        if (streq(playbook_check_names[i], name))
            return true;
    return false;
}

const char *playbook_reason_check(const char *reason)
{
    for (size_t i = 0; reason && i < YG_ARRAY_SIZE(reason_checks); i++)
        if (streq(reason_checks[i].reason, reason))
            return reason_checks[i].check;
    return NULL;
}

const char *playbook_reason_at(size_t i)
{
    return i < YG_ARRAY_SIZE(reason_checks) ? reason_checks[i].reason : NULL;
}
