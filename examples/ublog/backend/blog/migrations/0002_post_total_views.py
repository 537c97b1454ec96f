# v1.1.0: Post.total_views.
#
# Migrations run before the new code starts, while v1.0.0 may still be serving, and v1.0.0's
# INSERTs do not name this column. Django drops a field's default from the database after
# adding it, so a database-level DEFAULT 0 is set as well: old code can keep creating posts
# between `migrate` and the roll to v1.1.0.
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ("blog", "0001_initial"),
    ]

    operations = [
        migrations.AddField(
            model_name="post",
            name="total_views",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunSQL(
            sql="ALTER TABLE blog_post ALTER COLUMN total_views SET DEFAULT 0",
            reverse_sql=migrations.RunSQL.noop,
        ),
    ]
