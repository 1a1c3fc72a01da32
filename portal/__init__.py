"""Keyplane's Django project: settings, URL confs, Celery app, tenants and catalog."""

from portal.celery import app as celery_app

__all__ = ("celery_app",)
