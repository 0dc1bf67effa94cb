/* libFuzzer target for the request loader: request_parse() on arbitrary
 * bytes, then request_to_json() or the error object, then every free.
 * Besides memory errors (ASan) and undefined behaviour (UBSan) it checks the
 * loader's promises: exactly one of request/error, a 422 error has 1 to
 * REQUEST_MAX_ERRORS details each with line and column, every message is
 * valid UTF-8 (jansson refuses anything else), totals add up. */
#include <config.h>

#include <stdint.h>
#include <stdlib.h>

#include "error.h"
#include "loader-checks.h"
#include "request.h"
#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_request(const struct request *r)
{
    int64_t vms = 0, vcpus = 0;
    if (r->n_vms < 1 || r->n_vms > REQUEST_MAX_VM_GROUPS)
        abort();
    for (size_t i = 0; i < r->n_vms; i++) {
        const struct request_vm_group *g = &r->vms[i];
        if (!g->name || !g->image || g->count < 1 || g->count > REQUEST_MAX_COUNT ||
            g->vcpus < 1 || g->vcpus > REQUEST_MAX_VCPUS ||
            g->memory_mib < 64 || g->memory_mib > REQUEST_MAX_MEMORY_MIB ||
            g->disk_gib < 1 || g->disk_gib > REQUEST_MAX_DISK_GIB)
            abort();
        vms += g->count;
        vcpus += (int64_t) g->count * g->vcpus;
    }
    if (vms != r->total_vms || vcpus != r->total_vcpus)
        abort();
    if (!r->name || !r->department || !r->purpose || !r->lease_until || !r->segment ||
        r->security_level < 1 || r->security_level > 4 ||
        r->name_pos.line < 1 || r->department_pos.line < 1 || r->lease_until_pos.line < 1)
        abort();
    json_t *j = request_to_json(r);
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!s)
        abort();
    free(s);
    json_decref(j);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct request *r = NULL;
    struct yg_error *e = NULL;
    int rc = request_parse((const char *) data, size, "fuzz.yaml", &r, &e);
    if (rc == 0) {
        if (!r || e)
            abort();
        check_request(r);
    } else {
        if (r || !e)
            abort();
        fuzz_check_loader_error(e, REQUEST_MAX_ERRORS);
    }
    request_free(r);
    yg_error_free(e);
    return 0;
}
