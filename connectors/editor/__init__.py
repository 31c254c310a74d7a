"""The content editor: a web page (``/editor``) over the knowledge-base API (``/api/kb``), behind a login."""
