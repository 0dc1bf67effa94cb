#!/usr/bin/env python3
"""bench/readiness-fill.py: fill a yunguand store (schema already made by
yunguand) with hosts, segments and their readiness, directly in SQLite.

    readiness-fill.py --db DB --hosts N [--segments-per-host K]
                      [--hosts-per-segment H] [--tokens FILE] [--state]

Host i (0-based, named hv-000123) carries the K segments of its group
(i // H): seg-<g*K> .. seg-<g*K+K-1>, each on bridge br<k>, so there are
N*K/H segments with H hosts each.  Addresses: IPv6 from 2001:db8::/32 (a
/64 per segment), IPv4 from 10.0.0.0/8 (a /25 per segment; bench data,
never applied to an interface).

--tokens FILE   give every host an agent token (tokens.secret_sha256 =
                sha256 hex of the secret, role 'agent', host_id) and write
                "INDEX SECRET" lines to FILE for bench/report.lua.  Each
                host's results are the ones report.lua sends for it (all
                passing, byte for byte), reported just now, and every
                segment is dual-stack-ready: the steady state in which a
                heartbeat changes nothing; hosts.results_sha256 is the
                fingerprint report.lua sends with those results.  With --cold, no results at all
                (every host's first report is new to the controller).
--state         realistic derived state instead: each host's last results
                (8 checks per segment as yunguan-agent writes them: ~70 %
                pass, a warning now and then, the rest failing for one of
                the common reasons), fresh report times (2 % stale), and
                each segment's state, hosts ready/total, top blocking
                reason, regressed flag and a short history, computed the way
                controller/readiness.c does; 10 % of the segments have no
                IPv6 prefix (v4-only); 30 departments; some waivers.
"""
import argparse
import hashlib
import json
import random
import sqlite3
import sys
import time

STATES = ("v4-only", "v6-planned", "dual-stack-partial", "dual-stack-ready")
DEPARTMENTS = ["health", "police", "education", "civil-affairs", "tax", "statistics", "transport",
               "water", "environment", "housing", "finance", "labour", "justice", "culture",
               "sports", "tourism", "agriculture", "forestry", "commerce", "audit", "archives",
               "veterans", "ethnic-affairs", "emergency", "market-supervision", "medical-insurance",
               "natural-resources", "ecology", "planning", "big-data"]
FAIL_REASONS = [  # (weight, check, reason)
    (40, "ipv6-default-route", "NO_IPV6_DEFAULT_ROUTE"),
    (25, "ipv6-global-address", "NO_GLOBAL_IPV6"),
    (12, "gateway-neighbour", "GATEWAY_NEIGH_FAILED"),
    (8, "ipv6-global-address", "IPV6_DAD_FAILED"),
    (6, "ipv6-enabled", "MTU_TOO_SMALL"),
    (5, "accept-ra", "RA_IGNORED_FORWARDING"),
    (4, "ipv6-global-address", "IPV6_TENTATIVE"),
]


def seg_net(s):
    """IPv4 /25 and IPv6 /64 of segment s."""
    a, b = divmod(s, 512)
    return (f"10.{a % 256}.{b // 2}.{(b % 2) * 128}", f"2001:db8:{s // 65536:x}:{s % 65536:x}")


def checks_for(ifname, v4net, v6net, host_no, fail=None, warn=False, has_v6=True):
    """The 8 checks yunguan-agent reports for one segment, as the controller
    stores them (compact JSON, keys in the agent's order)."""
    v4 = v4net.rsplit(".", 1)
    v4addr = f"{v4[0]}.{int(v4[1]) + 10 + host_no}"
    gw4 = f"{v4[0]}.{int(v4[1]) + 1}"
    v6addr = f"{v6net}::{10 + host_no:x}"
    gw6 = f"{v6net}::1"
    ll = f"fe80::{random.getrandbits(16):x}:{random.getrandbits(8):x}ff:fe{random.getrandbits(8):02x}:{random.getrandbits(16):x}"

    def c(check, message, severity="pass", reason="OK"):
        return {"check": check, "severity": severity, "reason": reason, "message": message}
    out = [
        c("ipv6-enabled", f"IPv6 is enabled on {ifname}, which is up with MTU 1500"),
        c("link-local", f"link-local address {ll}/64 on {ifname}"),
        c("ipv6-global-address", f"address {v6addr}/64 on {ifname} is usable and inside {v6net}::/64")
        if has_v6 else
        c("ipv6-global-address", f"{ifname} has no global IPv6 address", "fail", "NO_GLOBAL_IPV6"),
        c("ipv4-address", f"address {v4addr}/25 on {ifname} is inside {v4net}/25"),
        c("ipv6-default-route", f"IPv6 default route via {gw6} on {ifname}"),
        c("gateway-neighbour", f"gateway {gw6} on {ifname} is reachable as a router (neighbour state STALE)"),
        c("accept-ra", f"the segment does not use SLAAC (accept_ra = 1, forwarding = 0 on {ifname})"),
        c("ipv4-only-listeners", f"every TCP port listening on IPv4 on {ifname} also listens on IPv6"),
    ]
    if fail:
        check, reason = fail
        msg = {
            "NO_IPV6_DEFAULT_ROUTE": f"an IPv4 default route exists via {gw4} on {ifname} but there is no IPv6 default route on {ifname}",
            "NO_GLOBAL_IPV6": f"{ifname} has no global IPv6 address inside {v6net}::/64 (planned: {v6addr})",
            "GATEWAY_NEIGH_FAILED": f"gateway {gw6} on {ifname} does not answer neighbour solicitations (neighbour state FAILED)",
            "IPV6_DAD_FAILED": f"address {v6addr}/64 on {ifname} failed duplicate address detection (another host on the link uses it)",
            "MTU_TOO_SMALL": f"MTU 1200 on {ifname} is below the IPv6 minimum of 1280 (the kernel has turned IPv6 off on it)",
            "RA_IGNORED_FORWARDING": f"the segment uses SLAAC but {ifname} ignores router advertisements because it forwards (forwarding = 1, accept_ra = 1); set net.ipv6.conf.{ifname}.accept_ra = 2",
            "IPV6_TENTATIVE": f"address {v6addr}/64 on {ifname} is tentative (DAD in progress)",
        }[reason]
        for i, x in enumerate(out):
            if x["check"] == check:
                out[i] = c(check, msg, "fail", reason)
                break
    if warn:
        out[7] = c("ipv4-only-listeners", f"1 TCP listener reachable on {ifname} accepts IPv4 only, with no IPv6 listener on the same port: 0.0.0.0:8080", "warn", "IPV4_ONLY_LISTENER")
    return out


def report_lua_checks(i, k, H, K):
    """The checks bench/report.lua sends for host i on its k-th segment
    (all passing), in the controller's stored form."""
    g, n = divmod(i, H)
    s = g * K + k
    ifn = f"br{k}"
    a, b = divmod(s, 512)
    p3, p4 = f"10.{a % 256}.{b // 2}", (b % 2) * 128
    v6 = f"2001:db8:{s // 65536:x}:{s % 65536:x}"
    gw6 = v6 + "::1"

    def c(check, message):
        return {"check": check, "severity": "pass", "reason": "OK", "message": message}
    return [
        c("ipv6-enabled", f"IPv6 is enabled on {ifn}, which is up with MTU 1500"),
        c("link-local", f"link-local address fe80::{i % 65536:x}:{k:x}ff:fe{n:02x}:{s % 65536:x}/64 on {ifn}"),
        c("ipv6-global-address", f"address {v6}::{10 + n:x}/64 on {ifn} is usable and inside {v6}::/64"),
        c("ipv4-address", f"address {p3}.{p4 + 10 + n}/25 on {ifn} is inside {p3}.{p4}/25"),
        c("ipv6-default-route", f"IPv6 default route via {gw6} on {ifn}"),
        c("gateway-neighbour", f"gateway {gw6} on {ifn} is reachable as a router (neighbour state STALE)"),
        c("accept-ra", f"the segment does not use SLAAC (accept_ra = 1, forwarding = 0 on {ifn})"),
        c("ipv4-only-listeners", f"every TCP port listening on IPv4 on {ifn} also listens on IPv6"),
    ]


def pick_reason(rng):
    r = rng.uniform(0, sum(w for w, _, _ in FAIL_REASONS))
    for w, check, reason in FAIL_REASONS:
        r -= w
        if r <= 0:
            return check, reason
    return FAIL_REASONS[0][1:]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--db", required=True)
    ap.add_argument("--hosts", type=int, required=True)
    ap.add_argument("--segments-per-host", type=int, default=4)
    ap.add_argument("--hosts-per-segment", type=int, default=25)
    ap.add_argument("--tokens")
    ap.add_argument("--state", action="store_true")
    ap.add_argument("--cold", action="store_true")
    ap.add_argument("--seed", type=int, default=5)
    a = ap.parse_args()
    rng = random.Random(a.seed)
    random.seed(a.seed)
    N, K, H = a.hosts, a.segments_per_host, a.hosts_per_segment
    groups = (N + H - 1) // H
    nseg = groups * K
    now = int(time.time())
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(now))
    t0 = time.time()

    db = sqlite3.connect(a.db, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    db.execute("BEGIN")
    if db.execute("SELECT count(*) FROM segments").fetchone()[0]:
        sys.exit("readiness-fill: the store already has segments")

    # Segments (state filled in below when --state).
    kinds = []
    for s in range(nseg):
        v4net, v6net = seg_net(s)
        r = rng.random()
        kind = "v4only" if r < 0.10 else "planned" if r < 0.20 else "good" if r < 0.60 else "partial"
        if not a.state:
            kind = "good"
        kinds.append(kind)
        has_v6 = kind != "v4only"
        target = f"20{26 + s % 3}-{(s % 12) + 1:02d}-28"
        db.execute(
            "INSERT INTO segments (id, name, vlan, ipv4_prefix, ipv4_gateway, ipv6_prefix, ipv6_gateway,"
            " interface, target_date, state, state_since, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (s + 1, f"seg-{s:05d}", (s % 4094) + 1, f"{v4net}/25", v4net.rsplit(".", 1)[0] + "." + str(int(v4net.rsplit(".", 1)[1]) + 1),
             f"{v6net}::/64" if has_v6 else None, f"{v6net}::1" if has_v6 else None,
             f"br{s % K}", target, "v4-only" if not has_v6 else "v6-planned", stamp, stamp, stamp))
        depts = {DEPARTMENTS[s % len(DEPARTMENTS)]}
        if s % 7 == 0:
            depts.add(DEPARTMENTS[(s // 7) % len(DEPARTMENTS)])
        for d in depts:
            db.execute("INSERT INTO segment_departments VALUES (?, ?)", (s + 1, d))

    # Hosts, tokens, host_segments.
    tok = open(a.tokens, "w") if a.tokens else None
    counts = {}   # segment -> [ready, total, {reason: n}, with_v6]
    for i in range(N):
        stale = a.state and rng.random() < 0.02
        last_epoch = (now - 400000 if stale else now - rng.randint(0, 9)) if a.state \
            else None if a.cold else now
        db.execute("INSERT INTO hosts (id, name, created_at, last_seq, last_report_at, last_report_epoch)"
                   " VALUES (?, ?, ?, ?, ?, ?)",
                   (i + 1, f"hv-{i:06d}", stamp, 0,
                    time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(last_epoch)) if last_epoch else None,
                    last_epoch))
        if tok:
            secret = f"yg_bench_agent_{i:06d}_{hashlib.sha256(str((a.seed, i)).encode()).hexdigest()[:16]}"
            db.execute("INSERT INTO tokens (secret_sha256, role, description, created_at, created_by, host_id)"
                       " VALUES (?, 'agent', ?, ?, 'bench', ?)",
                       (hashlib.sha256(secret.encode()).hexdigest(), f"agent of hv-{i:06d}", stamp, i + 1))
            tok.write(f"{i} {secret}\n")
        g, host_no = divmod(i, H)
        for k in range(K):
            s = g * K + k
            v4net, v6net = seg_net(s)
            ipv4 = v4net.rsplit(".", 1)[0] + "." + str(int(v4net.rsplit(".", 1)[1]) + 10 + host_no)
            ipv6 = f"{v6net}::{10 + host_no:x}" if kinds[s] != "v4only" else None
            status = checks = None
            if a.tokens and not a.cold and not a.state:
                status = "pass"
                checks = json.dumps(report_lua_checks(i, k, H, K), separators=(",", ":"), ensure_ascii=False)
            if a.state:
                kind = kinds[s]
                fail = None
                if kind in ("v4only", "planned"):
                    fail = ("ipv6-global-address", "NO_GLOBAL_IPV6") if kind == "planned" else None
                elif kind == "partial" and rng.random() < 0.3:
                    fail = pick_reason(rng)
                warn = rng.random() < 0.05
                cl = checks_for(f"br{k}", v4net, v6net, host_no, fail, warn, has_v6=kind not in ("v4only", "planned"))
                sev = [c["severity"] for c in cl]
                status = "fail" if "fail" in sev else "warn" if "warn" in sev else "pass"
                checks = json.dumps(cl, separators=(",", ":"), ensure_ascii=False)
                c = counts.setdefault(s, [0, 0, {}, 0])
                c[1] += 1
                first = next((x["reason"] for x in cl if x["severity"] == "fail"), None)
                usable = any(x["check"] == "ipv6-global-address" and x["severity"] != "fail" for x in cl)
                if stale:
                    first = "STALE_REPORT"
                elif status != "fail":
                    c[0] += 1
                if first:
                    c[2][first] = c[2].get(first, 0) + 1
                c[3] += usable
            db.execute("INSERT INTO host_segments (host_id, segment_id, ipv4_address, ipv6_address, status,"
                       " checks, changed_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (i + 1, s + 1, ipv4, ipv6, status, checks, stamp if status else None))
    if tok:
        tok.close()

    if a.tokens and not a.cold and not a.state:
        db.execute("UPDATE segments SET state = 'dual-stack-ready', hosts_ready = ?1, hosts_total = ?1"
                   " WHERE id IN (SELECT segment_id FROM host_segments GROUP BY segment_id HAVING count(*) = ?1)",
                   (H,))
        # The hash report.lua sends with these results (its fingerprint of
        # host i, all passing), as if each host's last full report carried
        # it: hash-only heartbeats match from the first one.  After the
        # host_segments rows, whose triggers forget it.
        db.execute("UPDATE hosts SET results_sha256 = printf('%056x%08x', 0, id - 1)")
    if a.state:
        hist = 0
        for s, (ready, total, reasons, with_v6) in counts.items():
            kind = kinds[s]
            if kind == "v4only":
                state = "v4-only"
            elif total and ready == total:
                state = "dual-stack-ready"
            elif with_v6:
                state = "dual-stack-partial"
            else:
                state = "v6-planned"
            reason = min(reasons.items(), key=lambda kv: (-kv[1], kv[0]))[0] if reasons else None
            regressed = state != "dual-stack-ready" and rng.random() < 0.05
            db.execute("UPDATE segments SET state = ?, regressed = ?, hosts_ready = ?, hosts_total = ?,"
                       " blocking_reason = ? WHERE id = ?", (state, regressed, ready, total, reason, s + 1))
            path = ["v6-planned", "dual-stack-partial", "dual-stack-ready"] if state == "dual-stack-ready" \
                else ["v6-planned", "dual-stack-partial"] if state == "dual-stack-partial" else [state]
            for j, st in enumerate(path):
                db.execute("INSERT INTO segment_history (segment_id, state, hosts_ready, hosts_total, at)"
                           " VALUES (?, ?, ?, ?, ?)", (s + 1, st, ready if j == len(path) - 1 else 0, total,
                                                        time.strftime("%Y-%m-%dT%H:%M:%S.000Z",
                                                                      time.gmtime(now - 86400 * (len(path) - j)))))
                hist += 1
        # A waiver on one host of every 50th segment.
        for s in range(0, nseg, 50):
            host = (s // K) * H + 1
            if host <= N:
                db.execute("INSERT INTO waivers (host_id, segment_id, reason, expires_epoch, created_by, created_at)"
                           " VALUES (?, ?, 'hardware replacement in the next window', ?, 'token:2', ?)",
                           (host, s + 1, now + 30 * 86400, stamp))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    by_state = {}
    if a.state or (a.tokens and not a.cold):
        db = sqlite3.connect(a.db)
        by_state = dict(db.execute("SELECT state, count(*) FROM segments GROUP BY state").fetchall())
        db.close()
    print(f"filled {N} hosts, {nseg} segments ({H} hosts each, {K} per host), {N * K} host results"
          f"{', tokens in ' + a.tokens if a.tokens else ''} in {time.time() - t0:.1f} s"
          + (": " + ", ".join(f"{by_state.get(s, 0)} {s}" for s in STATES) if by_state else ""))


if __name__ == "__main__":
    main()
