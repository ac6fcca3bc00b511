"""The admin dashboard at ``/dashboard``: where the money goes, read from the ledger.

``config.py`` the section; ``session.py`` the signed login cookie; ``queries.py`` the
ledger reads; ``page.py`` the server-rendered HTML; ``handlers.py`` the HTTP handlers
(the server mounts them); ``budget_panel.py`` the hook for budget use; ``static/`` the
chart library and the page's own script and style.
"""
