from django.urls import path

from . import views

urlpatterns = [
    path("auth/token/", views.token_login, name="token-login"),
    path("auth/login/", views.session_login, name="session-login"),
    path("auth/logout/", views.session_logout, name="session-logout"),
    path("register/", views.register, name="register"),
    path("profile/", views.profile, name="profile"),
]
