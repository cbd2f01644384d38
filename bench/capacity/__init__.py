"""Helpers of the capacity benches (click_to_result, students_per_instance): the two sides and /proc readings.

A package, so `./inv bench` (which runs every bench/*.py) does not run these as benchmarks."""
