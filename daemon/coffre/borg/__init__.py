"""The one door to borg: pure argv builders, the async runner, output parsers."""
