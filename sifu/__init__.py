"""Sifu: signs students in through edX OAuth2 and manages their copies of course notebooks.

The HTTP contract is the one the deployed Open edX XBlock already calls (DESIGN.md §4); the Jupyter
Server side (sifu.jupyter) trusts only identities that Sifu signed (DESIGN.md §5).
"""
