"""A new box after a disaster: paper key, host check, opening an offsite repository,
restoring it (no daemon).
"""
