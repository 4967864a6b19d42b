"""`syncd dashboard`: a live local page for one working copy (README, "Dashboard").

snapshot reads what the CLI reads, views renders it as HTML (pure), wakeups says when it may
have changed, app serves it behind a token, server binds, runs and stops it. Imported only
when the page is asked for: the CLI starts without Starlette or uvicorn.
"""
