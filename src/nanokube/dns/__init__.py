"""Cluster DNS: Service and Pod names answered from the API, other names forwarded."""
