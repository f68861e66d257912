"""Smoke run of the Janus benchmark (test/bench/README.md), about 30 s with the build check:
one room of three plain-RTP participants on janus.plugin.cm.audioroom for a few seconds in each
load profile (open-mic, sip, silence), then the latency probe's clean path for two bursts. It
asserts only that every participant receives its mix at >= 45 packets/s in every profile and
that a burst was detected with a latency between 0 and 1 s: no timing figure is asserted. The
benchmark itself is run on demand, not here.

    python3 -m pytest -q test/bench/test_bench_smoke.py
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
CARGO = shutil.which("cargo") or str(Path.home() / ".cargo" / "bin" / "cargo")
PROFILES = ("open-mic", "sip", "silence")


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root (like the rest of the test suite)"
    if shutil.which("janus") is None:
        return "Debian's janus is not installed"
    if not Path(CARGO).exists():
        return "cargo is not installed"
    try:
        import requests  # noqa: F401
    except ImportError:
        return "python3 requests is not installed"
    return None


@pytest.mark.skipif(_skip_reason() is not None, reason=_skip_reason() or "")
def test_smoke_run_packets_flow_in_every_profile_and_a_burst_is_detected():
    run = subprocess.run([str(HERE / "run.sh"), "--smoke"], capture_output=True, text=True, timeout=900)
    report = f"stdout:\n{run.stdout}\nstderr:\n{run.stderr[-4000:]}"
    assert run.returncode == 0, report
    for profile in PROFILES:
        assert any(line.startswith(f"smoke {profile}:") and line.endswith("-> ok")
                   for line in run.stderr.splitlines()), report
    assert any(line.startswith("smoke latency:") and line.endswith("-> ok")
               for line in run.stderr.splitlines()), report
