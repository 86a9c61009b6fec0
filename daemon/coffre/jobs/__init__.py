"""The job machinery: queue, lanes, supervision, the collaborators a job gets
(``services``), backup, pruning and the archive list it works on.
"""
