"""The load generator: a separate process sending AdmissionReviews over HTTPS keep-alive connections.

Raw asyncio + ssl with a minimal HTTP/1.1 client (one request at a time per connection, as the
apiserver does), so that the generator costs less than the server it measures.

closed: every connection sends its next request as soon as the previous answer is in; the rate
        reached is the saturation throughput.
open:   requests are scheduled at a fixed rate whatever the server does; latency is measured from the
        scheduled send time, so a stall shows as the queue it causes (no coordinated omission).

Prints one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import ssl
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stats:
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    statuses: dict[int, int] = field(default_factory=dict)


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def open(cls, host: str, port: int, ctx: ssl.SSLContext) -> Connection:
        reader, writer = await asyncio.open_connection(host, port, ssl=ctx, server_hostname=host)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> int:
        """Send one request, read the whole answer; returns the status code."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n")[1:]:
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
                break
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


def http_request(host: str, port: int, path: str, body: bytes) -> bytes:
    return (f"POST {path}?timeout=10s HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body


def load_requests(host: str, port: int, specs: Sequence[str]) -> list[bytes]:
    """Each spec is PATH=FILE, FILE holding one JSON body per line; requests interleave the specs
    (a pod's /mutate and /validate alternate, as the apiserver sends them)."""
    per_spec: list[list[bytes]] = []
    for spec in specs:
        path, file = spec.split("=", 1)
        bodies = [line for line in Path(file).read_bytes().splitlines() if line.strip()]
        per_spec.append([http_request(host, port, path, b) for b in bodies])
    longest = max(len(r) for r in per_spec)
    return [reqs[i % len(reqs)] for i in range(longest) for reqs in per_spec]


async def closed_loop(conns: list[Connection], requests: list[bytes], duration: float,
                      warmup: float) -> tuple[Stats, float]:
    stats = Stats()
    start = time.perf_counter()
    measure_from = start + warmup
    stop = measure_from + duration
    counted = 0

    async def worker(conn: Connection, offset: int) -> None:
        nonlocal counted
        i = offset
        while True:
            sent = time.perf_counter()
            if sent >= stop:
                return
            status = await conn.exchange(requests[i % len(requests)])
            done = time.perf_counter()
            i += len(conns)
            if sent >= measure_from:
                counted += 1
                stats.latencies.append(done - sent)
                stats.statuses[status] = stats.statuses.get(status, 0) + 1

    await asyncio.gather(*(worker(c, n) for n, c in enumerate(conns)))
    return stats, counted / duration


async def open_loop(conns: list[Connection], requests: list[bytes], duration: float, warmup: float,
                    rate: float) -> tuple[Stats, float]:
    stats = Stats()
    free: asyncio.Queue[Connection] = asyncio.Queue()
    for c in conns:
        free.put_nowait(c)
    interval = 1.0 / rate
    start = time.perf_counter() + 0.05
    total = int((warmup + duration) * rate)
    warm = int(warmup * rate)
    tasks: list[asyncio.Task[None]] = []

    async def one(i: int, scheduled: float) -> None:
        conn = await free.get()
        try:
            status = await conn.exchange(requests[i % len(requests)])
        finally:
            free.put_nowait(conn)
        if i >= warm:
            stats.latencies.append(time.perf_counter() - scheduled)
            stats.statuses[status] = stats.statuses.get(status, 0) + 1

    for i in range(total):
        scheduled = start + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(i, scheduled)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - (start + warm * interval)
    return stats, len(stats.latencies) / elapsed


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summary(stats: Stats, rate: float) -> dict[str, object]:
    ms = [v * 1000 for v in stats.latencies]
    return {"requests": len(ms), "rate": round(rate, 1), "statuses": stats.statuses,
            "p50_ms": round(percentile(ms, 0.50), 3), "p95_ms": round(percentile(ms, 0.95), 3),
            "p99_ms": round(percentile(ms, 0.99), 3), "max_ms": round(max(ms, default=float("nan")), 3)}


async def main_async(args: argparse.Namespace) -> dict[str, object]:
    ctx = ssl.create_default_context(cafile=args.ca)
    requests = load_requests(args.host, args.port, args.request)
    conns = [await Connection.open(args.host, args.port, ctx) for _ in range(args.connections)]
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    try:
        if args.mode == "closed":
            stats, rate = await closed_loop(conns, requests, args.duration, args.warmup)
        else:
            stats, rate = await open_loop(conns, requests, args.duration, args.warmup, args.rate)
    finally:
        for c in conns:
            c.close()
    result = summary(stats, rate)
    # Near 1.0 the generator, not the server, limits the rate: the result then says so.
    result["client_cpu"] = round((time.process_time() - cpu_start) / (time.perf_counter() - wall_start), 2)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--request", action="append", required=True, metavar="PATH=FILE")
    p.add_argument("--mode", choices=["closed", "open"], default="closed")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--rate", type=float, default=100.0, help="requests/s (open loop)")
    p.add_argument("--cpu", type=int, help="pin this process to one CPU")
    args = p.parse_args(argv)
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    result = asyncio.run(main_async(args))
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
