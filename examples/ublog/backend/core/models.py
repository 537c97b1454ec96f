from django.db import models


class BaseModel(models.Model):
    """Creation and last-change times for every model of the app."""

    created_on = models.DateTimeField(auto_now_add=True, db_index=True)
    modified_on = models.DateTimeField(auto_now=True)

    class Meta:
        abstract = True


class Heartbeat(BaseModel):
    """One row per run of the beat task: proves beat and the worker are alive."""

    source = models.CharField(max_length=100, default="beat")

    class Meta:
        ordering = ["-created_on", "-id"]

    def __str__(self):
        return "%s at %s" % (self.source, self.created_on)
