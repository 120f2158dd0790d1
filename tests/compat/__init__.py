"""Compatibility with jupyterhub.services.auth, checked by JupyterHub's own tests."""
