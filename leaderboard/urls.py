from django.urls import path

from leaderboard import chart_views, model_views, views

app_name = "leaderboard"

urlpatterns = [
    path("", views.leaderboard_index, name="index"),
    path("export.<str:fmt>", views.leaderboard_export, name="export"),
    path("columns/", views.leaderboard_columns_save, name="columns_save"),
    path("metrics-through-time/", chart_views.metrics_through_time, name="metrics_through_time"),
    path("about/", views.about, name="about"),
    path("submit/", views.submit, name="submit"),
    path("submit/browse/", views.submit_browse, name="submit_browse"),
    path("submit/inspect/", views.submit_inspect, name="submit_inspect"),
    path("healthz", views.healthz, name="healthz"),
    path("favicon.ico", views.favicon, name="favicon"),
    path("models/<int:model_id>/", model_views.model_detail, name="model_detail"),
    path("models/runs/<int:run_id>/samples/", model_views.run_samples, name="run_samples"),
    path("models/compare/", model_views.compare, name="compare"),
]
