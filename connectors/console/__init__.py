"""The staff console: a login-protected REST + WebSocket API over ``assistant.handoff`` and its web page."""
