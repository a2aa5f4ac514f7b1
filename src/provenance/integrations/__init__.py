"""Adapters for platforms: Magento import CSVs and media trees, DAM upload hooks, Dask.

Each module here owns one platform's formats and composes the verbs for them; none
prints: the command line in :mod:`provenance.cli` presents what they return.
"""
