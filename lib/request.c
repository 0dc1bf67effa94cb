/* The resource request loader (DESIGN.md "The resource request").
 *
 * lib/yamldoc.c does the generic work: the text check and limits, the tree
 * of positioned nodes built from libyaml's events, the problem list and
 * the typed getters (its header describes how scalars are typed).  This
 * file validates that tree against the request format, collecting up to
 * REQUEST_MAX_ERRORS problems, each with line:column and field path. */
#include <config.h>
#include "request.h"
#include "request-priv.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <strings.h>

#include "util.h"
#include "yamldoc.h"

static const struct yamldoc_options request_doc_options = {
    .noun = "request",
    .a_noun = "a request",
    .max_bytes = REQUEST_MAX_BYTES,
    .max_nodes = REQUEST_MAX_NODES,
    .max_depth = REQUEST_MAX_DEPTH,
    .max_problems = REQUEST_MAX_ERRORS,
};

static const char *const ipv6_names[REQUEST_IPV6_MAX] = {
    [REQUEST_IPV6_REQUIRED] = "required",
    [REQUEST_IPV6_PREFERRED] = "preferred",
    [REQUEST_IPV6_OFF] = "off",
};

const char *request_ipv6_to_string(enum request_ipv6 v)
{
    return (unsigned) v < REQUEST_IPV6_MAX ? ipv6_names[v] : NULL;
}

int request_ipv6_from_string(const char *s)
{
    if (!s)
        return -1;
    for (int i = 0; i < REQUEST_IPV6_MAX; i++)
        if (streq(s, ipv6_names[i]))
            return i;
    return -1;
}

#define API_VERSION "yunguan/v1"
#define KIND "ResourceRequest"
#define PURPOSE_MAX_CHARS 500
#define IMAGE_MAX_CHARS 128
#define MEMORY_MIN_MIB 64
#define MIB_PER_GIB INT64_C(1024)
#define MIB_PER_TIB (INT64_C(1024) * 1024)

/* ------------------------------------------------------------------ */
/* Small pure helpers (request-priv.h).                                 */

bool request_name_is_valid(const char *s)
{
    return yamldoc_name_is_valid(s);
}

int request_parse_date(const char *s, int *ret_year, int *ret_month, int *ret_day)
{
    return yamldoc_parse_date(s, ret_year, ret_month, ret_day);
}

int64_t request_days_from_civil(int year, int month, int day)
{
    return yamldoc_days_from_civil(year, month, day);
}

int request_check_text(const char *text, size_t len, int *ret_line, int *ret_column,
                       char **ret_message)
{
    return yamldoc_check_text(&request_doc_options, text, len, ret_line, ret_column,
                              ret_message);
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

enum size_status {
    SIZE_OK,
    SIZE_NO_UNIT,       /* "4096" */
    SIZE_BAD_UNIT,      /* "4GB", "4gb", "4G", "4KiB" */
    SIZE_UNIT_CASE,     /* "4gib": an accepted unit in the wrong case */
    SIZE_SPACE,         /* "4 GiB" */
    SIZE_SYNTAX,        /* "1.5GiB", "lots", "-4GiB" */
    SIZE_OVERFLOW,      /* too many digits for any sane size */
};

static const struct {
    const char *name;
    int64_t mib;
} size_units[] = {
    { "MiB", 1 },
    { "GiB", MIB_PER_GIB },
    { "TiB", MIB_PER_TIB },
};

static bool is_alpha(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

/* Parse S (LEN bytes, may lack a terminating NUL); on SIZE_BAD_UNIT and
 * SIZE_UNIT_CASE, *ret_unit is where the unit starts and *ret_digits how
 * many digits precede it. */
static enum size_status size_parse(const char *s, size_t len, int64_t *ret_mib,
                                   size_t *ret_digits)
{
    size_t i = 0;
    int64_t v = 0;
    bool overflow = false;
    while (i < len && is_digit(s[i])) {
        if (v > (INT64_MAX - 9) / 10)
            overflow = true;
        else
            v = v * 10 + (s[i] - '0');
        i++;
    }
    *ret_digits = i;
    if (i == 0)
        return SIZE_SYNTAX;
    if (i == len)
        return SIZE_NO_UNIT;
    const char *unit = s + i;
    size_t ulen = len - i;
    if (unit[0] == ' ') {
        size_t j = 0;
        while (j < ulen && unit[j] == ' ')
            j++;
        return j < ulen && is_alpha(unit[j]) ? SIZE_SPACE : SIZE_SYNTAX;
    }
    for (size_t j = 0; j < ulen; j++)
        if (!is_alpha(unit[j]))
            return SIZE_SYNTAX;
    for (size_t k = 0; k < YG_ARRAY_SIZE(size_units); k++) {
        if (ulen != strlen(size_units[k].name))
            continue;
        if (!memcmp(unit, size_units[k].name, ulen)) {
            if (overflow || v > INT64_MAX / size_units[k].mib)
                return SIZE_OVERFLOW;
            *ret_mib = v * size_units[k].mib;
            return SIZE_OK;
        }
        if (!strncasecmp(unit, size_units[k].name, ulen))
            return SIZE_UNIT_CASE;
    }
    return SIZE_BAD_UNIT;
}

int request_parse_size_mib(const char *s, int64_t *ret_mib)
{
    int64_t mib;
    size_t digits;
    switch (size_parse(s, strlen(s), &mib, &digits)) {
    case SIZE_OK:
        *ret_mib = mib;
        return 0;
    case SIZE_OVERFLOW:
        return -ERANGE;
    default:
        return -EINVAL;
    }
}

/* "64MiB", "1TiB": the largest unit that holds the value exactly. */
static char *format_mib(int64_t mib)
{
    if (mib % MIB_PER_TIB == 0)
        return xasprintf("%" PRId64 "TiB", mib / MIB_PER_TIB);
    if (mib % MIB_PER_GIB == 0)
        return xasprintf("%" PRId64 "GiB", mib / MIB_PER_GIB);
    return xasprintf("%" PRId64 "MiB", mib);
}

/* A size in MiB between MIN and MAX. */
static bool get_size(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                     int64_t min, int64_t max, int64_t *ret_mib)
{
    if (n->kind != YAMLDOC_SCALAR || n->scalar == YAMLDOC_NULL) {
        _cleanup_free_ char *got = yamldoc_describe(n);
        yamldoc_problem(d, n, path, "size expected (e.g. '4GiB'), got %s", got);
        return false;
    }
    int64_t mib = 0;
    size_t digits;
    enum size_status st = size_parse(n->text, n->len, &mib, &digits);
    _cleanup_free_ char *shown = yamldoc_show(n->text, n->len);
    _cleanup_free_ char *smin = format_mib(min), *smax = format_mib(max);
    switch (st) {
    case SIZE_OK:
        if (mib < min || mib > max) {
            yamldoc_problem(d, n, path, "must be between %s and %s, got '%s'", smin, smax, shown);
            return false;
        }
        *ret_mib = mib;
        return true;
    case SIZE_OVERFLOW:
        yamldoc_problem(d, n, path, "must be between %s and %s, got '%s'", smin, smax, shown);
        return false;
    case SIZE_NO_UNIT:
        yamldoc_problem(d, n, path, "size '%s' has no unit; use MiB, GiB or TiB (binary units), "
                        "e.g. '4GiB'", shown);
        return false;
    case SIZE_UNIT_CASE:
    case SIZE_BAD_UNIT: {
        const char *unit = n->text + digits;
        size_t ulen = n->len - digits;
        _cleanup_free_ char *ushown = yamldoc_show(unit, ulen);
        const char *good = NULL;
        for (size_t k = 0; k < YG_ARRAY_SIZE(size_units); k++)
            if (ulen >= 1 && (unit[0] | 0x20) == (size_units[k].name[0] | 0x20))
                good = size_units[k].name;
        if (st == SIZE_UNIT_CASE) {
            yamldoc_problem(d, n, path, "unit '%s' is not accepted; write '%s' "
                            "(units are case-sensitive)", ushown, good);
            return false;
        }
        if (good && digits <= 12) {
            _cleanup_free_ char *num = xstrndup(n->text, digits);
            yamldoc_problem(d, n, path, "unit '%s' is not accepted; use MiB, GiB or TiB "
                            "(binary units), e.g. '%s%s'", ushown, num, good);
        } else {
            yamldoc_problem(d, n, path, "unit '%s' is not accepted; use MiB, GiB or TiB "
                            "(binary units), e.g. '4GiB'", ushown);
        }
        return false;
    }
    case SIZE_SPACE:
        yamldoc_problem(d, n, path, "'%s' is not a valid size: write the number and the unit "
                        "without a space, e.g. '4GiB'", shown);
        return false;
    case SIZE_SYNTAX:
    default:
        yamldoc_problem(d, n, path, "'%s' is not a valid size: use a whole number followed by "
                        "MiB, GiB or TiB, e.g. '4GiB'", shown);
        return false;
    }
}

static bool image_is_valid(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > IMAGE_MAX_CHARS)
        return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        bool alnum = is_alpha(ch) || is_digit(ch);
        if (!alnum && !(i > 0 && (ch == '.' || ch == '_' || ch == '-')))
            return false;
    }
    return true;
}

static struct request_pos pos_of(const struct yamldoc_node *n)
{
    return (struct request_pos) { .line = n->line, .column = n->column };
}

static void validate_purpose(struct yamldoc *d, const struct yamldoc_node *n, char **ret)
{
    const char *path = "spec.purpose";
    _cleanup_free_ char *s = NULL;
    if (!yamldoc_get_string(d, n, path, &s))
        return;
    size_t len = strlen(s), chars = yamldoc_utf8_chars(s, len);
    bool blank = true;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char) s[i];
        if (ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r')
            blank = false;
        if ((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7F) {
            yamldoc_problem(d, n, path, "control character U+%04X is not allowed", ch);
            return;
        }
    }
    if (blank) {
        yamldoc_problem(d, n, path, "must not be empty: say what the resources are for");
        return;
    }
    if (chars > PURPOSE_MAX_CHARS) {
        yamldoc_problem(d, n, path, "is %zu characters long; at most %d are allowed",
                        chars, PURPOSE_MAX_CHARS);
        return;
    }
    /* Canonical form: no surrounding white space (a folded block keeps a
     * final newline that nobody meant). */
    size_t start = 0, end = len;
    while (start < end && strchr(" \t\n\r", s[start]))
        start++;
    while (end > start && strchr(" \t\n\r", s[end - 1]))
        end--;
    *ret = xstrndup(s + start, end - start);
}

/* "spec.vms[N]" (N a size_t) and "spec.vms[N].memory" and the like. */
#define VM_GROUP_PATH_MAX 32
#define VM_PATH_MAX (VM_GROUP_PATH_MAX + 16)

static const struct yamldoc_key top_keys[] = {
    { "apiVersion", true }, { "kind", true }, { "metadata", true }, { "spec", true },
};
static const struct yamldoc_key metadata_keys[] = {
    { "name", true }, { "department", true },
};
static const struct yamldoc_key spec_keys[] = {
    { "purpose", true }, { "securityLevel", true }, { "lease", true },
    { "network", true }, { "vms", true },
};
static const struct yamldoc_key lease_keys[] = {
    { "until", true },
};
static const struct yamldoc_key network_keys[] = {
    { "segment", true }, { "ipv6", false },
};
static const struct yamldoc_key vm_keys[] = {
    { "name", true }, { "count", false }, { "vcpus", true },
    { "memory", true }, { "disk", true }, { "image", true },
};

static void validate_metadata(struct yamldoc *d, const struct yamldoc_node *n, struct request *r)
{
    const struct yamldoc_node *v[YG_ARRAY_SIZE(metadata_keys)];
    if (!yamldoc_check_mapping(d, n, "metadata", metadata_keys, YG_ARRAY_SIZE(metadata_keys), v))
        return;
    if (v[0] && yamldoc_get_name(d, v[0], "metadata.name", "name", &r->name))
        r->name_pos = pos_of(v[0]);
    if (v[1] && yamldoc_get_name(d, v[1], "metadata.department", "department", &r->department))
        r->department_pos = pos_of(v[1]);
}

static void validate_vm(struct yamldoc *d, const struct yamldoc_node *n, const char *path,
                        struct request_vm_group *vm, const struct yamldoc_node **ret_name_node)
{
    const struct yamldoc_node *v[YG_ARRAY_SIZE(vm_keys)];
    *ret_name_node = NULL;
    if (!yamldoc_check_mapping(d, n, path, vm_keys, YG_ARRAY_SIZE(vm_keys), v))
        return;
    /* On the stack: built for every group of every request, used only
     * in messages ("spec.vms[63].memory" at most). */
    char p_name[VM_PATH_MAX], p_count[VM_PATH_MAX], p_vcpus[VM_PATH_MAX],
         p_memory[VM_PATH_MAX], p_disk[VM_PATH_MAX], p_image[VM_PATH_MAX];
    snprintf(p_name, sizeof p_name, "%s.name", path);
    snprintf(p_count, sizeof p_count, "%s.count", path);
    snprintf(p_vcpus, sizeof p_vcpus, "%s.vcpus", path);
    snprintf(p_memory, sizeof p_memory, "%s.memory", path);
    snprintf(p_disk, sizeof p_disk, "%s.disk", path);
    snprintf(p_image, sizeof p_image, "%s.image", path);

    if (v[0] && yamldoc_get_name(d, v[0], p_name, "VM name", &vm->name))
        *ret_name_node = v[0];
    vm->count = 1;
    if (v[1])
        yamldoc_get_int(d, v[1], p_count, 1, REQUEST_MAX_COUNT, &vm->count);
    if (v[2])
        yamldoc_get_int(d, v[2], p_vcpus, 1, REQUEST_MAX_VCPUS, &vm->vcpus);
    if (v[3])
        get_size(d, v[3], p_memory, MEMORY_MIN_MIB, REQUEST_MAX_MEMORY_MIB, &vm->memory_mib);
    if (v[4]) {
        int64_t mib;
        if (get_size(d, v[4], p_disk, MIB_PER_GIB,
                     (int64_t) REQUEST_MAX_DISK_GIB * MIB_PER_GIB, &mib)) {
            if (mib % MIB_PER_GIB) {
                _cleanup_free_ char *shown = yamldoc_show(v[4]->text, v[4]->len);
                yamldoc_problem(d, v[4], p_disk, "must be a whole number of GiB, got '%s'", shown);
            } else {
                vm->disk_gib = mib / MIB_PER_GIB;
            }
        }
    }
    if (v[5] && yamldoc_get_string(d, v[5], p_image, &vm->image) && !image_is_valid(vm->image)) {
        _cleanup_free_ char *shown = yamldoc_show(v[5]->text, v[5]->len);
        yamldoc_problem(d, v[5], p_image, "'%s' is not a valid image name: use up to %d letters, "
                        "digits, '.', '_' and '-', starting with a letter or digit",
                        shown, IMAGE_MAX_CHARS);
    }
}

static void validate_vms(struct yamldoc *d, const struct yamldoc_node *n, struct request *r)
{
    const char *path = "spec.vms";
    if (yamldoc_is_null(n) ||
        (n->kind == YAMLDOC_SEQUENCE && n->n_children == 0)) {
        yamldoc_problem(d, n, path, "at least one VM group is required");
        return;
    }
    if (n->kind != YAMLDOC_SEQUENCE) {
        yamldoc_type_problem(d, n, path, "sequence");
        return;
    }
    if (n->n_children > REQUEST_MAX_VM_GROUPS) {
        yamldoc_problem(d, n, path, "%zu VM groups is too many; at most %d are allowed "
                        "(use count for identical VMs)", n->n_children, REQUEST_MAX_VM_GROUPS);
        return;
    }
    const struct yamldoc_node *names[REQUEST_MAX_VM_GROUPS];
    r->vms = xcalloc(n->n_children, sizeof *r->vms);
    r->n_vms = n->n_children;
    for (size_t i = 0; i < n->n_children; i++) {
        char p[VM_GROUP_PATH_MAX];
        snprintf(p, sizeof p, "%s[%zu]", path, i);
        validate_vm(d, n->children[i], p, &r->vms[i], &names[i]);
        if (!names[i])
            continue;
        for (size_t j = 0; j < i; j++)
            if (names[j] && streq(r->vms[j].name, r->vms[i].name)) {
                char pn[VM_PATH_MAX];
                snprintf(pn, sizeof pn, "%s.name", p);
                yamldoc_problem(d, names[i], pn, "duplicate VM name '%s' (first used by "
                                "spec.vms[%zu] at line %d)", r->vms[i].name, j, names[j]->line);
                break;
            }
    }
}

static void validate_spec(struct yamldoc *d, const struct yamldoc_node *n, struct request *r)
{
    const struct yamldoc_node *v[YG_ARRAY_SIZE(spec_keys)];
    if (!yamldoc_check_mapping(d, n, "spec", spec_keys, YG_ARRAY_SIZE(spec_keys), v))
        return;
    if (v[0])
        validate_purpose(d, v[0], &r->purpose);
    if (v[1])
        yamldoc_get_int(d, v[1], "spec.securityLevel", 1, 4, &r->security_level);
    if (v[2]) {
        const struct yamldoc_node *lv[YG_ARRAY_SIZE(lease_keys)];
        if (yamldoc_check_mapping(d, v[2], "spec.lease", lease_keys,
                                  YG_ARRAY_SIZE(lease_keys), lv) &&
            lv[0] && yamldoc_get_date(d, lv[0], "spec.lease.until", &r->lease_until))
            r->lease_until_pos = pos_of(lv[0]);
    }
    if (v[3]) {
        const struct yamldoc_node *nv[YG_ARRAY_SIZE(network_keys)];
        if (yamldoc_check_mapping(d, v[3], "spec.network", network_keys,
                                  YG_ARRAY_SIZE(network_keys), nv)) {
            if (nv[0])
                yamldoc_get_name(d, nv[0], "spec.network.segment", "segment name", &r->segment);
            _cleanup_free_ char *s = NULL;
            if (nv[1] && yamldoc_get_string(d, nv[1], "spec.network.ipv6", &s)) {
                int v6 = request_ipv6_from_string(s);
                if (v6 < 0) {
                    _cleanup_free_ char *shown = yamldoc_show(nv[1]->text, nv[1]->len);
                    yamldoc_problem(d, nv[1], "spec.network.ipv6",
                                    "'%s' is not a valid value; use required, preferred or off",
                                    shown);
                } else {
                    r->ipv6 = (enum request_ipv6) v6;
                }
            }
        }
    }
    if (v[4])
        validate_vms(d, v[4], r);
}

static void validate_root(struct yamldoc *d, const struct yamldoc_node *root, struct request *r)
{
    if (!root || yamldoc_is_null(root)) {
        yamldoc_problem_at(d, root ? root->line : 1, root ? root->column : 1, NULL,
                           "the document is empty; a request is a mapping with apiVersion, kind, "
                           "metadata and spec");
        return;
    }
    if (root->kind != YAMLDOC_MAPPING) {
        _cleanup_free_ char *got = yamldoc_describe(root);
        yamldoc_problem(d, root, NULL, "the top level must be a mapping with apiVersion, kind, "
                        "metadata and spec; got %s", got);
        return;
    }
    const struct yamldoc_node *v[YG_ARRAY_SIZE(top_keys)];
    yamldoc_check_mapping(d, root, NULL, top_keys, YG_ARRAY_SIZE(top_keys), v);
    if (v[0])
        yamldoc_get_exact(d, v[0], "apiVersion", API_VERSION);
    if (v[1])
        yamldoc_get_exact(d, v[1], "kind", KIND);
    if (v[2])
        validate_metadata(d, v[2], r);
    if (v[3])
        validate_spec(d, v[3], r);
}

static void compute_totals(struct request *r)
{
    r->total_vms = r->total_vcpus = r->total_memory_mib = r->total_disk_gib = 0;
    for (size_t i = 0; i < r->n_vms; i++) {
        const struct request_vm_group *g = &r->vms[i];
        r->total_vms += g->count;
        r->total_vcpus += (int64_t) g->count * g->vcpus;
        r->total_memory_mib += (int64_t) g->count * g->memory_mib;
        r->total_disk_gib += (int64_t) g->count * g->disk_gib;
    }
}

/* ------------------------------------------------------------------ */

void request_free(struct request *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->n_vms; i++) {
        free(r->vms[i].name);
        free(r->vms[i].image);
    }
    free(r->vms);
    free(r->name);
    free(r->department);
    free(r->purpose);
    free(r->lease_until);
    free(r->segment);
    free(r);
}

int request_parse(const char *text, size_t len, const char *filename,
                  struct request **ret_request, struct yg_error **ret_error)
{
    _cleanup_(yamldoc_freep) struct yamldoc *d = yamldoc_new(&request_doc_options, filename);
    _cleanup_(request_freep) struct request *r = NULL;
    const struct yamldoc_node *root;

    int ret = yamldoc_load(d, text, len, &root);
    if (ret < 0) {
        *ret_error = yamldoc_error(d);
        return ret;
    }
    r = xcalloc(1, sizeof *r);
    r->ipv6 = REQUEST_IPV6_PREFERRED;
    validate_root(d, root, r);
    if (yamldoc_failed(d)) {
        *ret_error = yamldoc_error(d);
        return -EINVAL;
    }
    compute_totals(r);
    *ret_request = steal_pointer(&r);
    return 0;
}

json_t *request_to_json(const struct request *r)
{
    json_t *root = json_object();
    json_t *metadata = json_object();
    json_t *spec = json_object();
    json_t *vms = json_array();
    json_t *totals = json_object();

    json_object_set_new(root, "apiVersion", json_string(API_VERSION));
    json_object_set_new(root, "kind", json_string(KIND));
    json_object_set_new(metadata, "name", json_string(r->name));
    json_object_set_new(metadata, "department", json_string(r->department));
    json_object_set_new(root, "metadata", metadata);

    json_object_set_new(spec, "purpose", json_string(r->purpose));
    json_object_set_new(spec, "securityLevel", json_integer(r->security_level));
    json_object_set_new(spec, "lease", json_pack("{s:s}", "until", r->lease_until));
    json_object_set_new(spec, "network", json_pack("{s:s, s:s}", "segment", r->segment,
                                                   "ipv6", request_ipv6_to_string(r->ipv6)));
    for (size_t i = 0; i < r->n_vms; i++) {
        const struct request_vm_group *g = &r->vms[i];
        json_t *vm = json_object();
        json_object_set_new(vm, "name", json_string(g->name));
        json_object_set_new(vm, "count", json_integer(g->count));
        json_object_set_new(vm, "vcpus", json_integer(g->vcpus));
        json_object_set_new(vm, "memory_mib", json_integer(g->memory_mib));
        json_object_set_new(vm, "disk_gib", json_integer(g->disk_gib));
        json_object_set_new(vm, "image", json_string(g->image));
        json_array_append_new(vms, vm);
    }
    json_object_set_new(spec, "vms", vms);
    json_object_set_new(root, "spec", spec);

    json_object_set_new(totals, "vms", json_integer(r->total_vms));
    json_object_set_new(totals, "vcpus", json_integer(r->total_vcpus));
    json_object_set_new(totals, "memory_mib", json_integer(r->total_memory_mib));
    json_object_set_new(totals, "disk_gib", json_integer(r->total_disk_gib));
    json_object_set_new(root, "totals", totals);
    return root;
}

int request_lease_days_from(const struct request *r, int64_t now_epoch_sec)
{
    int y, m, d;
    if (!r->lease_until || request_parse_date(r->lease_until, &y, &m, &d) < 0)
        return 0;
    int64_t today = now_epoch_sec / 86400;
    if (now_epoch_sec % 86400 < 0)
        today--;                /* floor for times before 1970 */
    int64_t days = request_days_from_civil(y, m, d) - today;
    if (days > INT32_MAX)
        return INT32_MAX;
    if (days < INT32_MIN)
        return INT32_MIN;
    return (int) days;
}

