"""Send the same admin form several times at once from one browser session (double submits)."""

from __future__ import annotations

import threading

from django.conf import settings
from django.db import connections
from django.test import Client


def post_together(client: Client, url: str, data: dict | None = None, *, times: int = 4,
                  method: str = "post") -> list:
    """POST `data` to `url` `times` times at once, each from a client sharing `client`'s session.

    Each request runs in its own thread (its own database connection), released together,
    so they overlap as a double click or a scripted replay does. Use it in tests marked
    django_db(transaction=True), so the threads see the rows the test made.
    """
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    start = threading.Barrier(times)
    answers: list = [None] * times
    errors: list[BaseException] = []

    def send(number: int) -> None:
        sender = Client()
        sender.cookies[settings.SESSION_COOKIE_NAME] = cookie
        try:
            start.wait(timeout=30)
            answers[number] = getattr(sender, method)(url, data or {})
        except BaseException as exc:  # reported by the test, not lost in the thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=send, args=(n,)) for n in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a request never answered"
    assert not errors, errors
    return answers
