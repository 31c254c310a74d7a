"""Custom actions of the demo project, written with rasa-sdk.

They run in the assistant's process by default, or on a rasa-sdk action server
(``python -m rasa_sdk --actions actions``) when ``endpoints.yml`` names one.
"""
