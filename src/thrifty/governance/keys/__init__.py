"""governance/keys"""
