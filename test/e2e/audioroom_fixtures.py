"""Fixtures for testing janus.plugin.cm.audioroom in a private Janus.

``audioroom_factory(config={...}, legacy=False, extra_configs={...}, **JanusServer kwargs)``
(``extra_configs``: more configuration files, e.g. an event handler's) starts Janus with
the freshly built plugin, its recordings and jobs in the test's own temporary folders (each
Janus of a test its own: ``recordings``/``jobs``, then ``recordings-2``/``jobs-2``, ...), and
returns an ``Audioroom`` with ``.server``, ``.archive``, ``.jobs``, ``.handle()`` (a new
handle on a new session) and ``.admin(body)`` (Janus's Admin API ``message_plugin``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

PACKAGE = "janus.plugin.cm.audioroom"


def jcfg(settings: dict) -> str:
    """The plugin's configuration as libconfig text (section ``general``)."""
    lines = []
    for key, value in settings.items():
        if isinstance(value, bool):
            lines.append(f"\t{key} = {'true' if value else 'false'}")
        elif isinstance(value, int):
            lines.append(f"\t{key} = {value}")
        else:
            lines.append(f"\t{key} = {json.dumps(str(value))}")
    return "general: {\n" + "\n".join(lines) + "\n}\n"


def legacy_cfg(settings: dict) -> str:
    """The same as the legacy INI form (``.cfg``), which Janus's parser also reads."""
    lines = ["[general]"]
    for key, value in settings.items():
        if isinstance(value, bool):
            value = "yes" if value else "no"
        lines.append(f"{key} = {value}")
    return "\n".join(lines) + "\n"


@dataclass
class Audioroom:
    server: object
    archive: Path
    jobs: Path
    session_factory: object
    _sessions: list = field(default_factory=list)

    def handle(self, **session_options):
        """A new handle on a new Janus session, attached to the plugin."""
        return self.session_factory(self.server, **session_options).attach(PACKAGE)

    async def ahandle(self, **session_options):
        session = self.session_factory(self.server, **session_options)
        return await session.aattach(PACKAGE)

    def admin(self, body: dict) -> dict:
        from harness.client import admin_request
        return admin_request(self.server.admin_url, self.server.admin_secret, PACKAGE, body)

    def wavs(self) -> list[Path]:
        return sorted(self.archive.rglob("*.wav")) if self.archive.exists() else []

    def job_files(self) -> list[Path]:
        return sorted(p for p in self.jobs.glob("*.json") if not p.name.startswith(".")) if self.jobs.exists() else []

    def jobs_json(self) -> list[dict]:
        return [json.loads(p.read_text()) for p in self.job_files()]


@pytest.fixture
def audioroom_factory(janus_factory, janus_session_factory, audioroom_plugin_path, tmp_path):
    started = []

    def start(config: dict | None = None, legacy: bool = False, extra_configs: dict | None = None,
              **kwargs) -> Audioroom:
        # The first Janus of a test keeps tmp_path/recordings and tmp_path/jobs (tests mount
        # file systems there); each further one gets its own, recordings-2 and jobs-2, ...
        suffix = f"-{len(started) + 1}" if started else ""
        archive, jobs = tmp_path / f"recordings{suffix}", tmp_path / f"jobs{suffix}"
        settings = {"archive_path": str(archive), "job_path": str(jobs), **(config or {})}
        if legacy:
            configs = {f"{PACKAGE}.cfg": legacy_cfg(settings)}
        else:
            configs = {f"{PACKAGE}.jcfg": jcfg(settings)}
        configs.update(extra_configs or {})
        server = janus_factory([audioroom_plugin_path], configs, **kwargs)
        started.append(server)
        return Audioroom(server, Path(settings["archive_path"]), Path(settings["job_path"]), janus_session_factory)
    return start


@pytest.fixture
def audioroom(audioroom_factory) -> Audioroom:
    """A private Janus running the plugin with default settings."""
    return audioroom_factory()
