import os

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand
from django.db import transaction

from blog.models import Post
from blog.tasks import process

DEMO_EMAIL = "demo@example.com"
POSTS = 20
OPENINGS = [
    "Shipped a tiny fix today",
    "Ad hoc environments make reviews easier",
    "Reading about Celery beat schedules",
    "Migrations run before the new code starts",
    "Trying μblog on a fresh environment",
]
ENDINGS = [
    "and it just worked.",
    "and the team noticed.",
    "with a cup of coffee.",
    "before lunch.",
]


class Command(BaseCommand):
    help = "Creates the demo user (demo@example.com, password $SAMPLE_USER_PASSWORD or 'demo') and 20 posts."

    def add_arguments(self, parser):
        parser.add_argument("--superuser", action="store_true", help="make the demo user an admin too")

    @transaction.atomic
    def handle(self, *args, **options):
        User = get_user_model()
        password = os.environ.get("SAMPLE_USER_PASSWORD") or "demo"
        user, created = User.objects.get_or_create(email=DEMO_EMAIL, defaults={"name": "Demo"})
        if created or not user.check_password(password):
            user.set_password(password)
        if options["superuser"]:
            user.is_staff = user.is_superuser = True
        user.save()

        # Rerunnable: only tops the demo user's posts up to 20.
        existing = Post.objects.filter(author=user).count()
        new_posts = []
        for n in range(existing, POSTS):
            body = "#%d %s %s" % (n + 1, OPENINGS[n % len(OPENINGS)], ENDINGS[n % len(ENDINGS)])
            new_posts.append(Post.objects.create(author=user, body=body))
        # Processed here rather than queued: sample data must not depend on the worker being up.
        for post in new_posts:
            process(post.pk)
        self.stdout.write(
            "demo user %s (%s); %d posts created, %d already there"
            % (DEMO_EMAIL, "created" if created else "exists", len(new_posts), existing)
        )
