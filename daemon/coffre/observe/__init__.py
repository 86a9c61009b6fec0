"""How things stand: facts read from state, Prometheus metrics, LEDs, ``coffre status``; no
cycle (metrics and LEDs read facts).
"""
