"""Staff accounts and the audit log: the shared staff login (``/api/auth``) and the admin page and API."""
