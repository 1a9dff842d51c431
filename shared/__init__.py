"""Code both apps import: settings, models, schemas, password hashing, URL building."""
