"""Adapters for platforms: Magento, DAM upload hooks and webhooks."""
