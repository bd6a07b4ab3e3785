"""Where a process's CPU went, from `perf script` output of a `perf record --call-graph dwarf`.

Each sample is charged to the first frame, walking from the leaf towards the root, that
names a known area (log formatting, status/metrics, JSON, decoding, the policy, the
controller loop, gRPC/HTTP/2, the tokio scheduler); allocator and memcpy frames are
charged to whoever called them. A sample whose leaf frame is in the kernel counts as
"kernel" (syscalls, scheduling), since that is where its time is spent.

    perf script -i perf-opergroupd-1000.data --pid PID | python3 bench/profile/categorize.py
    perf script -i FILE --comm NAME | python3 bench/profile/categorize.py   # by thread name
"""

import collections
import re
import sys

# Order matters: the first pattern a frame matches names its area.
AREAS = [
    ("log formatting (tracing)", re.compile(r"tracing_subscriber|tracing_core|tracing::|core::fmt|alloc::fmt|<.* as core::fmt")),
    ("status / metrics", re.compile(r"opergroupd::status|prometheus_client")),
    ("JSON parsing (serde_json)", re.compile(r"serde_json")),
    ("decoding (gnmi path/value/notification)", re.compile(r"opergroupd::gnmi::(path|value|source::decode)")),
    ("policy", re.compile(r"opergroupd::policy")),
    ("state", re.compile(r"opergroupd::state")),
    ("controller loop", re.compile(r"opergroupd::controller")),
    ("gNMI source task", re.compile(r"opergroupd::gnmi::source")),
    ("gNMI Set / actuator", re.compile(r"opergroupd::(gnmi::set|actuate)")),
    ("protobuf (prost)", re.compile(r"prost::|gnmi_proto")),
    ("gRPC / HTTP/2 (tonic, hyper, h2, tower)", re.compile(r"tonic::|hyper::|h2::|tower::|hyper_util|http_body|hyper_timeout")),
    ("fabric-sim model / server", re.compile(r"fabric_sim::")),
    ("tokio (scheduler, timers, channels, I/O driver)", re.compile(r"tokio::")),
]
WRAPPER = re.compile(r"tracing::instrument::Instrumented<.*>::poll")
GENERIC = re.compile(r"malloc|free|memmove|memcpy|memset|realloc|_int_|unlink_chunk|alloc::|core::|std::|__rust|hashbrown")


def main():
    counts = collections.Counter()
    total = 0
    frames = []

    def flush():
        nonlocal total
        if not frames:
            return
        total += 1
        leaf_sym, leaf_dso = frames[0]
        if "kernel" in leaf_dso:
            counts["kernel (syscalls, scheduling)"] += 1
        else:
            for sym, _ in frames:
                # A span wrapped around a task is not log formatting: charge the task.
                if WRAPPER.search(sym):
                    continue
                hit = next((name for name, rx in AREAS if rx.search(sym)), None)
                if hit:
                    counts[hit] += 1
                    break
            else:
                counts["other / unresolved" if not GENERIC.search(leaf_sym) else "allocator, memcpy (caller unknown)"] += 1
        frames.clear()

    for line in sys.stdin:
        if not line.strip():
            flush()
            continue
        if line.startswith((" ", "\t")):
            m = re.match(r"\s+[0-9a-f]+\s+(.*?)\s+\((.*)\)\s*$", line)
            if m:
                frames.append((m.group(1), m.group(2)))
        else:
            flush()
    flush()
    print(f"{total} samples")
    for name, n in counts.most_common():
        print(f"{100 * n / max(total, 1):5.1f} %  {name}")


if __name__ == "__main__":
    main()
