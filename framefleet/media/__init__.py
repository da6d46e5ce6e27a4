"""The media engine: pure PyAV + Pillow. No Celery, Redis or SQLAlchemy imports here."""
