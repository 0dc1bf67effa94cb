#include <config.h>
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <yaml.h>

#include "api.h"
#include "playbook-run.h"
#include "request.h"
#include "util.h"

#define CONFIG_MAX_BYTES (64 * 1024)

void yunguand_config_defaults(struct yunguand_config *cfg)
{
    cfg->database = xstrdup(YG_LOCALSTATEDIR "/lib/yunguan/yunguan.db");
    cfg->listen_address = xstrdup("127.0.0.1");
    cfg->port = 8470;
    cfg->admin_token_file = NULL;
    cfg->log_level = xstrdup("info");
    cfg->max_body_bytes = REQUEST_MAX_BYTES;
    cfg->http_threads = 2;
    cfg->heartbeat_seconds = 10;
    cfg->playbook_dir = xstrdup(PLAYBOOK_DIR);
    cfg->playbook_batch_size = PLAYBOOK_BATCH_SIZE_DEFAULT;
    cfg->playbook_host_timeout_seconds = PLAYBOOK_HOST_TIMEOUT_DEFAULT;
    vms_config_defaults(&cfg->vms);
}

void yunguand_config_free(struct yunguand_config *cfg)
{
    free(cfg->database);
    free(cfg->listen_address);
    free(cfg->admin_token_file);
    free(cfg->log_level);
    free(cfg->playbook_dir);
    free(cfg->tls_cert_file);
    free(cfg->tls_key_file);
    free(cfg->vms.domain_type);
}

int yunguand_config_set_listen(struct yunguand_config *cfg, const char *text)
{
    const char *colon = strrchr(text, ':');
    if (!colon)
        return -EINVAL;
    char *end;
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (errno || *end || colon[1] == '\0' || port > 65535)
        return -EINVAL;
    size_t n = (size_t) (colon - text);
    char *addr;
    if (n == 0)
        addr = xstrdup("127.0.0.1");
    else if (text[0] == '[' && n >= 2 && text[n - 1] == ']')
        addr = xstrndup(text + 1, n - 2);
    else
        addr = xstrndup(text, n);
    free(cfg->listen_address);
    cfg->listen_address = addr;
    cfg->port = (uint16_t) port;
    return 0;
}

static struct yg_error *config_error(const char *path, const yaml_mark_t *m, const char *key,
                                     const char *msg)
{
    struct yg_error *e = yg_error_new(400, "invalid_config", "configuration file '%s' is not valid", path);
    yg_error_add_detail(e, (int) m->line + 1, (int) m->column + 1, key, "%s", msg);
    return e;
}

int yunguand_config_load(struct yunguand_config *cfg, const char *path, struct yg_error **ret_error)
{
    _cleanup_free_ char *text = NULL;
    size_t len;
    int r = read_file_limited(path, CONFIG_MAX_BYTES, &text, &len);
    if (r < 0) {
        *ret_error = yg_error_new(400, "invalid_config", "cannot read configuration file '%s': %s",
                                  path, strerror(-r));
        return r;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *) text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        *ret_error = config_error(path, &parser.problem_mark, NULL,
                                  parser.problem ? parser.problem : "YAML syntax error");
        yaml_parser_delete(&parser);
        return -EINVAL;
    }
    r = 0;
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (root && root->type != YAML_MAPPING_NODE) {
        *ret_error = config_error(path, &root->start_mark, NULL, "the configuration must be a mapping");
        r = -EINVAL;
    }
    for (yaml_node_pair_t *p = root && !r ? root->data.mapping.pairs.start : NULL;
         p && p < root->data.mapping.pairs.top && !r; p++) {
        yaml_node_t *k = yaml_document_get_node(&doc, p->key);
        yaml_node_t *v = yaml_document_get_node(&doc, p->value);
        if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE) {
            *ret_error = config_error(path, &k->start_mark, NULL, "keys and values must be plain scalars");
            r = -EINVAL;
            break;
        }
        const char *key = (const char *) k->data.scalar.value;
        const char *val = (const char *) v->data.scalar.value;
        char *end;
        if (streq(key, "listen")) {
            if (yunguand_config_set_listen(cfg, val) < 0) {
                *ret_error = config_error(path, &v->start_mark, key,
                                          "expected ADDRESS:PORT, e.g. '127.0.0.1:8470' or '[::1]:8470'");
                r = -EINVAL;
            }
        } else if (streq(key, "database")) {
            free(cfg->database);
            cfg->database = xstrdup(val);
        } else if (streq(key, "admin_token_file")) {
            free(cfg->admin_token_file);
            cfg->admin_token_file = xstrdup(val);
        } else if (streq(key, "log_level")) {
            free(cfg->log_level);
            cfg->log_level = xstrdup(val);
        } else if (streq(key, "tls_cert_file") || streq(key, "tls_key_file")) {
            char **slot = streq(key, "tls_cert_file") ? &cfg->tls_cert_file : &cfg->tls_key_file;
            if (val[0] != '/') {
                *ret_error = config_error(path, &v->start_mark, key,
                                          "expected an absolute path to a PEM file, e.g. "
                                          "'/etc/yunguan/tls/yunguand.crt'");
                r = -EINVAL;
            } else {
                free(*slot);
                *slot = xstrdup(val);
            }
        } else if (streq(key, "playbook_dir")) {
            if (val[0] != '/') {
                *ret_error = config_error(path, &v->start_mark, key,
                                          "expected an absolute directory path, e.g. '/usr/share/yunguan/playbooks'");
                r = -EINVAL;
            } else {
                free(cfg->playbook_dir);
                cfg->playbook_dir = xstrdup(val);
            }
        } else if (streq(key, "playbook_batch_size") || streq(key, "playbook_host_timeout_seconds")) {
            errno = 0;
            unsigned long n = strtoul(val, &end, 10);
            bool batch = streq(key, "playbook_batch_size");
            unsigned long max = batch ? PLAYBOOK_BATCH_SIZE_MAX : 86400;
            if (errno || *end || !*val || n < 1 || n > max) {
                *ret_error = config_error(path, &v->start_mark, key,
                                          batch ? "expected a number of hosts from 1 to 1000"
                                                : "expected seconds from 1 to 86400");
                r = -EINVAL;
            } else if (batch) {
                cfg->playbook_batch_size = (int) n;
            } else {
                cfg->playbook_host_timeout_seconds = (int) n;
            }
        } else if (streq(key, "heartbeat_seconds")) {
            errno = 0;
            unsigned long n = strtoul(val, &end, 10);
            if (errno || *end || !*val || n < 1 || n > 3600) {
                *ret_error = config_error(path, &v->start_mark, key,
                                          "expected seconds from 1 to 3600");
                r = -EINVAL;
            } else {
                cfg->heartbeat_seconds = (int) n;
            }
        } else if (streq(key, "max_body_bytes") || streq(key, "http_threads")) {
            errno = 0;
            unsigned long n = strtoul(val, &end, 10);
            bool body = streq(key, "max_body_bytes");
            if (errno || *end || !*val || n < 1 || n > (body ? REQUEST_MAX_BYTES : 64)) {
                *ret_error = config_error(path, &v->start_mark, key,
                                          body ? "expected a byte count from 1 to 65536"
                                               : "expected a thread count from 1 to 64");
                r = -EINVAL;
            } else if (body) {
                cfg->max_body_bytes = n;
            } else {
                cfg->http_threads = (unsigned) n;
            }
        } else if (streq(key, "vcpu_overcommit")) {
            errno = 0;
            double d = strtod(val, &end);
            if (errno || *end || !*val || !(d >= 1.0 && d <= 64.0)) {
                *ret_error = config_error(path, &v->start_mark, key,
                                          "expected a ratio of vCPUs to host CPUs from 1.0 to 64.0, e.g. 4.0");
                r = -EINVAL;
            } else {
                cfg->vms.vcpu_overcommit = d;
            }
        } else if (streq(key, "shutdown_timeout_seconds") || streq(key, "reconcile_seconds") ||
                   streq(key, "lease_notice_days") || streq(key, "lease_grace_days") ||
                   streq(key, "volume_size_override_mib")) {
            errno = 0;
            long n = strtol(val, &end, 10);
            bool zero_ok = !streq(key, "reconcile_seconds");
            if (errno || *end || !*val || n < (zero_ok ? 0 : 1) || n > 1000000) {
                *ret_error = config_error(path, &v->start_mark, key, zero_ok
                                          ? "expected a whole number from 0 to 1000000"
                                          : "expected a whole number from 1 to 1000000");
                r = -EINVAL;
            } else if (streq(key, "shutdown_timeout_seconds")) {
                cfg->vms.shutdown_timeout_seconds = (int) n;
            } else if (streq(key, "reconcile_seconds")) {
                cfg->vms.reconcile_seconds = (int) n;
            } else if (streq(key, "lease_notice_days")) {
                cfg->vms.lease_notice_days = (int) n;
            } else if (streq(key, "lease_grace_days")) {
                cfg->vms.lease_grace_days = (int) n;
            } else {
                cfg->vms.volume_size_override_mib = n;
            }
        } else if (streq(key, "decommission_approval")) {
            if (streq(val, "true") || streq(val, "false")) {
                cfg->vms.decommission_approval = streq(val, "true");
            } else {
                *ret_error = config_error(path, &v->start_mark, key,
                                          "expected true (a department's decommission waits for cloud "
                                          "operations) or false");
                r = -EINVAL;
            }
        } else if (streq(key, "domain_type")) {
            if (streq(val, "qemu") || streq(val, "kvm")) {
                free(cfg->vms.domain_type);
                cfg->vms.domain_type = xstrdup(val);
            } else {
                *ret_error = config_error(path, &v->start_mark, key,
                                          "expected qemu (TCG, no KVM needed) or kvm");
                r = -EINVAL;
            }
        } else {
            *ret_error = config_error(path, &k->start_mark, key,
                                      "unknown key; the keys are listen, database, admin_token_file, "
                                      "log_level, max_body_bytes, http_threads, heartbeat_seconds, "
                                      "vcpu_overcommit, shutdown_timeout_seconds, reconcile_seconds, "
                                      "decommission_approval, lease_notice_days, lease_grace_days, "
                                      "domain_type, volume_size_override_mib, playbook_dir, "
                                      "playbook_batch_size, playbook_host_timeout_seconds, "
                                      "tls_cert_file and tls_key_file");
            r = -EINVAL;
        }
    }
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    return r;
}
