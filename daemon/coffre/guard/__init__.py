"""The guard: good history is never pruned away (ransomware signal, clock guard, incidents)."""
