"""USB disks: sysfs and mounts (devices), udev events, the plugged-disk bookkeeping, the
disk job, enrolment, the repository on a disk.
"""
