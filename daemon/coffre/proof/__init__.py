"""Proof that restores work: checks, restore drills and the restore-time estimate."""
