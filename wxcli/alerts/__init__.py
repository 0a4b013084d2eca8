"""Alerts: the alert model and the channels (email, webhooks, WeChat) that deliver it."""
