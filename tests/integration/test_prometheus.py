"""The shipped Prometheus files against Debian's real Prometheus.

- ``promtool check rules`` and ``promtool test rules`` on coffre-rules.yml
  (every alert tested firing and not firing, the silent box included);
- the box's agent config, as shipped, checked by promtool;
- a Prometheus in agent mode, on the shipped agent.yml (only the scrape
  target, the remote-write url, the TLS CA, the credentials and the box's
  name swapped), scraping a running daemon and remote-writing over TLS with
  basic auth to a second Prometheus (the support's central store, with the
  remote-write receiver and the rules): the central one answers queries for
  coffre's series labelled with the box, evaluates the rules, and answers
  every query of the Grafana dashboard.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import ssl
import subprocess
import urllib.error
import urllib.parse
import urllib.request
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness import Daemon, fill_share, wait_for
from tests.integration.observing import ObservedPractice, free_port, parse, value
from tests.integration.rule_tests import alerts_tested
from tests.parts import binary

RULES_DIR = Path(__file__).resolve().parents[2] / "packaging" / "prometheus"
RULES = RULES_DIR / "coffre-rules.yml"
RULES_TESTS = RULES_DIR / "coffre-rules.test.yml"
AGENT = RULES_DIR / "agent.yml"
DASHBOARD = RULES_DIR.parent / "grafana" / "coffre-dashboard.json"
BOX = "cabinet-test"


def _run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=300, cwd=cwd)


def test_promtool_checks_the_rules() -> None:
    result = _run(binary("promtool"), "check", "rules", str(RULES))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_runs_the_rules_unit_tests() -> None:
    result = _run(binary("promtool"), "test", "rules", RULES_TESTS.name, cwd=RULES_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    alerts, firing, quiet = alerts_tested(RULES, RULES_TESTS)
    assert "CoffreBoxSilent" in alerts
    assert firing == alerts, sorted(alerts - firing)
    assert quiet == alerts, sorted(alerts - quiet)


def test_the_shipped_agent_config_is_valid_for_an_agent() -> None:
    result = _run(binary("promtool"), "check", "config", "--agent", str(AGENT))
    assert result.returncode == 0, result.stdout + result.stderr


# --- an agent on the box, a central store ----------------------------------


class Prometheus:
    """A Prometheus process on 127.0.0.1, its data under ``root``; stopped by :meth:`stop`."""

    def __init__(self, root: Path, name: str, config: Path, *args: str) -> None:
        self.port = free_port()
        self.log = root / f"{name}.log"
        data = root / f"{name}-data"
        storage = (
            "--storage.agent.path" if "--enable-feature=agent" in args else "--storage.tsdb.path"
        )
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [
                    binary("prometheus"),
                    f"--config.file={config}",
                    f"{storage}={data}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    *args,
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture
def tls(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (the central store's), and its key."""
    cert, key = tmp_path / "central.pem", tmp_path / "central.key"
    result = _run(
        binary("openssl"),
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        str(key),
        "-out",
        str(cert),
        "-days",
        "2",
        "-subj",
        "/CN=central.test",
        "-addext",
        "subjectAltName=IP:127.0.0.1",
    )
    assert result.returncode == 0, result.stderr
    return cert, key


def _bcrypt(password: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import crypt  # Python 3.11's; Prometheus wants bcrypt hashes of its users

        return crypt.crypt(password, crypt.mksalt(crypt.METHOD_BLOWFISH))


def _agent_config(tmp_path: Path, exporter_port: int, central: int, cert: Path) -> Path:
    """The shipped agent.yml with only what a test must swap swapped (each line once)."""
    password = tmp_path / "remote-write.password"
    shipped = AGENT.read_text(encoding="utf-8")
    swaps = {
        "    box: CHANGE-ME": f"    box: {BOX}",
        '      - targets: ["127.0.0.1:9851"]': f'      - targets: ["127.0.0.1:{exporter_port}"]',
        "    url: https://metrics.support.example/api/v1/write": (
            f"    url: https://127.0.0.1:{central}/api/v1/write"
        ),
        "      username: CHANGE-ME": f"      username: {BOX}",
        "      password_file: /etc/prometheus/coffre/remote-write.password": (
            f"      password_file: {password}"
        ),
        "      ca_file: /etc/prometheus/coffre/support-ca.pem": f"      ca_file: {cert}",
    }
    lines = shipped.splitlines()
    for old, new in swaps.items():
        assert lines.count(old) == 1, f"agent.yml no longer has the line {old!r}"
        lines[lines.index(old)] = new
    derived = "\n".join(lines) + "\n"
    # Everything else is the shipped file, line for line.
    kept = [a for a, b in zip(shipped.splitlines(), derived.splitlines(), strict=True) if a == b]
    assert len(kept) == len(shipped.splitlines()) - len(swaps)
    config = tmp_path / "agent.yml"
    config.write_text(derived, encoding="utf-8")
    return config


class Central:
    """Queries to the central store over HTTPS with basic auth."""

    def __init__(self, port: int, cert: Path, password: str) -> None:
        self.base = f"https://127.0.0.1:{port}"
        self.context = ssl.create_default_context(cafile=str(cert))
        token = base64.b64encode(f"{BOX}:{password}".encode()).decode()
        self.auth = {"Authorization": f"Basic {token}"}

    def get(self, path: str, *, auth: bool = True) -> Any:
        request = urllib.request.Request(self.base + path, headers=self.auth if auth else {})
        with urllib.request.urlopen(request, context=self.context, timeout=10) as response:
            return json.loads(response.read())

    def query(self, promql: str) -> list[dict[str, Any]]:
        answer = self.get("/api/v1/query?" + urllib.parse.urlencode({"query": promql}))
        assert answer["status"] == "success", answer
        result: list[dict[str, Any]] = answer["data"]["result"]
        return result


@pytest.fixture
def practice(tmp_path: Path) -> ObservedPractice:
    p = ObservedPractice(tmp_path / "box")
    fill_share(p.share, files=20)
    return p


def test_an_agent_on_the_box_remote_writes_coffre_to_the_central_store(
    tmp_path: Path, practice: ObservedPractice, tls: tuple[Path, Path]
) -> None:
    cert, key = tls
    password = secrets.token_urlsafe(24)
    (tmp_path / "remote-write.password").write_text(password + "\n")
    web = tmp_path / "central-web.yml"
    web.write_text(
        f"tls_server_config:\n  cert_file: {cert}\n  key_file: {key}\n"
        f"basic_auth_users:\n  {BOX}: '{_bcrypt(password)}'\n"
    )
    central_config = tmp_path / "central.yml"
    central_config.write_text(
        f"global:\n  evaluation_interval: 15s\nrule_files:\n  - {RULES}\n", encoding="utf-8"
    )
    daemon = Daemon(practice).ready()
    running: list[Prometheus] = []
    try:
        practice.coffre("target", "init", "local", check=True)
        practice.coffre("backup", "--wait", check=True)
        central = Prometheus(
            tmp_path,
            "central",
            central_config,
            "--web.enable-remote-write-receiver",
            f"--web.config.file={web}",
        )
        running.append(central)
        agent_config = _agent_config(tmp_path, practice.metrics_port, central.port, cert)
        agent = Prometheus(tmp_path, "agent", agent_config, "--enable-feature=agent")
        running.append(agent)
        store = Central(central.port, cert, password)

        def answers() -> bool:
            for process in running:
                assert process.process.poll() is None, process.logs()
            try:
                return bool(store.query(f'coffre_up{{box="{BOX}",job="coffre"}}'))
            except (urllib.error.URLError, ConnectionError):
                return False  # the central store is still starting

        wait_for(answers, timeout=240, what="coffre's series in the central store")
        # Without the box's credentials, the central store refuses.
        with pytest.raises(urllib.error.HTTPError) as refused:
            store.get("/api/v1/query?query=up", auth=False)
        assert refused.value.code == 401

        [up] = store.query(f'coffre_up{{box="{BOX}"}}')
        assert up["metric"]["job"] == "coffre" and up["value"][1] == "1"
        scraped = parse(practice.scrape())
        [success] = store.query(
            f'coffre_last_success_timestamp_seconds{{box="{BOX}",target="local"}}'
        )
        expected = value(scraped, "coffre_last_success_timestamp_seconds", target="local")
        assert expected > 0 and float(success["value"][1]) == expected
        slots = store.query(f'coffre_retention_slot_present{{box="{BOX}",target="local"}}')
        assert sorted(s["metric"]["slot"] for s in slots) == ["J", "J-1", "J-2", "M", "M-1"]
        assert store.query(f'up{{box="{BOX}",job="coffre"}}')[0]["value"][1] == "1"

        # The central store runs the rules over the boxes' series.
        def evaluated() -> bool:
            groups = store.get("/api/v1/rules")["data"]["groups"]
            rules = [r for g in groups for r in g["rules"]]
            shipped = len(re.findall(r"^\s+- alert: ", RULES.read_text(), flags=re.MULTILINE))
            return len(rules) == shipped and all(r["health"] == "ok" for r in rules)

        wait_for(evaluated, timeout=120, what="the central store to evaluate coffre's rules")

        # Every query of the dashboard is valid PromQL there (for this box).
        panels = json.loads(DASHBOARD.read_text())["panels"]
        exprs = [t["expr"] for panel in panels for t in panel.get("targets", [])]
        assert exprs
        for expr in exprs:
            store.query(expr.replace("$box", BOX))
        shown = store.query(f'max by (state) (coffre_health{{box=~"{BOX}"}}) == 1')
        assert [s["metric"]["state"] for s in shown] == ["ok"]
    finally:
        for process in running:
            process.stop()
        daemon.stop()
