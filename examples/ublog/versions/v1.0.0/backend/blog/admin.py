from django.contrib import admin

from .models import Post, PostLike


@admin.register(Post)
class PostAdmin(admin.ModelAdmin):
    list_display = ("id", "body", "author", "like_count", "word_count", "processed_at", "created_on")
    list_select_related = ("author",)
    search_fields = ("body", "author__email")
    readonly_fields = ("like_count", "word_count", "processed_at")


@admin.register(PostLike)
class PostLikeAdmin(admin.ModelAdmin):
    list_display = ("id", "post", "liked_by", "liked_on")
    list_select_related = ("post", "liked_by")
