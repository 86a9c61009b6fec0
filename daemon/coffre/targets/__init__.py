"""The repositories coffre backs up to: local, USB disks (``usb``) and offsite hosts
(``offsite``), each kind with its devices or links, enrolment and jobs.
"""
