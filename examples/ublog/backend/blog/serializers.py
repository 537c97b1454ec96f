from rest_framework import serializers

from accounts.serializers import UserSerializer

from .models import Post


class PostSerializer(serializers.ModelSerializer):
    author = UserSerializer(read_only=True)
    liked = serializers.SerializerMethodField()

    class Meta:
        model = Post
        fields = (
            "id",
            "body",
            "author",
            "created_on",
            "modified_on",
            "like_count",
            "word_count",
            "processed_at",
            "total_views",
            "liked",
        )
        read_only_fields = (
            "created_on",
            "modified_on",
            "like_count",
            "word_count",
            "processed_at",
            "total_views",
        )

    def get_liked(self, post):
        """Whether the requesting user likes this post (the view passes the set of liked ids)."""
        return post.pk in self.context.get("liked_ids", ())
