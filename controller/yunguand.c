/* yunguand — the yunguan controller daemon.
 *
 * Start-up order (STYLE.md): logging → configuration → store open and
 * migrate → first admin token → serve → READY=1. */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api.h"
#include "auth.h"
#include "config.h"
#include "log.h"
#include "playbook-run.h"
#include "readiness.h"
#include "store.h"
#include "util.h"
#include "vms.h"

#define LOG_DOMAIN "yunguand"

static void usage(FILE *f)
{
    fprintf(f,
        "Usage: yunguand [OPTION]...\n"
        "The yunguan controller: HTTP API, store, request lifecycle, quotas, audit.\n"
        "\n"
        "  -c, --config FILE            YAML configuration (listen, database,\n"
        "                               admin_token_file, log_level, max_body_bytes,\n"
        "                               http_threads, vcpu_overcommit,\n"
        "                               shutdown_timeout_seconds, reconcile_seconds,\n"
        "                               decommission_approval, lease_notice_days,\n"
        "                               lease_grace_days, domain_type, playbook_dir,\n"
        "                               playbook_batch_size,\n"
        "                               playbook_host_timeout_seconds, tls_cert_file,\n"
        "                               tls_key_file); flags override it\n"
        "  -d, --db PATH                SQLite database (default %s/lib/yunguan/yunguan.db)\n"
        "  -l, --listen ADDR:PORT       where to serve the API (default 127.0.0.1:8470;\n"
        "                               port 0 picks a free port and logs it)\n"
        "      --admin-token-file PATH  where the first admin token is written\n"
        "                               (default: admin.token beside the database)\n"
        "      --log-level LEVEL        err, warn, info or debug (default info)\n"
        "      --heartbeat-seconds N    agents report at least every N seconds; a host\n"
        "                               is stale after 3 missed heartbeats (default 10)\n"
        "      --tls-cert FILE          serve HTTPS (TLS 1.2 or 1.3) with this PEM\n"
        "                               certificate (chain); needs --tls-key\n"
        "      --tls-key FILE           the PEM private key of --tls-cert (not readable\n"
        "                               by every user: mode 0600 or 0640)\n"
        "  -h, --help                   show this help and exit\n"
        "  -V, --version                show the version and exit\n"
        "\n"
        "On first start (no admin token in the store) an admin token is created and\n"
        "written, mode 0600, to the admin token file.  SIGTERM or SIGINT stop the\n"
        "daemon after every accepted change is committed.  See yunguand(8).\n",
        YG_LOCALSTATEDIR);
}

/* systemd's readiness protocol, without linking libsystemd. */
static void notify_ready(void)
{
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path || strlen(path) >= sizeof(((struct sockaddr_un *) 0)->sun_path))
        return;
    struct sockaddr_un sa = { .sun_family = AF_UNIX };
    memcpy(sa.sun_path, path, strlen(path));
    if (sa.sun_path[0] == '@')
        sa.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return;
    static const char msg[] = "READY=1\nSTATUS=serving";
    if (sendto(fd, msg, sizeof msg - 1, 0, (struct sockaddr *) &sa,
               (socklen_t) (offsetof(struct sockaddr_un, sun_path) + strlen(path))) < 0)
        log_warn(LOG_DOMAIN, "cannot notify systemd: %s", strerror(errno));
    close(fd);
}

struct bootstrap_job {
    char *secret;
};

static int bootstrap_run(struct store_txn *txn, void *ctx)
{
    struct bootstrap_job *j = ctx;
    struct principal system = { .role = ROLE_ADMIN };
    snprintf(system.actor, sizeof system.actor, "system");
    if (auth_have_admin(store_txn_conn(txn)))
        return 0;
    int64_t id = auth_token_create(txn, &system, ROLE_ADMIN, 0, "first admin token", &j->secret);
    return id < 0 ? (int) id : 0;
}

/* Write SECRET to PATH atomically with mode 0600. */
static int write_secret_file(const char *path, const char *secret)
{
    _cleanup_free_ char *tmp = xasprintf("%s.tmp.%d", path, (int) getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    size_t n = strlen(secret);
    bool ok = write(fd, secret, n) == (ssize_t) n && write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    int r = ok ? 0 : -errno;
    close(fd);
    if (r == 0 && rename(tmp, path) < 0)
        r = -errno;
    if (r < 0)
        unlink(tmp);
    return r;
}

static int ensure_admin_token(struct store *store, const char *token_file)
{
    struct bootstrap_job j = { 0 };
    int r = store_run(store, bootstrap_run, &j);
    if (r < 0) {
        log_err(LOG_DOMAIN, "cannot create the first admin token: %s", strerror(-r));
        return r;
    }
    if (!j.secret)
        return 0;
    r = write_secret_file(token_file, j.secret);
    explicit_bzero(j.secret, strlen(j.secret));
    free(j.secret);
    if (r < 0) {
        log_err(LOG_DOMAIN, "created the first admin token but cannot write it to '%s': %s",
                token_file, strerror(-r));
        return r;
    }
    log_info(LOG_DOMAIN, "created the first admin token; it is in '%s' (mode 0600)", token_file);
    return 0;
}

/* A PEM file for HTTPS, read whole (at most 64 KiB).  A private key every
 * user can read is refused: it would no longer prove anything (a group,
 * like Debian's ssl-cert, may read it). */
static int read_tls_file(const char *path, const char *what, bool secret, char **ret)
{
    struct stat st;
    if (stat(path, &st) < 0) {
        fprintf(stderr, "yunguand: cannot read the TLS %s '%s': %s\n", what, path, strerror(errno));
        return -errno;
    }
    if (secret && (st.st_mode & 0007)) {
        fprintf(stderr, "yunguand: the TLS private key '%s' can be read by every user (mode %04o); "
                "make it 0600 or 0640 (chmod 600 '%s')\n", path, (unsigned) (st.st_mode & 07777), path);
        return -EPERM;
    }
    char *data = NULL;
    size_t len = 0;
    int r = secret ? read_secret_file(path, 64 * 1024, &data, &len)
                   : read_file_limited(path, 64 * 1024, &data, &len);
    if (r < 0) {
        fprintf(stderr, "yunguand: cannot read the TLS %s '%s': %s\n", what, path,
                r == -EFBIG ? "larger than 64 KiB"
                : r == -EAGAIN ? "it changed size while being read; try again once it is written"
                : strerror(-r));
        return r;
    }
    if (memchr(data, '\0', len) || !strstr(data, "-----BEGIN ")) {
        fprintf(stderr, "yunguand: the TLS %s '%s' is not PEM text (no '-----BEGIN' line, or a NUL byte)\n",
                what, path);
        if (secret)
            free_secret(data);
        else
            free(data);
        return -EINVAL;
    }
    *ret = data;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "config", required_argument, NULL, 'c' },
        { "db", required_argument, NULL, 'd' },
        { "listen", required_argument, NULL, 'l' },
        { "admin-token-file", required_argument, NULL, 'A' },
        { "log-level", required_argument, NULL, 'L' },
        { "heartbeat-seconds", required_argument, NULL, 'H' },
        { "tls-cert", required_argument, NULL, 'C' },
        { "tls-key", required_argument, NULL, 'K' },
        { "help", no_argument, NULL, 'h' },
        { "version", no_argument, NULL, 'V' },
        { 0 },
    };
    const char *config_path = NULL, *db = NULL, *listen = NULL, *token_file = NULL, *level = NULL,
               *heartbeat = NULL, *tls_cert = NULL, *tls_key = NULL;
    int c;
    /* SQLite builds and frees an ephemeral table for every `state IN (…)`
     * list and the requests_live_name partial index on each UPDATE of a
     * request's state; with glibc's default trim threshold every free of
     * its page cache gives memory back (madvise), and in a threaded
     * process each give-back is a TLB shootdown on every CPU: 15-20 % of
     * the VM loop's CPU (bench/README.md).  Keep up to 256 MiB instead. */
    mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
    while ((c = getopt_long(argc, argv, "c:d:l:hV", options, NULL)) != -1) {
        switch (c) {
        case 'c': config_path = optarg; break;
        case 'd': db = optarg; break;
        case 'l': listen = optarg; break;
        case 'A': token_file = optarg; break;
        case 'L': level = optarg; break;
        case 'H': heartbeat = optarg; break;
        case 'C': tls_cert = optarg; break;
        case 'K': tls_key = optarg; break;
        case 'h': usage(stdout); return 0;
        case 'V': printf("yunguand %s\n", PACKAGE_VERSION); return 0;
        default:
            fprintf(stderr, "yunguand: see 'yunguand --help' for the options\n");
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "yunguand: unexpected argument '%s'; see 'yunguand --help'\n", argv[optind]);
        return 2;
    }

    struct yunguand_config cfg;
    yunguand_config_defaults(&cfg);
    if (config_path) {
        struct yg_error *e = NULL;
        if (yunguand_config_load(&cfg, config_path, &e) < 0) {
            _cleanup_free_ char *text = yg_error_format(e, e->n_details ? config_path : NULL);
            fprintf(stderr, "yunguand: %s\n", text);
            yg_error_free(e);
            yunguand_config_free(&cfg);
            return 2;
        }
    }
    if (db) {
        free(cfg.database);
        cfg.database = xstrdup(db);
    }
    if (listen && yunguand_config_set_listen(&cfg, listen) < 0) {
        fprintf(stderr, "yunguand: --listen '%s' is not ADDRESS:PORT (e.g. 127.0.0.1:8470 or [::1]:8470)\n",
                listen);
        yunguand_config_free(&cfg);
        return 2;
    }
    if (heartbeat) {
        char *end;
        long n = strtol(heartbeat, &end, 10);
        if (*end || !*heartbeat || n < 1 || n > 3600) {
            fprintf(stderr, "yunguand: --heartbeat-seconds '%s' is not a number of seconds from 1 to 3600\n",
                    heartbeat);
            yunguand_config_free(&cfg);
            return 2;
        }
        cfg.heartbeat_seconds = (int) n;
    }
    if (tls_cert) {
        free(cfg.tls_cert_file);
        cfg.tls_cert_file = xstrdup(tls_cert);
    }
    if (tls_key) {
        free(cfg.tls_key_file);
        cfg.tls_key_file = xstrdup(tls_key);
    }
    if (!cfg.tls_cert_file != !cfg.tls_key_file) {
        fprintf(stderr, "yunguand: HTTPS needs both a certificate and its key: give %s too\n",
                cfg.tls_cert_file ? "--tls-key FILE (or tls_key_file)" : "--tls-cert FILE (or tls_cert_file)");
        yunguand_config_free(&cfg);
        return 2;
    }
    _cleanup_free_ char *tls_cert_pem = NULL;
    /* Wiped when freed, after the API (which uses it) has stopped. */
    _cleanup_free_secret_ char *tls_key_pem = NULL;
    if (cfg.tls_cert_file &&
        (read_tls_file(cfg.tls_cert_file, "certificate", false, &tls_cert_pem) < 0 ||
         read_tls_file(cfg.tls_key_file, "private key", true, &tls_key_pem) < 0)) {
        yunguand_config_free(&cfg);
        return 2;
    }
    if (token_file) {
        free(cfg.admin_token_file);
        cfg.admin_token_file = xstrdup(token_file);
    }
    if (level) {
        free(cfg.log_level);
        cfg.log_level = xstrdup(level);
    }
    int lvl = log_level_from_string(cfg.log_level);
    if (lvl < 0) {
        fprintf(stderr, "yunguand: log level '%s' is not one of err, warn, info, debug\n", cfg.log_level);
        yunguand_config_free(&cfg);
        return 2;
    }
    log_set_level((enum log_level) lvl);
    if (!cfg.admin_token_file) {
        _cleanup_free_ char *copy = xstrdup(cfg.database);
        cfg.admin_token_file = xasprintf("%s/admin.token", dirname(copy));
    }

    /* Signals are taken by sigwait() in this thread; block them before any
     * thread starts so that every thread inherits the mask. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);

    int status = 1;
    struct store *store = NULL;
    struct api_server *api = NULL;
    struct readiness_sweeper *sweeper = NULL;
    struct playbook_sweeper *playbook_sweeper = NULL;
    struct vms_engine *engine = NULL;
    char *err = NULL;
    if (store_open(cfg.database, &store, &err) < 0) {
        log_err(LOG_DOMAIN, "%s", err);
        goto out;
    }
    log_info(LOG_DOMAIN, "store '%s' at schema version %d", cfg.database, store_schema_version(store));
    if (ensure_admin_token(store, cfg.admin_token_file) < 0)
        goto out;
    /* Hypervisors: a worker per registered host; VMs found mid-journal
     * resume (or roll back) as soon as their host answers. */
    if (vms_engine_start(store, &cfg.vms, &engine, &err) < 0) {
        log_err(LOG_DOMAIN, "%s", err);
        goto out;
    }

    struct api_config api_cfg = {
        .listen_address = cfg.listen_address,
        .port = cfg.port,
        .threads = cfg.http_threads,
        .max_connections = 1024,
        .max_body_bytes = cfg.max_body_bytes,
        .playbook_dir = cfg.playbook_dir,
        .tls_cert_pem = tls_cert_pem,
        .tls_key_pem = tls_key_pem,
    };
    playbook_run_configure(cfg.playbook_batch_size, cfg.playbook_host_timeout_seconds);
    if (api_start(&api_cfg, store, &api, &err) < 0) {
        log_err(LOG_DOMAIN, "%s", err);
        goto out;
    }
    /* The first part of this line is parsed by scripts: keep "ADDR:PORT". */
    log_info(LOG_DOMAIN, "serving the API on %s%s%s:%u (%s)", strchr(cfg.listen_address, ':') ? "[" : "",
             cfg.listen_address, strchr(cfg.listen_address, ':') ? "]" : "",
             (unsigned) api_bound_port(api), tls_cert_pem ? "HTTPS" : "HTTP");
    readiness_set_heartbeat(cfg.heartbeat_seconds);
    sweeper = readiness_sweeper_start(store);
    /* Playbook hosts silent past their deadline become 'unknown'; runs
     * stored before a restart carry on from the store. */
    playbook_sweeper = playbook_sweeper_start(store);
    notify_ready();

    for (;;) {
        int sig;
        if (sigwait(&stop_signals, &sig) != 0)
            continue;
        if (sig == SIGHUP) {
            log_info(LOG_DOMAIN, "SIGHUP: nothing to reload yet; restart to change the configuration");
            continue;
        }
        log_info(LOG_DOMAIN, "%s: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    status = 0;
out:
    /* Finish the writes already accepted (their connections are resumed
     * and answered), then stop serving, then close the store. */
    readiness_sweeper_stop(sweeper);
    playbook_sweeper_stop(playbook_sweeper);
    vms_engine_stop(engine);
    if (store)
        store_shutdown(store);
    api_stop(api);
    store_close(store);
    free(err);
    yunguand_config_free(&cfg);
    return status;
}
