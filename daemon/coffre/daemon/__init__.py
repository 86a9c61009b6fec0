"""The running daemon: main loop, control socket, the support desk, the job executor,
sd_notify, the machine's clock.
"""
