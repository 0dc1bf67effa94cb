/* bench-ingest: simulated yunguan-agents posting readiness reports
 * (POST /api/v1/agents/self/reports, doc/AGENT.md "Reports"), in C.
 *
 * The same traffic as bench/report.lua, without wrk's Lua: one thread,
 * epoll, N kept-alive connections, one report in flight per host.  Each
 * host has an agent token (bench/readiness-fill.py --tokens), carries 4
 * segments of 8 checks (the text report.lua sends, which readiness-fill.py
 * stores as every host's steady state), and reports with its own
 * increasing seq.  Its results are rendered once per state (as the
 * agent's checks_result_to_json() builds them) and hashed the way the
 * agent hashes them: report_results_sha256() of agents/report.c, SHA-256
 * of the compact JSON of segments[].  The start checks that a body made
 * here is byte for byte report_full_body()'s.
 *
 * With probability --change-percent a report flips the host's
 * ipv6-default-route check on its first segment (pass <-> fail): a full
 * report carrying the new hash.  The other reports are heartbeats: as
 * yunguan-agent does, hash-only ({"host","seq","results_sha256"}) when the
 * controller answered the host's last full report with that hash, full
 * otherwise (and always with --every-report-full).
 *
 * Every answer is checked: 200, "applied": true with "last_seq" = the
 * seq sent, no resync, and "results_sha256" = the hash sent.  Anything
 * else is counted and the exit status is 1.
 *
 * Before the measured run, unless --no-warmup, each host sends one full
 * report (not measured), so that the controller holds every host's real
 * hash.  --once: the measured run is one report per host (with
 * --no-warmup on a store without results: the cold case).
 *
 * Prints the command, then one line (the keys of report.lua's, and more):
 *   REPORTS requests= rps= p50_ms= p90_ms= p99_ms= p999_ms= max_ms= applied=
 *     not_applied= resync= changed= full= heartbeats= non_2xx= socket_errors=
 *     wrong= client_cpu_us= server_cpu_us= seconds=
 * client_cpu_us is this program's CPU (getrusage) per report; server_cpu_us
 * yunguand's (utime + stime from /proc/PID/stat, --pid), both over the
 * measured run including its drain.
 *
 *   bench/bench-ingest --url http://127.0.0.1:8470 --tokens tokens --pid PID \
 *       [-c 32] [-d 12] [--change-percent 10] [--every-report-full] [--once]
 *       [--no-warmup] [--segments-per-host 4] [--hosts-per-segment 25] */
#include <config.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "report.h"
#include "util.h"

#define OUT_MAX (64 * 1024)
#define IN_MAX (16 * 1024)
#define SHA_HEX 65

struct host {
    int index;
    char name[16];              /* hv-000123 */
    char *auth;                 /* "Authorization: Bearer …\r\n" */
    char *segments[2];          /* compact JSON of segments[]: all passing, one failing */
    size_t segments_len[2];
    char sha[2][SHA_HEX];
    uint64_t seq;
    int bad;                    /* which of the two states the host is in */
    char acked[SHA_HEX];        /* the hash the controller stored, "" none */
    bool busy;
    bool done_once;             /* answered in this run (for --once) */
};

struct conn {
    int fd;
    struct host *h;             /* in flight, or NULL */
    bool full;
    uint64_t sent_usec;
    char *out;
    size_t out_len, out_off;
    char in[IN_MAX];
    size_t in_len;
};

struct stats {
    uint64_t requests, applied, not_applied, resync, changed, full, heartbeats, non_2xx,
             socket_errors, wrong;
    uint32_t *lat_usec;
    size_t n_lat, cap_lat;
};

static struct host *hosts;
static size_t n_hosts;
static struct conn *conns;
static int n_conns = 32;
static int epfd;
static struct addrinfo *server;
static char host_header[300];
static double change_fraction = 0.10;
static bool every_full;
static struct stats st;
static size_t cursor;          /* next host to report */
static size_t in_flight;
static bool issuing;
static bool once;
static size_t answered_once;
static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;
static int wrong_shown;

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("bench-ingest: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static double rand01(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double) (rng_state >> 11) / (double) (1ULL << 53);
}

/* ---- each host's results, as yunguan-agent builds and hashes them ---- */

static json_t *check(const char *name, const char *severity, const char *reason, const char *message)
{
    return json_pack("{s:s, s:s, s:s, s:s}", "check", name, "severity", severity, "reason", reason,
                     "message", message);
}

/* Host I's evaluation of its K-th segment: report.lua's segment(), the
 * text bench/readiness-fill.py stores as the steady state. */
static json_t *segment_json(int i, int k, int per_host, int per_segment, bool fail)
{
    int g = i / per_segment, n = i % per_segment, s = g * per_host + k;
    int a = s / 512, b = s % 512;
    char ifn[16], p3[32], v6[48], gw6[64], m[256];
    int p4 = (b % 2) * 128;
    snprintf(ifn, sizeof ifn, "br%d", k);
    snprintf(p3, sizeof p3, "10.%d.%d", a % 256, b / 2);
    snprintf(v6, sizeof v6, "2001:db8:%x:%x", s / 65536, s % 65536);
    snprintf(gw6, sizeof gw6, "%s::1", v6);
    json_t *checks = json_array();
    snprintf(m, sizeof m, "IPv6 is enabled on %s, which is up with MTU 1500", ifn);
    json_array_append_new(checks, check("ipv6-enabled", "pass", "OK", m));
    snprintf(m, sizeof m, "link-local address fe80::%x:%xff:fe%02x:%x/64 on %s", i % 65536, k, n,
             s % 65536, ifn);
    json_array_append_new(checks, check("link-local", "pass", "OK", m));
    snprintf(m, sizeof m, "address %s::%x/64 on %s is usable and inside %s::/64", v6, 10 + n, ifn, v6);
    json_array_append_new(checks, check("ipv6-global-address", "pass", "OK", m));
    snprintf(m, sizeof m, "address %s.%d/25 on %s is inside %s.%d/25", p3, p4 + 10 + n, ifn, p3, p4);
    json_array_append_new(checks, check("ipv4-address", "pass", "OK", m));
    if (fail) {
        snprintf(m, sizeof m, "an IPv4 default route exists via %s.%d on %s but there is no IPv6 "
                 "default route on %s", p3, p4 + 1, ifn, ifn);
        json_array_append_new(checks, check("ipv6-default-route", "fail", "NO_IPV6_DEFAULT_ROUTE", m));
    } else {
        snprintf(m, sizeof m, "IPv6 default route via %s on %s", gw6, ifn);
        json_array_append_new(checks, check("ipv6-default-route", "pass", "OK", m));
    }
    snprintf(m, sizeof m, "gateway %s on %s is reachable as a router (neighbour state STALE)", gw6, ifn);
    json_array_append_new(checks, check("gateway-neighbour", "pass", "OK", m));
    snprintf(m, sizeof m, "the segment does not use SLAAC (accept_ra = 1, forwarding = 0 on %s)", ifn);
    json_array_append_new(checks, check("accept-ra", "pass", "OK", m));
    snprintf(m, sizeof m, "every TCP port listening on IPv4 on %s also listens on IPv6", ifn);
    json_array_append_new(checks, check("ipv4-only-listeners", "pass", "OK", m));
    char seg_name[32];
    snprintf(seg_name, sizeof seg_name, "seg-%05d", s);
    /* Key order as agents/checks.c's checks_result_to_json(). */
    return json_pack("{s:s, s:s, s:s, s:o}", "name", seg_name, "interface", ifn,
                     "status", fail ? "fail" : "pass", "checks", checks);
}

/* The body of a full report; the agent's is report_full_body(): host,
 * seq, generated_at, segments, results_sha256 (compact). */
static size_t full_body(char *out, size_t cap, const struct host *h, int state, uint64_t seq,
                        const char *generated_at)
{
    int n = snprintf(out, cap, "{\"host\":\"%s\",\"seq\":%llu,\"generated_at\":\"%s\",\"segments\":",
                     h->name, (unsigned long long) seq, generated_at);
    size_t len = (size_t) n;
    if (len + h->segments_len[state] + 100 > cap)
        die("a report of %s does not fit in %d bytes", h->name, (int) cap);
    memcpy(out + len, h->segments[state], h->segments_len[state]);
    len += h->segments_len[state];
    len += (size_t) snprintf(out + len, cap - len, ",\"results_sha256\":\"%s\"}", h->sha[state]);
    return len;
}

static size_t heartbeat_body(char *out, size_t cap, const struct host *h, uint64_t seq)
{
    return (size_t) snprintf(out, cap, "{\"host\":\"%s\",\"seq\":%llu,\"results_sha256\":\"%s\"}",
                             h->name, (unsigned long long) seq, h->acked);
}

static void host_render(struct host *h, int per_host, int per_segment)
{
    for (int state = 0; state < 2; state++) {
        json_t *segs = json_array();
        for (int k = 0; k < per_host; k++)
            json_array_append_new(segs, segment_json(h->index, k, per_host, per_segment,
                                                     state == 1 && k == 0));
        h->segments[state] = json_dumps(segs, JSON_COMPACT);
        h->segments_len[state] = strlen(h->segments[state]);
        report_results_sha256(segs, h->sha[state]);
        /* The first host: what this program sends must be what the agent sends. */
        if (h->index == hosts[0].index) {
            char *agent = report_full_body(h->name, 42, "2026-11-26T00:00:00.000Z", segs, h->sha[state]);
            char *mine = xmalloc(OUT_MAX);
            size_t n = full_body(mine, OUT_MAX, h, state, 42, "2026-11-26T00:00:00.000Z");
            if (strlen(agent) != n || memcmp(agent, mine, n) != 0)
                die("the full report built here differs from agents/report.c's:\n%s\n%.*s",
                    agent, (int) n, mine);
            free(agent);
            agent = report_heartbeat_body(h->name, 43, h->sha[state]);
            memcpy(h->acked, h->sha[state], SHA_HEX);
            n = heartbeat_body(mine, OUT_MAX, h, 43);
            if (strlen(agent) != n || memcmp(agent, mine, n) != 0)
                die("the heartbeat built here differs from agents/report.c's:\n%s\n%.*s",
                    agent, (int) n, mine);
            h->acked[0] = '\0';
            free(agent);
            free(mine);
        }
        json_decref(segs);
    }
}

static void load_tokens(const char *path, int per_host, int per_segment, uint64_t seq_base)
{
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot read the tokens file %s: %s", path, strerror(errno));
    char line[512];
    size_t cap = 0;
    while (fgets(line, sizeof line, f)) {
        int index;
        char secret[400];
        if (sscanf(line, "%d %399s", &index, secret) != 2)
            continue;
        if (n_hosts == cap) {
            cap = cap ? 2 * cap : 1024;
            hosts = xrealloc(hosts, cap * sizeof *hosts);
        }
        struct host *h = &hosts[n_hosts++];
        *h = (struct host) { .index = index, .seq = seq_base };
        snprintf(h->name, sizeof h->name, "hv-%06d", index);
        h->auth = xasprintf("Authorization: Bearer %s\r\n", secret);
    }
    fclose(f);
    if (n_hosts == 0)
        die("no 'INDEX SECRET' lines in %s", path);
    for (size_t i = 0; i < n_hosts; i++)
        host_render(&hosts[i], per_host, per_segment);
}

/* ---- HTTP ---- */

static void conn_open(struct conn *c)
{
    c->fd = socket(server->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, server->ai_addr, server->ai_addrlen) < 0)
        die("cannot connect: %s", strerror(errno));
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
        die("epoll_ctl: %s", strerror(errno));
    c->in_len = 0;
}

static void conn_reopen(struct conn *c)
{
    close(c->fd);
    conn_open(c);
}

static char generated_at[32];
static time_t generated_at_sec;

/* The next host with no report in flight, or NULL. */
static struct host *next_host(void)
{
    for (size_t tries = 0; tries < n_hosts; tries++) {
        if (once && cursor >= n_hosts)
            return NULL;
        struct host *h = &hosts[cursor % n_hosts];
        cursor = once ? cursor + 1 : (cursor + 1) % n_hosts;
        if (!h->busy)
            return h;
    }
    return NULL;
}

static void conn_send(struct conn *c);

static void conn_issue(struct conn *c)
{
    struct host *h = issuing ? next_host() : NULL;
    c->h = h;
    if (!h)
        return;
    h->busy = true;
    h->seq++;
    if (change_fraction > 0 && rand01() < change_fraction) {
        h->bad ^= 1;
        st.changed++;
    }
    c->full = every_full || !streq(h->acked, h->sha[h->bad]);
    char body[OUT_MAX - 1024];
    size_t body_len;
    if (c->full) {
        time_t now = time(NULL);
        if (now != generated_at_sec) {
            struct tm tm;
            gmtime_r(&now, &tm);
            strftime(generated_at, sizeof generated_at, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
            generated_at_sec = now;
        }
        body_len = full_body(body, sizeof body, h, h->bad, h->seq, generated_at);
        st.full++;
    } else {
        body_len = heartbeat_body(body, sizeof body, h, h->seq);
        st.heartbeats++;
    }
    int n = snprintf(c->out, OUT_MAX,
                     "POST /api/v1/agents/self/reports HTTP/1.1\r\nHost: %s\r\n%s"
                     "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                     host_header, h->auth, body_len);
    memcpy(c->out + n, body, body_len);
    c->out_len = (size_t) n + body_len;
    c->out_off = 0;
    c->in_len = 0;
    c->sent_usec = monotonic_usec();
    in_flight++;
    conn_send(c);
}

static void conn_send(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t w = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (w < 0 && errno == EAGAIN) {
            struct epoll_event ev = { .events = EPOLLIN | EPOLLOUT, .data.ptr = c };
            epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
            return;
        }
        if (w < 0)
            die("send: %s", strerror(errno));
        c->out_off += (size_t) w;
    }
}

static void wrong_answer(const struct conn *c, const char *why, const char *body)
{
    st.wrong++;
    if (wrong_shown++ < 5)
        fprintf(stderr, "bench-ingest: %s (seq %llu): %s: %s\n", c->h->name,
                (unsigned long long) c->h->seq, why, body);
}

/* "key": value in the controller's answer (pretty-printed JSON). */
static const char *answer_value(const char *body, const char *key)
{
    const char *p = strstr(body, key);
    if (!p)
        return NULL;
    p += strlen(key);
    while (*p == ' ' || *p == ':')
        p++;
    return p;
}

static void handle_answer(struct conn *c, int status, const char *body)
{
    struct host *h = c->h;
    uint64_t now = monotonic_usec();
    if (st.n_lat == st.cap_lat) {
        st.cap_lat = st.cap_lat ? 2 * st.cap_lat : 65536;
        st.lat_usec = xrealloc(st.lat_usec, st.cap_lat * sizeof *st.lat_usec);
    }
    st.lat_usec[st.n_lat++] = (uint32_t) (now - c->sent_usec);
    st.requests++;
    in_flight--;
    h->busy = false;
    if (once && !h->done_once) {
        h->done_once = true;
        answered_once++;
    }
    if (status != 200) {
        st.non_2xx++;
        wrong_answer(c, "not 200", body);
        h->acked[0] = '\0';
        return;
    }
    const char *applied = answer_value(body, "\"applied\"");
    const char *resync = answer_value(body, "\"resync\"");
    const char *last_seq = answer_value(body, "\"last_seq\"");
    const char *sha = answer_value(body, "\"results_sha256\"");
    bool is_applied = applied && !strncmp(applied, "true", 4);
    bool is_resync = resync && !strncmp(resync, "true", 4);
    is_applied ? st.applied++ : st.not_applied++;
    if (is_resync)
        st.resync++;
    unsigned long long ls = last_seq ? strtoull(last_seq, NULL, 10) : 0;
    const char *sent = c->full ? h->sha[h->bad] : h->acked;
    bool sha_ok = sha && sha[0] == '"' && !strncmp(sha + 1, sent, 64) && sha[65] == '"';
    if (!is_applied || is_resync || ls != h->seq || !sha_ok) {
        wrong_answer(c, "not applied with this seq and hash", body);
        if (!is_applied && ls > h->seq)
            h->seq = ls;         /* the store knows a later seq: continue above it */
        h->acked[0] = '\0';      /* the next report is full */
        return;
    }
    if (c->full)
        memcpy(h->acked, sent, SHA_HEX);   /* heartbeats may carry only this hash now */
}

/* A whole answer in c->in?  Then handle it and return true. */
static bool conn_parse(struct conn *c)
{
    c->in[c->in_len] = '\0';
    char *end = strstr(c->in, "\r\n\r\n");
    if (!end)
        return false;
    int status = 0;
    if (sscanf(c->in, "HTTP/1.%*d %d", &status) != 1)
        die("not an HTTP answer: %.80s", c->in);
    size_t length = 0;
    for (char *p = c->in; p && p < end; p = strstr(p, "\r\n")) {
        p += (*p == '\r') ? 2 : 0;
        if (!strncasecmp(p, "Content-Length:", 15))
            length = strtoul(p + 15, NULL, 10);
    }
    size_t head = (size_t) (end + 4 - c->in);
    if (head + length >= IN_MAX)
        die("an answer larger than %d bytes", IN_MAX);
    if (c->in_len < head + length)
        return false;
    char saved = c->in[head + length];
    c->in[head + length] = '\0';
    handle_answer(c, status, c->in + head);
    c->in[head + length] = saved;
    c->in_len = 0;
    c->h = NULL;
    return true;
}

static void conn_event(struct conn *c, uint32_t events)
{
    if (events & EPOLLOUT) {
        conn_send(c);
        if (c->out_off == c->out_len) {
            struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
            epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        }
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
        return;
    for (;;) {
        ssize_t r = recv(c->fd, c->in + c->in_len, IN_MAX - 1 - c->in_len, 0);
        if (r < 0 && errno == EAGAIN)
            return;
        if (r <= 0) {
            /* The server closed the connection: the report in flight is
             * lost to us (a socket error), the host sends its next one. */
            st.socket_errors++;
            if (c->h) {
                c->h->busy = false;
                c->h->acked[0] = '\0';
                in_flight--;
                c->h = NULL;
            }
            conn_reopen(c);
            conn_issue(c);
            return;
        }
        c->in_len += (size_t) r;
        if (c->h && conn_parse(c)) {
            conn_issue(c);
            return;
        }
    }
}

/* One run: until SECONDS pass (or, --once, every host answered once),
 * then every answer still owed is awaited. */
static void run(double seconds)
{
    issuing = true;
    cursor = 0;
    answered_once = 0;
    for (size_t i = 0; i < n_hosts; i++)
        hosts[i].done_once = false;
    uint64_t deadline = monotonic_usec() + (uint64_t) (seconds * 1e6);
    for (int i = 0; i < n_conns; i++)
        conn_issue(&conns[i]);
    struct epoll_event evs[64];
    while (in_flight > 0) {
        if (issuing && !once && monotonic_usec() >= deadline)
            issuing = false;
        int n = epoll_wait(epfd, evs, 64, 1000);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++)
            conn_event(evs[i].data.ptr, evs[i].events);
    }
    issuing = false;
}

static uint64_t self_cpu_usec(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (uint64_t) ru.ru_utime.tv_sec * 1000000 + (uint64_t) ru.ru_utime.tv_usec +
           (uint64_t) ru.ru_stime.tv_sec * 1000000 + (uint64_t) ru.ru_stime.tv_usec;
}

/* utime + stime of PID in microseconds, 0 when unknown. */
static uint64_t pid_cpu_usec(long pid)
{
    if (pid <= 0)
        return 0;
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')');   /* the command may hold spaces */
    unsigned long long utime, stime;
    if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return 0;
    return (utime + stime) * 1000000ULL / (unsigned long long) sysconf(_SC_CLK_TCK);
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;
    return x < y ? -1 : x > y;
}

static double percentile_ms(double p)
{
    if (st.n_lat == 0)
        return 0;
    size_t i = (size_t) (p / 100.0 * (double) (st.n_lat - 1) + 0.5);
    return st.lat_usec[i] / 1000.0;
}

static void usage(FILE *f)
{
    fputs("usage: bench-ingest --url http://ADDRESS:PORT --tokens FILE [--pid YUNGUAND_PID]\n"
          "         [-c CONNECTIONS (32)] [-d SECONDS (12)] [--change-percent P (10)]\n"
          "         [--every-report-full] [--once] [--no-warmup] [--seq-base N]\n"
          "         [--segments-per-host K (4)] [--hosts-per-segment H (25)]\n"
          "Simulated agents posting readiness reports; see the head of bench/bench-ingest.c.\n", f);
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "url", required_argument, NULL, 'u' },
        { "tokens", required_argument, NULL, 't' },
        { "pid", required_argument, NULL, 'p' },
        { "connections", required_argument, NULL, 'c' },
        { "duration", required_argument, NULL, 'd' },
        { "change-percent", required_argument, NULL, 'x' },
        { "every-report-full", no_argument, NULL, 'F' },
        { "once", no_argument, NULL, 'o' },
        { "no-warmup", no_argument, NULL, 'W' },
        { "seq-base", required_argument, NULL, 's' },
        { "segments-per-host", required_argument, NULL, 'K' },
        { "hosts-per-segment", required_argument, NULL, 'H' },
        { "help", no_argument, NULL, 'h' },
        { 0 },
    };
    const char *url = NULL, *tokens = NULL;
    long pid = 0;
    double seconds = 12;
    bool warmup = true;
    int per_host = 4, per_segment = 25;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* As report.lua: a later run on the same store continues above an earlier one. */
    uint64_t seq_base = (uint64_t) ts.tv_sec * 1000 + (uint64_t) ts.tv_nsec / 1000000;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:d:h", options, NULL)) != -1) {
        switch (opt) {
        case 'u': url = optarg; break;
        case 't': tokens = optarg; break;
        case 'p': pid = strtol(optarg, NULL, 10); break;
        case 'c': n_conns = atoi(optarg); break;
        case 'd': seconds = atof(optarg); break;
        case 'x': change_fraction = atof(optarg) / 100.0; break;
        case 'F': every_full = true; break;
        case 'o': once = true; break;
        case 'W': warmup = false; break;
        case 's': seq_base = strtoull(optarg, NULL, 10); break;
        case 'K': per_host = atoi(optarg); break;
        case 'H': per_segment = atoi(optarg); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!url || !tokens || n_conns < 1 || seconds <= 0 || per_host < 1 || per_segment < 1 ||
        change_fraction < 0 || change_fraction > 1) {
        usage(stderr);
        return 2;
    }
    printf("$");
    for (int i = 0; i < argc; i++)
        printf(" %s", argv[i]);
    printf("\n");
    fflush(stdout);

    /* http://ADDRESS:PORT (an IPv6 address in brackets). */
    if (strncmp(url, "http://", 7) != 0)
        die("--url must be http://ADDRESS:PORT");
    snprintf(host_header, sizeof host_header, "%s", url + 7);
    host_header[strcspn(host_header, "/")] = '\0';
    char addr[256], *colon = strrchr(host_header, ':');
    if (!colon)
        die("--url needs a port");
    snprintf(addr, sizeof addr, "%.*s", (int) (colon - host_header), host_header);
    if (addr[0] == '[') {
        memmove(addr, addr + 1, strlen(addr));
        addr[strcspn(addr, "]")] = '\0';
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST };
    int gai = getaddrinfo(addr, colon + 1, &hints, &server);
    if (gai)
        die("%s: %s", url, gai_strerror(gai));

    uint64_t t0 = monotonic_usec();
    load_tokens(tokens, per_host, per_segment, seq_base);
    fprintf(stderr, "bench-ingest: %zu hosts rendered and hashed in %.1f s\n", n_hosts,
            (double) (monotonic_usec() - t0) / 1e6);
    rng_state ^= (uint64_t) ts.tv_nsec;

    epfd = epoll_create1(EPOLL_CLOEXEC);
    conns = xcalloc((size_t) n_conns, sizeof *conns);
    for (int i = 0; i < n_conns; i++) {
        conns[i].out = xmalloc(OUT_MAX);
        conn_open(&conns[i]);
    }

    if (warmup) {
        /* One full report per host, unchanged and not measured: the
         * controller then holds every host's real hash. */
        double saved = change_fraction;
        bool saved_once = once;
        change_fraction = 0;
        once = true;
        run(0);
        change_fraction = saved;
        once = saved_once;
        if (st.wrong || st.non_2xx || st.socket_errors)
            die("the warm-up pass had %llu wrong answers, %llu non-200, %llu socket errors",
                (unsigned long long) st.wrong, (unsigned long long) st.non_2xx,
                (unsigned long long) st.socket_errors);
        free(st.lat_usec);
        st = (struct stats) { 0 };
    }

    uint64_t cpu0 = self_cpu_usec(), server0 = pid_cpu_usec(pid), w0 = monotonic_usec();
    run(seconds);
    uint64_t wall = monotonic_usec() - w0;
    uint64_t cpu = self_cpu_usec() - cpu0;
    uint64_t server_cpu = pid > 0 ? pid_cpu_usec(pid) - server0 : 0;

    qsort(st.lat_usec, st.n_lat, sizeof *st.lat_usec, cmp_u32);
    double secs = (double) wall / 1e6;
    double n = st.requests ? (double) st.requests : 1;
    printf("REPORTS requests=%llu rps=%.0f p50_ms=%.2f p90_ms=%.2f p99_ms=%.2f p999_ms=%.2f max_ms=%.2f "
           "applied=%llu not_applied=%llu resync=%llu changed=%llu full=%llu heartbeats=%llu "
           "non_2xx=%llu socket_errors=%llu wrong=%llu client_cpu_us=%.1f server_cpu_us=%.1f "
           "seconds=%.2f\n",
           (unsigned long long) st.requests, (double) st.requests / secs, percentile_ms(50),
           percentile_ms(90), percentile_ms(99), percentile_ms(99.9),
           st.n_lat ? st.lat_usec[st.n_lat - 1] / 1000.0 : 0,
           (unsigned long long) st.applied, (unsigned long long) st.not_applied,
           (unsigned long long) st.resync, (unsigned long long) st.changed,
           (unsigned long long) st.full, (unsigned long long) st.heartbeats,
           (unsigned long long) st.non_2xx, (unsigned long long) st.socket_errors,
           (unsigned long long) st.wrong, (double) cpu / n, pid > 0 ? (double) server_cpu / n : 0,
           secs);
    for (int i = 0; i < n_conns; i++) {
        close(conns[i].fd);
        free(conns[i].out);
    }
    free(conns);
    for (size_t i = 0; i < n_hosts; i++) {
        free(hosts[i].auth);
        free(hosts[i].segments[0]);
        free(hosts[i].segments[1]);
    }
    free(hosts);
    free(st.lat_usec);
    freeaddrinfo(server);
    close(epfd);
    return st.wrong || st.non_2xx || st.socket_errors ? 1 : 0;
}
