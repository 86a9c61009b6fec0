"""Reads of patient data for support staff: restore, find, browse, key export; who asks."""
