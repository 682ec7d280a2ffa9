from django.urls import path

from leaderboard import views

app_name = "leaderboard"

urlpatterns = [
    path("", views.leaderboard_index, name="index"),
    path("about/", views.about, name="about"),
    path("submit/", views.submit, name="submit"),
    path("healthz", views.healthz, name="healthz"),
]
