"""Where repositories live: a local directory (more kinds follow)."""
