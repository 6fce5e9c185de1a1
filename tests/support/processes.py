"""App processes for multi-process tests: start with a log file, wait until they answer, stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AppProcess:
    name: str
    process: subprocess.Popen
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            text = []
        return f"--- {self.name} (exit {self.process.poll()}) ---\n" + "\n".join(text)


def start_process(name: str, args: list[str], env: dict[str, str]) -> AppProcess:
    log_path = Path(tempfile.mkstemp(prefix=f"crowdmade-{name}-", suffix=".log")[1])
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 (our own interpreter and module)
            [sys.executable, *args], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C on pytest does not hit the servers mid-test
        )
    return AppProcess(name, process, log_path)


def wait_until_up(app: AppProcess, url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.process.poll() is not None:
            raise RuntimeError(f"{app.name} exited with {app.process.returncode}:\n{app.log_tail()}")
        try:
            if httpx.get(url, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{app.name} did not answer {url} within {timeout} s:\n{app.log_tail()}")


def stop_processes(apps: list[AppProcess], timeout: float = 10) -> None:
    """SIGTERM every process (graceful shutdown), then SIGKILL whatever is still running."""
    for app in apps:
        if app.process.poll() is None:
            app.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for app in apps:
        try:
            app.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            app.process.kill()
            app.process.wait(timeout=5)
    for app in apps:
        if os.environ.get("KEEP_PROCESS_LOGS") != "1":
            app.log_path.unlink(missing_ok=True)


async def eventually(check, *, within: float = 10.0, interval: float = 0.1, what: str = "condition",  # noqa: ANN001
                     processes: list[AppProcess] = ()):
    """Await `check()` until it returns something truthy (and return that), or fail after
    `within` seconds naming `what`, with the last log lines of `processes`."""
    import asyncio

    deadline = time.monotonic() + within
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError("\n".join([f"timed out after {within} s waiting for {what}",
                                             *(p.log_tail() for p in processes)]))
        await asyncio.sleep(interval)
