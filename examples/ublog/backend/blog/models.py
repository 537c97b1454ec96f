from django.conf import settings
from django.db import models

from core.models import BaseModel


class Post(BaseModel):
    body = models.CharField(max_length=200)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, related_name="posts", on_delete=models.CASCADE)
    likes = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="PostLike", related_name="liked_posts", blank=True
    )
    # Written by the worker (blog.tasks.process_post), never by the API.
    like_count = models.PositiveIntegerField(default=0)
    word_count = models.PositiveIntegerField(default=0)
    processed_at = models.DateTimeField(null=True, blank=True)
    # v1.1.0: incremented by every GET of the post.
    total_views = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-created_on", "-id"]

    def __str__(self):
        return self.body[:40]


class PostLike(models.Model):
    liked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE)
    post = models.ForeignKey(Post, on_delete=models.CASCADE)
    liked_on = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-liked_on"]
        constraints = [models.UniqueConstraint(fields=["liked_by", "post"], name="one_like_per_user_and_post")]

    def __str__(self):
        return "%s likes %s" % (self.liked_by, self.post_id)
