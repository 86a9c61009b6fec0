"""Proof that restores work: checks of the repositories, restore drills, restore times."""
