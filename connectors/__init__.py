"""The edges: channel adapters, the web chat widget, the staff console and outbound connectors."""
