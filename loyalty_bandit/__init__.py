"""The application layer: the ``loyalty-bandit`` command line and the demo.

It sits above ``bandit`` (service and library) and ``replay`` (off-policy
evaluation). ``bandit`` never imports ``replay``, and only this package uses
both.
"""
