"""Pure decisions: the model, errors, retention, schedule, rotation, health, restore
planning, paper keys, SSH key parsing, config values. No I/O, no clock read; imports
nothing of coffre outside core.
"""
