"""WSGI entry point for gunicorn: ``gunicorn zgw_identificatie.wsgi:app``."""

from .app import create_app, services_of
from .worker import start_background

app = create_app()
if services_of(app).settings.worker_in_process:
    start_background(services_of(app))
