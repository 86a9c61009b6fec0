"""coffre's benchmarks (``make bench``): nights against borg by hand and borgmatic; idle.

``python -m benchmarks`` builds a 20,000-file share and, for each side, a
repository holding a full J/J-1/J-2/M/M-1 history; it then measures nights
in alternation and the idle daemon, and prints a table of figures against
their targets. It always exits 0 when it could measure: a FAIL is a figure.
"""
