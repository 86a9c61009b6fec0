"""Proof that restores work (issue 13): checks of the repositories, restore drills, restore times.

Pure decisions and the records kept in state's meta, below the jobs that run
borg (``coffre.jobs.checking``, ``coffre.jobs.drilling``): check_ledger (what
each check of each target did, and since when every segment or chunk was
read), check_outcome (a borg run -> ok, complete, damage found, a sentence for
a person), data_pass (which archives a budgeted data check verifies next),
drill_sample (which files a drill reads back), drill (comparing them, by
descriptors), drill_ledger (each target's last drill).
"""
