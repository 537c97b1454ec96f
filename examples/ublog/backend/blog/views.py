from django.db import IntegrityError, transaction
from django.db.models import F
from django.shortcuts import get_object_or_404
from rest_framework import status
from rest_framework.decorators import api_view, permission_classes
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import IsAuthenticated, IsAuthenticatedOrReadOnly
from rest_framework.response import Response

from .models import Post, PostLike
from .serializers import PostSerializer
from .tasks import queue_processing


def liked_ids(request, posts):
    if not request.user.is_authenticated:
        return set()
    ids = [post.pk for post in posts]
    return set(PostLike.objects.filter(liked_by=request.user, post_id__in=ids).values_list("post_id", flat=True))


@api_view(["GET", "POST"])
@permission_classes([IsAuthenticatedOrReadOnly])
def post_list(request):
    """GET: posts, newest first, paginated. POST {"body"}: a new post by the caller."""
    if request.method == "POST":
        serializer = PostSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        post = serializer.save(author=request.user)
        queue_processing(post.pk)
        return Response(PostSerializer(post).data, status=status.HTTP_201_CREATED)

    paginator = PageNumberPagination()
    page = paginator.paginate_queryset(Post.objects.select_related("author"), request)
    context = {"liked_ids": liked_ids(request, page)}
    return paginator.get_paginated_response(PostSerializer(page, many=True, context=context).data)


@api_view(["GET", "PUT", "PATCH", "DELETE"])
@permission_classes([IsAuthenticatedOrReadOnly])
def post_detail(request, pk):
    """GET counts a view (v1.1.0). PUT/PATCH/DELETE: only by the post's author."""
    if request.method == "GET":
        Post.objects.filter(pk=pk).update(total_views=F("total_views") + 1)
    post = get_object_or_404(Post.objects.select_related("author"), pk=pk)
    context = {"liked_ids": liked_ids(request, [post])}
    if request.method == "GET":
        return Response(PostSerializer(post, context=context).data)

    if post.author_id != request.user.pk:
        return Response({"detail": "Only the author can change this post."}, status=status.HTTP_403_FORBIDDEN)
    if request.method == "DELETE":
        post.delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
    serializer = PostSerializer(post, data=request.data, partial=request.method == "PATCH", context=context)
    serializer.is_valid(raise_exception=True)
    serializer.save()
    queue_processing(post.pk)
    return Response(serializer.data)


@api_view(["POST"])
@permission_classes([IsAuthenticated])
def post_like(request, pk):
    """Toggles the caller's like. The live count is returned; like_count follows via the worker."""
    post = get_object_or_404(Post, pk=pk)
    like = PostLike.objects.filter(post=post, liked_by=request.user).first()
    if like is not None:
        like.delete()
        liked = False
    else:
        try:
            with transaction.atomic():
                PostLike.objects.create(post=post, liked_by=request.user)
        except IntegrityError:  # a concurrent like by the same user won the race
            pass
        liked = True
    queue_processing(post.pk)
    return Response({"id": post.pk, "liked": liked, "likes": PostLike.objects.filter(post=post).count()})
