from django.urls import path

from leaderboard import views

app_name = "leaderboard"

urlpatterns = [
    path("", views.leaderboard_index, name="index"),
    path("export.<str:fmt>", views.leaderboard_export, name="export"),
    path("columns/", views.leaderboard_columns_save, name="columns_save"),
    path("about/", views.about, name="about"),
    path("submit/", views.submit, name="submit"),
    path("submit/browse/", views.submit_browse, name="submit_browse"),
    path("submit/inspect/", views.submit_inspect, name="submit_inspect"),
    path("healthz", views.healthz, name="healthz"),
]
