"""`make bench`: serve the demo data and measure the hot paths from a second process.

Starts `crowdmade serve` (one uvicorn worker unless BENCH_WORKERS is set) on a fresh database
(SQLite in a temp dir, or DATABASE_URL when it points at PostgreSQL: a fresh database is
created there), loads the demo data, then drives concurrent requests with httpx and prints
requests per second and latency percentiles for each path. Bounded in time and count, only
to 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
CONCURRENCY = int(os.environ.get("BENCH_CONCURRENCY", "20"))
SECONDS = float(os.environ.get("BENCH_SECONDS", "8"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "1"))


def prepare_env(tmp: Path) -> tuple[dict[str, str], str | None]:
    env = {**os.environ, "CROWDMADE_ENV": "development", "VAR_DIR": str(tmp / "var"), "SUPPORT_THRESHOLD": "10",
           "SECRET_KEY": "bench-secret-key-0123456789abcdef0123456789", "SIGNUP_PER_HOUR": "100000"}
    url = os.environ.get("DATABASE_URL", "")
    dropped = None
    if url.startswith(("postgresql://", "postgres://")):
        name = f"crowdmade_bench_{uuid.uuid4().hex[:8]}"
        subprocess.run(["psql", url, "-qc", f'CREATE DATABASE "{name}"'], check=True)
        env["DATABASE_URL"] = urlunsplit(urlsplit(url)._replace(path=f"/{name}"))
        dropped = name
    else:
        env["DATABASE_URL"] = f"sqlite:///{tmp / 'bench.sqlite3'}"
    return env, dropped


async def measure(name: str, make_request, seconds: float = SECONDS) -> dict:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def worker(n: int) -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            try:
                response = await make_request(n)
                if response.status_code >= 400:
                    errors += 1
            except httpx.HTTPError:
                errors += 1
            latencies.append(time.perf_counter() - start)

    began = time.perf_counter()
    await asyncio.gather(*(worker(n) for n in range(CONCURRENCY)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    q = statistics.quantiles(latencies, n=100) if len(latencies) > 1 else [latencies[0]] * 99
    result = {"name": name, "requests": len(latencies), "rps": len(latencies) / elapsed,
              "p50_ms": q[49] * 1000, "p95_ms": q[94] * 1000, "errors": errors}
    print(f"{name:<34} {result['rps']:8.1f} req/s  p50 {result['p50_ms']:7.1f} ms  p95 {result['p95_ms']:7.1f} ms"
          f"  ({result['requests']} requests, {errors} errors)", flush=True)
    return result


async def run_load(base: str) -> None:
    limits = httpx.Limits(max_connections=CONCURRENCY + 5)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=30) as client:
        ideas = (await client.get("/api/v1/ideas?status=voting&limit=100")).json()["items"]
        idea_ids = [i["id"] for i in ideas]
        # Voters: members with API tokens (signed up through the API, verified in the DB by the demo? no:
        # bench members verify through the dev mailbox link).
        tokens = []
        for n in range(CONCURRENCY):
            email = f"bench{n}.{uuid.uuid4().hex[:6]}@example.com"
            await client.post("/api/v1/auth/signup", json={"email": email, "password": "bench password 123",
                                                          "display_name": f"Bench {n}"})
            token = (await client.post("/api/v1/auth/tokens", json={"email": email, "password": "bench password 123"})).json()["token"]
            tokens.append(token)
        mailbox = (await client.get("/dev/mailbox")).text
        import re

        for email_id in set(re.findall(r'href="/dev/mailbox/(\d+)"', mailbox)):
            text = (await client.get(f"/dev/mailbox/{email_id}")).text
            match = re.search(r"/verify\?token=([A-Za-z0-9_\-]+)", text)
            if match:
                await client.post("/api/v1/auth/verify", json={"token": match.group(1)})

        rng = random.Random(1)
        print(f"\nconcurrency {CONCURRENCY}, {SECONDS:.0f} s per path, {WORKERS} web worker(s)\n", flush=True)
        await measure("GET / (home)", lambda n: client.get("/"))
        await measure("GET /ideas (hot)", lambda n: client.get("/ideas"))
        await measure("GET /ideas?q=jacket (search)", lambda n: client.get("/ideas?q=waterproof+jacket"))
        await measure("GET /ideas/{id}", lambda n: client.get(f"/ideas/{rng.choice(idea_ids)}"))
        await measure("GET /api/v1/ideas", lambda n: client.get("/api/v1/ideas?limit=24"))

        async def vote(n: int):
            headers = {"Authorization": f"Bearer {tokens[n]}"}
            idea = rng.choice(idea_ids)
            if rng.random() < 0.6:
                return await client.put(f"/api/v1/ideas/{idea}/vote", headers=headers)
            return await client.delete(f"/api/v1/ideas/{idea}/vote", headers=headers)

        await measure("PUT/DELETE /api/v1/ideas/{id}/vote", vote)


def main() -> int:
    tmp = Path(tempfile.mkdtemp(prefix="crowdmade-bench-"))
    env, created_db = prepare_env(tmp)
    python = sys.executable
    port = free_port()
    print(f"database: {env['DATABASE_URL']}", flush=True)
    started = time.perf_counter()
    subprocess.run([python, "-m", "app.cli", "demo", "--seed", "42"], env=env, cwd=ROOT, check=True)
    print(f"demo data loaded in {time.perf_counter() - started:.1f} s", flush=True)
    server = subprocess.Popen(
        [python, "-m", "app.cli", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)],
        env={**env, "BASE_URL": f"http://127.0.0.1:{port}"}, cwd=ROOT, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    worker = subprocess.Popen([python, "-m", "app.cli", "worker"], env=env, cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        asyncio.run(run_load(f"http://127.0.0.1:{port}"))
    finally:
        for process in (server, worker):
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
        if created_db:
            subprocess.run(["psql", os.environ["DATABASE_URL"], "-qc", f'DROP DATABASE IF EXISTS "{created_db}" WITH (FORCE)'],
                           check=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
