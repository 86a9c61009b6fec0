"""What the box keeps on its own disk: the sqlite state, the hash-chained audit log, the
journal's logging.
"""
