import logging

from celery import shared_task
from django.db import transaction
from django.utils import timezone

from .models import Post, PostLike

log = logging.getLogger(__name__)


def process(post_id):
    """Recount a post's likes and words and stamp processed_at. Returns False if it is gone."""
    post = Post.objects.filter(pk=post_id).only("body").first()
    if post is None:
        return False
    likes = PostLike.objects.filter(post_id=post_id).count()
    # update(), not save(): leaves modified_on alone and never overwrites a concurrent edit's body.
    Post.objects.filter(pk=post_id).update(
        like_count=likes, word_count=len(post.body.split()), processed_at=timezone.now()
    )
    return True


@shared_task
def process_post(post_id):
    done = process(post_id)
    log.info("processed post %s: %s", post_id, "ok" if done else "gone")
    return done


def queue_processing(post_id):
    """Send process_post once the current transaction commits (so the worker sees the row).
    A broker outage must not fail the request: the post stays unprocessed and it is logged."""

    def send():
        try:
            process_post.apply_async(
                args=[post_id],
                retry=True,
                retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.5},
            )
        except Exception:  # noqa: BLE001 - any broker error
            log.exception("could not queue process_post for post %s", post_id)

    transaction.on_commit(send)
