"""Imported by the test Celery worker (`--include`): forget per-test database state.

Transactional tests flush the database after each test, and Django then recreates the
content types with new ids. A worker that outlives one test must not reuse the ids it
cached earlier, or its audit rows point at content types that no longer exist.
"""

from celery.signals import task_prerun


@task_prerun.connect(weak=False, dispatch_uid="tests.worker_setup.fresh_content_types")
def fresh_content_types(**kwargs: object) -> None:
    """Drop the ContentType cache before every task the test worker runs."""
    from django.contrib.contenttypes.models import ContentType

    ContentType.objects.clear_cache()
