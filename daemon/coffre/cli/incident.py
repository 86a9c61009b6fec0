"""``coffre incident show|clear``: why pruning is frozen, and resuming it (audited).

``show`` prints the open incidents (what was seen, when, on which target,
with its figures) and their evidence, which may name files of the share: it
is printed with every non-printable character escaped (``\\xNN``), so that a
hostile file name cannot drive the terminal. ``clear`` asks for a reason
(``--why``), recorded with who asked in the audit log.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Mapping
from typing import Any

from coffre.cli.support import EXIT_OK, answer, print_json
from coffre.core.config_types import Config
from coffre.core.messages import IncidentClearRequest, IncidentShowRequest
from coffre.core.printable import controls_escaped


def add_parser(sub: Any) -> None:
    """Add ``incident show`` and ``incident clear --why TEXT [--kind K]`` to the subparsers."""
    incident = sub.add_parser(
        "incident", help="why pruning is frozen (suspected ransomware, suspect clock); resume it"
    )
    actions = incident.add_subparsers(dest="incident_action", required=True, metavar="ACTION")
    show = actions.add_parser("show", help="the open incidents and their evidence (audited)")
    show.add_argument("--json", action="store_true", help="machine-readable output")
    clear = actions.add_parser("clear", help="resume pruning after checking the share (audited)")
    clear.add_argument(
        "--why", required=True, help="why it is safe to resume (recorded in the audit log)"
    )
    clear.add_argument(
        "--kind", choices=("ransomware", "clock"), help="which incident, when both are open"
    )
    clear.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_incident(args: argparse.Namespace, cfg: Config) -> int:
    """Run ``coffre incident show|clear``; return the exit code (0; errors raise)."""
    if args.incident_action == "clear":
        from coffre.cli.client import person_from_env

        person = person_from_env(os.environ, os.getuid())
        final = answer(cfg, IncidentClearRequest(why=args.why, kind=args.kind, person=person))
        if args.json:
            print_json({"cleared": final.get("cleared"), "done": final.get("done")})
        else:
            done = final.get("done")
            print(f"{final.get('cleared')} incident cleared: pruning resumes at the next run")
            if done:
                print(f"  {done}")
        return EXIT_OK
    final = answer(cfg, IncidentShowRequest())
    if args.json:
        print_json({"incidents": final.get("incidents", []), "nights": final.get("nights", {})})
        return EXIT_OK
    incidents = final.get("incidents") or []
    if not incidents:
        print("no incident: pruning is not frozen")
    for incident in incidents:
        _print_incident(incident)
    return EXIT_OK


def _print_incident(incident: Mapping[str, Any]) -> None:
    print(
        f"{shown(incident.get('kind'))} incident, open since {shown(incident.get('opened_at'))}: "
        "pruning frozen on every target (backups go on)"
    )
    print(f"  reasons: {shown(', '.join(incident.get('reasons') or ()))}")
    for sighting in incident.get("sightings") or ():
        figures = ", ".join(f"{k} {v}" for k, v in sorted((sighting.get("figures") or {}).items()))
        print(
            f"  seen {shown(sighting.get('at'))} on {shown(sighting.get('target'))}: "
            f"{shown(', '.join(sighting.get('reasons') or ()))}; {shown(figures)}"
        )
    evidence = incident.get("evidence") or ()
    if evidence:
        print("  evidence (on this box only):")
        for line in evidence:
            print(f"    {shown(line)}")
    print(
        f"  once the share is checked: coffre incident clear --kind {shown(incident.get('kind'))} "
        '--why "..."'
    )


def shown(value: object) -> str:
    """``value`` as text with every non-printable character escaped (``\\xNN``, ``\\uNNNN``)."""
    return controls_escaped(value if isinstance(value, str) else json.dumps(value))
