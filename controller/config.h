/* yunguand's configuration: defaults, then the YAML file, then flags. */
#ifndef YG_CONFIG_H
#define YG_CONFIG_H 1

#include <stddef.h>
#include <stdint.h>

#include "error.h"
#include "vms.h"

struct yunguand_config {
    char *database;             /* SQLite file */
    char *listen_address;       /* IPv4 or IPv6 literal */
    uint16_t port;
    char *admin_token_file;     /* NULL: admin.token beside the database */
    char *log_level;
    size_t max_body_bytes;
    unsigned http_threads;
    int heartbeat_seconds;      /* agents report at least this often */
    char *playbook_dir;         /* installed playbooks (doc/PLAYBOOKS.md) */
    int playbook_batch_size;    /* hosts per apply batch after the canary */
    int playbook_host_timeout_seconds;  /* silent longer: the host is 'unknown' */
    char *tls_cert_file;        /* PEM certificate (chain) for HTTPS; NULL: plain HTTP */
    char *tls_key_file;         /* its PEM private key; given with tls_cert_file */
    struct vms_config vms;      /* hypervisors, VMs, leases (vms.h) */
};

void yunguand_config_defaults(struct yunguand_config *cfg);
void yunguand_config_free(struct yunguand_config *cfg);

/* Parse "ADDR:PORT", "[V6ADDR]:PORT" or ":PORT". 0 or -EINVAL. */
int yunguand_config_set_listen(struct yunguand_config *cfg, const char *text);

/* Load the YAML file at PATH over CFG.  Keys: listen, database,
 * admin_token_file, log_level, max_body_bytes, http_threads, playbook_dir,
 * playbook_batch_size, playbook_host_timeout_seconds, tls_cert_file,
 * tls_key_file, ….  Unknown keys
 * and bad values are errors with file:line:column.  0 or -errno + error. */
int yunguand_config_load(struct yunguand_config *cfg, const char *path, struct yg_error **ret_error);

#endif
