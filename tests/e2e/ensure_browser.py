"""Make sure Debian's Chromium is installed for the browser tests (never `playwright install`)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

CHROMIUM = "/usr/bin/chromium"


def main() -> int:
    if os.path.exists(CHROMIUM):
        return 0
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        print(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium).", file=sys.stderr)
        return 1
    print("Installing Debian's chromium for the browser tests...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=False, env=env)
    result = subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, env=env)
    return 0 if result.returncode == 0 and os.path.exists(CHROMIUM) else 1


if __name__ == "__main__":
    sys.exit(main())
