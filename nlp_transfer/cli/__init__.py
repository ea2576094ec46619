"""The command line: one module per command (`app` dispatches), and the cached parsers that answer --help fast.

The only wing that parses arguments. It may import every other wing; nothing imports it.
"""
