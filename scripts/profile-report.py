#!/usr/bin/env python3
"""Turns the callgrind dumps and counter deltas that scripts/profile collected into its
Markdown report: per scenario, what one request costs in each process and in all three.

    profile-report.py MANIFEST

MANIFEST holds one JSON object per line and per scenario and process: "scenario",
"requests", "process", "callgrind" (a dump covering exactly the scenario's requests),
"metrics_before" and "metrics_after" (the process's Prometheus text around them) and, for the
two services with a database, "pg_transactions" (the delta of its pg_stat_database
commits + rollbacks).

Everything counted here is a call that callgrind saw, so it is exact for the measured
window, background work of that window included (spread over the requests).
"""

import json
import re
import sys
from collections import defaultdict

ALLOCATORS = {"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign"}
# libpq calls that send a query to the server and wait for its answer (diesel's pg backend
# uses PQexec, PQprepare and PQsendQueryPrepared/PQsendQueryParams + PQgetResult); libpq's own
# helpers call one another (PQexec -> PQsendQuery), so only calls from outside libpq count.
ROUND_TRIPS = {
    "PQexec", "PQexecParams", "PQexecPrepared", "PQprepare", "PQdescribePrepared",
    "PQdescribePortal", "PQsendQuery", "PQsendQueryParams", "PQsendQueryPrepared",
    "PQsendPrepare", "PQsendDescribePrepared", "PQsendDescribePortal",
}
CONNECTS = {"PQconnectdb", "PQconnectdbParams", "PQconnectStart", "PQconnectStartParams"}
LIBPQ = re.compile(r"^(PQ|pq)")
# aws-lc (behind jsonwebtoken's aws-lc-rs backend) verifies through EVP_DigestVerify, which
# reaches pkey_ed25519_verify_message through a function pointer (so never inlined), then
# ED25519_verify (exported with a version prefix: aws_lc_0_47_0_ED25519_verify). The
# outermost of them counts once per signature.
ED25519_VERIFY = re.compile(
    r"(^|_)(pkey_ed25519_verify_message|ED25519_verify|ED25519_verify_no_self_test)$"
)
# Every tokio::task::spawn_blocking (and block_in_place's hand-off) queues its task here: the
# one non-generic function of the path, so it is a real call whatever got inlined above it.
SPAWN_BLOCKING = "tokio::runtime::blocking::pool::Spawner::spawn_task"

# Frames that only carry the work below them (thread start, the runtimes' scheduler loops,
# the servers' dispatch layers, futures' combinators, closures' call shims): left out of the
# list of where the instructions go, which would otherwise start with a dozen of them at
# ~100 %. What stays is the first frame of each process that does a part of the request.
SCAFFOLDING = re.compile(
    r"^(\(below main\)|start_thread|clone3?|main|__libc_start|_start|0x[0-9a-f]+$"
    r"|<?(std|core|alloc)::(rt|sys|thread|panicking|panic|ops::function)[:<>]"
    r"|__rust_begin_short_backtrace|__rust_try"
    r"|<?tokio::(runtime|task|future|loom)::"
    r"|<?(actix_rt|actix_server|actix_service)::"
    r"|<(core|futures_util|futures_core|tower|tonic::transport|tonic::service|hyper|hyper_util"
    r"|axum::util|actix_http::h1::dispatcher|tracing)::\S* as core::future::future::Future>::poll"
    r")"
)


def parse(path):
    """Self cost, inclusive cost and calls received (by caller) per function name."""
    fn_names, self_cost, callee_cost = {}, defaultdict(int), defaultdict(int)
    calls = defaultdict(lambda: defaultdict(int))
    current = callee = None
    pending = None  # the callee whose inclusive cost the next cost line carries

    def name(value):
        # Name compression: "(id) name" defines an id, "(id)" refers to one.
        m = re.match(r"\((\d+)\)(?: (.*))?$", value)
        if not m:
            return value
        if m.group(2) is not None:
            fn_names[m.group(1)] = m.group(2)
        return fn_names[m.group(1)]

    with open(path, encoding="utf-8", errors="replace") as lines:
        for line in lines:
            head = line[:1]
            if head.isdigit() or head in "+-*":
                fields = line.split()
                cost = int(fields[1]) if len(fields) > 1 else 0
                if pending is not None:
                    # A function's calls to itself (or to another instance sharing its
                    # demangled name) are inside its own cost already.
                    if pending != current:
                        callee_cost[current] += cost
                    pending = None
                else:
                    self_cost[current] += cost
                continue
            key, sep, value = line.rstrip("\n").partition("=")
            if not sep:
                continue
            if key == "fn":
                current = name(value)
            elif key == "cfn":
                callee = name(value)
            elif key == "calls":
                calls[callee][current] += int(value.split()[0])
                pending = callee
    inclusive = {fn: self_cost[fn] + callee_cost[fn] for fn in set(self_cost) | set(callee_cost)}
    return {"total": sum(self_cost.values()), "inclusive": inclusive, "calls": calls}


def rpc_calls(before_path, after_path, side):
    """Calls made (side "client") or answered ("server") between two scrapes, by method."""

    def read(path):
        counts = defaultdict(float)
        family = f"rpc_{side}_call_duration_seconds_count"
        with open(path, encoding="utf-8") as text:
            for line in text:
                if line.startswith(family + "{"):
                    labels, value = line.rsplit(" ", 1)
                    label = dict(re.findall(r'(\w+)="([^"]*)"', labels))
                    counts[f"{label['rpc_service']}/{label['rpc_method']}"] += float(value)
        return counts

    before, after = read(before_path), read(after_path)
    return {method: after[method] - before[method] for method in after}


def calls_into(profile, matches, outside):
    """Calls to functions `matches` accepts, from callers `outside` accepts."""
    return sum(
        count
        for callee, callers in profile["calls"].items()
        if matches(callee)
        for caller, count in callers.items()
        if outside(caller)
    )


def measure(profile):
    return {
        "Ir": profile["total"],
        "allocations": calls_into(
            profile, ALLOCATORS.__contains__, lambda c: c not in ALLOCATORS
        ),
        "pg_round_trips": calls_into(
            profile, ROUND_TRIPS.__contains__, lambda c: not LIBPQ.match(c)
        ),
        "pg_connects": calls_into(profile, CONNECTS.__contains__, lambda c: not LIBPQ.match(c)),
        "signature_checks": calls_into(
            profile, ED25519_VERIFY.search, lambda c: not ED25519_VERIFY.search(c)
        ),
        "blocking_hops": calls_into(profile, SPAWN_BLOCKING.__eq__, lambda c: True),
    }


def top(profile, count):
    total = profile["total"] or 1
    ranked = sorted(profile["inclusive"].items(), key=lambda item: -item[1])
    # callgrind marks a function's recursive activations name'2, name'3…
    shown = [
        (fn, cost) for fn, cost in ranked if fn and not SCAFFOLDING.match(re.sub(r"'\d+$", "", fn))
    ]
    return [(fn, cost / total) for fn, cost in shown[:count]]


ROWS = [
    ("instructions (Ir)", "Ir", "{:,.0f}"),
    ("allocations (malloc + calloc + realloc)", "allocations", "{:,.1f}"),
    ("PostgreSQL round trips (libpq)", "pg_round_trips", "{:.2f}"),
    ("PostgreSQL transactions (pg_stat_database)", "pg_transactions", "{:.2f}"),
    ("EdDSA signature checks", "signature_checks", "{:.2f}"),
    ("gRPC calls made", "grpc_made", "{:.2f}"),
    ("gRPC calls answered", "grpc_answered", "{:.2f}"),
    ("blocking-pool hops (spawn_blocking)", "blocking_hops", "{:.2f}"),
]
PROCESSES = ["gateway", "auth-service", "books-service"]


def short(fn, width=90):
    return fn if len(fn) <= width else fn[: width - 1] + "…"


def main():
    top_count = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    scenarios, figures, tops, methods = [], {}, {}, defaultdict(dict)
    requests = {}
    with open(sys.argv[1], encoding="utf-8") as manifest:
        entries = [json.loads(line) for line in manifest if line.strip()]
    for entry in entries:
        scenario, process = entry["scenario"], entry["process"]
        if scenario not in scenarios:
            scenarios.append(scenario)
        cell = figures.setdefault((scenario, process), defaultdict(float))
        requests[scenario] = entry["requests"]
        profile = parse(entry["callgrind"])
        cell.update(measure(profile))
        tops[(scenario, process)] = top(profile, top_count)
        made = rpc_calls(entry["metrics_before"], entry["metrics_after"], "client")
        answered = rpc_calls(entry["metrics_before"], entry["metrics_after"], "server")
        cell["grpc_made"] = sum(made.values())
        cell["grpc_answered"] = sum(answered.values())
        methods[scenario][process] = made
        cell["pg_transactions"] = entry["pg_transactions"]

    print("| scenario | per request | " + " | ".join(PROCESSES) + " | total |")
    print("|---|---|" + "---:|" * (len(PROCESSES) + 1))
    for scenario in scenarios:
        n = requests[scenario]
        for label, key, fmt in ROWS:
            values = [figures.get((scenario, p), {}).get(key, 0) / n for p in PROCESSES]
            cells = [fmt.format(v) for v in values] + [fmt.format(sum(values))]
            print(f"| {scenario} | {label} | " + " | ".join(cells) + " |")
    print()
    for scenario in scenarios:
        n = requests[scenario]
        made = [
            f"{process} → {method} {calls / n:.2f}"
            for process in PROCESSES
            for method, calls in sorted(methods[scenario].get(process, {}).items())
            if calls
        ]
        print(f"gRPC calls per request, {scenario}: " + ("; ".join(made) or "none"))
    connects = [
        f"{scenario} {process} {figures[(scenario, process)]['pg_connects']:.0f}"
        for scenario in scenarios
        for process in PROCESSES
        if figures.get((scenario, process), {}).get("pg_connects")
    ]
    print("PostgreSQL connections opened in the windows: " + (", ".join(connects) or "none"))
    print()
    for scenario in scenarios:
        print(f"Top {top_count} functions by inclusive cost, {scenario} (share of the process's Ir):")
        print()
        print("| process | function | inclusive |")
        print("|---|---|---:|")
        for process in PROCESSES:
            for fn, share in tops.get((scenario, process), []):
                fn = short(fn).replace("|", "\\|")
                print(f"| {process} | `{fn}` | {share * 100:.1f} % |")
        print()


if __name__ == "__main__":
    main()
