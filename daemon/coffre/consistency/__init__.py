"""A share seen whole: a read-only btrfs snapshot for each backup, Windows' Previous
Versions kept on their own schedule, and, without btrfs, a wait for a quiet share."""
