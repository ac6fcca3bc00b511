"""Admission: the one place a request is let in (auth, model allowed, rate limits, budget
reservation) and, when it ends, settled. The gateway and the library both use it."""
