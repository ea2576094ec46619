"""Many runs: compare's grids and their report (what transfer saves, the plots), and the benchmark.

It may import every wing but `cli` and its peers `labels` and `distill`.
"""
