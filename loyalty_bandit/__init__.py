"""The application layer: the ``loyalty-bandit`` command line and the demo.

It sits above both ``bandit`` (service and library) and ``replay`` (off-policy
evaluation), which must not import each other's upper layers; only this
package may use both.
"""
