"""The job machinery: queue, lanes, supervision, the collaborators a job gets
(``services``), backup and pruning.
"""
