"""Adapters for platforms: they compose the verbs for one platform's files and layouts.

Each module here owns one platform's formats (a Magento import CSV, a Magento media
tree) and never prints: the command line in :mod:`provenance.cli` presents what
they return.
"""
