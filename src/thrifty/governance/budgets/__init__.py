"""Budgets and rate limits: reserve worst-case cost at admission, settle to the actual."""
