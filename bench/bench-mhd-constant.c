/* bench-mhd-constant: the ceiling of the HTTP layer alone.
 *
 * libmicrohttpd with the same threading as controller/api.c (an internal
 * polling thread per pool member, epoll, suspend/resume allowed, a thread
 * pool of 2), answering every request — GET or POST, any path — with one
 * constant JSON document, after reading (and dropping) the request body
 * exactly as yunguand does.  Driving it with the same wrk script as the
 * submission benchmark gives the rate that yunguand could reach if YAML,
 * quota, SQLite and JSON cost nothing.
 *
 *   bench/bench-mhd-constant [--port N] [--threads N] [--reply-bytes N]
 *
 * Port 0 (the default) picks a free port.  Prints "port N" on stdout once
 * it serves, then runs until SIGINT or SIGTERM. */
#include <config.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <microhttpd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *reply;
static size_t reply_len;

struct call {
    size_t body_bytes;
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version,
                                  const char *upload_data, size_t *upload_data_size,
                                  void **con_cls)
{
    struct call *call = *con_cls;
    if (!call) {
        call = calloc(1, sizeof *call);
        if (!call)
            return MHD_NO;
        *con_cls = call;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        call->body_bytes += *upload_data_size;
        *upload_data_size = 0;
        return MHD_YES;
    }
    /* Same response construction as api.c's send_reply(). */
    struct MHD_Response *resp = MHD_create_response_from_buffer(reply_len, reply,
                                                                MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", "application/json");
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result r = MHD_queue_response(conn, strcmp(method, "POST") ? 200 : 201, resp);
    MHD_destroy_response(resp);
    return r;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    free(*con_cls);
    *con_cls = NULL;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: bench-mhd-constant [--port N] [--threads N] [--reply-bytes N]\n"
               "Serves a constant JSON answer with yunguand's libmicrohttpd threading\n"
               "(internal polling thread, epoll, thread pool) until SIGINT/SIGTERM.\n");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "port", required_argument, NULL, 'p' },
        { "threads", required_argument, NULL, 't' },
        { "reply-bytes", required_argument, NULL, 'r' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    unsigned port = 0, threads = 2;
    size_t reply_bytes = 700;   /* about yunguand's 201 answer to the bench request */
    int c;
    while ((c = getopt_long(argc, argv, "p:t:r:h", options, NULL)) != -1) {
        switch (c) {
        case 'p': port = (unsigned) strtoul(optarg, NULL, 10); break;
        case 't': threads = (unsigned) strtoul(optarg, NULL, 10); break;
        case 'r': reply_bytes = strtoul(optarg, NULL, 10); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (threads < 1 || port > 65535 || reply_bytes < 16) {
        usage(stderr);
        return 2;
    }

    /* {"ok": true, "pad": "xxxx…"}\n of the requested size. */
    reply = malloc(reply_bytes + 1);
    if (!reply)
        return 1;
    int head = snprintf(reply, reply_bytes + 1, "{\"ok\": true, \"pad\": \"");
    memset(reply + head, 'x', reply_bytes - (size_t) head - 3);
    memcpy(reply + reply_bytes - 3, "\"}\n", 3);
    reply[reply_bytes] = '\0';
    reply_len = reply_bytes;

    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port) };
    inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
    /* The flags and options of controller/api.c's api_start(). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                     MHD_USE_ERROR_LOG;
    struct MHD_Daemon *d = MHD_start_daemon(flags, (uint16_t) port, NULL, NULL, on_request, NULL,
                                            MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sin,
                                            MHD_OPTION_THREAD_POOL_SIZE, threads,
                                            MHD_OPTION_CONNECTION_LIMIT, (unsigned int) 1024,
                                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int) 60,
                                            MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) 32 * 1024,
                                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                                            MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "bench-mhd-constant: cannot listen on 127.0.0.1 port %u\n", port);
        return 1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    printf("port %u\n", info ? (unsigned) info->port : port);
    fflush(stdout);

    int sig;
    while (sigwait(&stop, &sig) != 0)
        ;
    MHD_stop_daemon(d);
    free(reply);
    return 0;
}
