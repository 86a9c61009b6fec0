"""Offsite hosts: SSH (host keys, preflight), enrolment, the repository over SSH with
upload windows.
"""
