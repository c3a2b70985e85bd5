"""Channel connectors: one subpackage per channel."""
