"""Routing: send each request to the cheapest model that can do the job.

``tasks`` classifies a prompt's task (rules, or the shipped embedding model).
"""
