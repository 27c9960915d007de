"""The operator console and technician pages, served by the gateway itself.

Why it looks like this:

* No build step and no CDN (duty rooms are often cut off from the internet):
  the page is an HTML shell rendered here from ``gateway/api/templates/`` with labels from
  :mod:`gateway.api.i18n`, plus one plain JS file and one CSS file from
  ``gateway/api/static/`` that fetch the JSON routes the other areas already serve.
* Login posts the token once; it is then kept in an HttpOnly, SameSite=Strict
  cookie (``egw_session``) that :mod:`gateway.api.auth` accepts like a bearer
  token. Writes from the page carry ``X-CSRF-Token`` (a one-way derivation of
  the session token, see :func:`gateway.api.auth.csrf_for`), checked by auth.
* What a role cannot do is not rendered at all: an operator's page has no
  enrolment form, a technician's has no door board or unlock button (and the
  API answers 403 if someone tries anyway).
* Live updates come over Server-Sent Events (``GET /api/v1/stream``) fed by
  ``ctx.events.subscribe``: each committed event is pushed to every connected
  page whose role may see its type, with ``id: seq`` so a reconnecting browser
  replays what it missed (``Last-Event-ID``) instead of losing an alarm.

Parts: ``stream`` (the live-event hub), ``pages`` (rendering the role's page),
``history`` (a meter's recent readings for the chart), ``recent`` (the newest events for a page
that just opened), ``component`` (wiring).
Routes: ``gateway/api/routes/console.py`` (/api/v1) and ``gateway/api/routes/pages.py`` (/).
"""

from gateway.console.component import ConsoleComponent

__all__ = ["ConsoleComponent"]
