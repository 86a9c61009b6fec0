"""Which alerts of a Prometheus rule file its promtool test file shows firing, and not firing."""

from __future__ import annotations

import json
import re
from pathlib import Path


def alerts_tested(rules: Path, tests: Path) -> tuple[set[str], set[str], set[str]]:
    """(the alerts of ``rules``, those ``tests`` expects firing, those it expects quiet).

    Read from the files' text, as they are laid out in packaging/prometheus:
    ``- alert: Name`` lines in the rules; ``alertname:`` then ``exp_alerts:``
    (``[]`` for quiet) in the tests.
    """
    alerts = set(re.findall(r"^\s+- alert: (\w+)$", rules.read_text(), re.MULTILINE))
    firing: set[str] = set()
    quiet: set[str] = set()
    current = ""
    for line in tests.read_text().splitlines():
        if found := re.fullmatch(r"\s+alertname: (\w+)", line):
            current = found[1]
        elif found := re.fullmatch(r"\s+exp_alerts:(.*)", line):
            (quiet if found[1].strip() == "[]" else firing).add(current)
    return alerts, firing, quiet


def expected_alert(rules: Path, alert: str, labels: dict[str, str]) -> str:
    """promtool's ``exp_alerts`` (JSON) for ``alert`` of ``rules`` firing with ``labels``.

    ``labels`` are the series' labels and the rule's own (severity); the
    annotations are read from the rules file as it writes them
    (``summary_en: "..."`` lines) with each ``{{ $labels.NAME }}`` filled in
    from ``labels``.
    """
    block = rules.read_text(encoding="utf-8").split(f"- alert: {alert}\n", 1)[1]
    notes = re.findall(r"^ +((?:summary|description)_(?:en|fr)): (\".*\")$", block, re.M)[:4]
    filled = {}
    for key, quoted in notes:
        text: str = json.loads(quoted)
        for name, label in labels.items():
            text = text.replace("{{ $labels." + name + " }}", label)
        filled[key] = text
    return json.dumps([{"exp_labels": labels, "exp_annotations": filled}], ensure_ascii=False)
