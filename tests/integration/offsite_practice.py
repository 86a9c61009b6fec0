"""A practice with offsite targets on :mod:`tests.integration.sshd` hosts, and its enrollment."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from tests.integration.harness import Practice
from tests.integration.sshd import Host


@dataclass
class OffsitePractice(Practice):
    """The harness's practice, plus ``[[target]]`` of kind offsite, one per host.

    ``offsite_extra`` adds lines to a host's target table (upload windows,
    retry settings...), by target name.
    """

    hosts: dict[str, Host] = field(default_factory=dict)
    offsite_extra: dict[str, str] = field(default_factory=dict)

    def write_config(self) -> None:
        super().write_config()
        tables = "".join(
            f'\n[[target]]\nname = "{name}"\nkind = "offsite"\nurl = "{host.url}"\n'
            f"retry_delay = 1\nconnect_timeout = 5\n{self.offsite_extra.get(name, '')}\n"
            for name, host in self.hosts.items()
        )
        with self.config.open("a", encoding="utf-8") as out:
            out.write(tables)


def enroll(practice: Practice, name: str, host: Host) -> dict[str, object]:
    """Enroll ``host`` as target ``name`` the way a technician does; returns the first answer.

    First run: the fingerprint, checked against the host's own (``ssh-keygen
    -lf``), and the authorized_keys line, which the host's operator installs.
    Second run, with ``--accept-host-key``: the pin, then ``borg init``.
    """
    first = practice.coffre("offsite", "enroll", name, "--json", check=True)
    answer: dict[str, object] = json.loads(first.stdout)
    assert answer["fingerprint"] == host.fingerprint()
    assert answer["pinned"] is False
    host.authorize(str(answer["authorized_keys"]))
    second = practice.coffre(
        "offsite", "enroll", name, "--accept-host-key", str(answer["fingerprint"]), check=True
    )
    assert f"host key {answer['fingerprint']} pinned" in second.stdout, second.stdout
    assert "created at ssh://" in second.stdout, second.stdout + second.stderr
    return answer
